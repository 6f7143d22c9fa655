//! The request-response codec: one length-prefixed [`wire`](crate::wire) frame per stream.
//!
//! Reads never allocate more than [`MAX_FRAME_LEN`](crate::MAX_FRAME_LEN) (and no more than
//! what has arrived, past a first 4 KiB), and every refusal is counted in
//! [`Stats`](crate::Stats) before the stream is failed with `InvalidData`. Failing the stream
//! is all libp2p needs: the request-response behaviour reports the failure as an event and
//! keeps the connection.

use std::{io, sync::Arc};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use crate::{
    stats::{Counters, bump},
    wire::{self, DecodeError, FRAME_HEADER_LEN},
};

/// Initial payload buffer; it grows as bytes arrive, up to the frame's announced length.
const READ_CHUNK: usize = 4096;

/// Opaque bytes carried by one request or response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame(pub(crate) Vec<u8>);

/// Length-prefixed, versioned codec for [`Frame`]s.
#[derive(Clone, Debug)]
pub(crate) struct FrameCodec {
    counters: Arc<Counters>,
}

impl FrameCodec {
    pub(crate) fn new(counters: Arc<Counters>) -> Self {
        Self { counters }
    }

    async fn read_frame<T>(&self, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_full(io, &mut header).await?;
        if got < FRAME_HEADER_LEN {
            // Closing a stream without a byte is a refusal, not a malformed frame.
            if got > 0 {
                bump(&self.counters.frames_malformed);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let len = wire::parse_frame_header(header).map_err(|e| {
            match e {
                DecodeError::Oversized { .. } => bump(&self.counters.frames_oversized),
                DecodeError::UnknownVersion { .. } => bump(&self.counters.frames_unknown_version),
                DecodeError::Malformed => bump(&self.counters.frames_malformed),
            }
            io::Error::new(io::ErrorKind::InvalidData, e)
        })?;
        // Grow with the bytes that actually arrive: a header announcing MAX_FRAME_LEN followed
        // by nothing (a slow or hostile peer) costs a small buffer, not 64 KiB per stream.
        let mut payload = Vec::with_capacity(len.min(READ_CHUNK));
        let want = u64::try_from(len).unwrap_or(u64::MAX);
        let got = (&mut *io).take(want).read_to_end(&mut payload).await?;
        if got < len {
            bump(&self.counters.frames_malformed);
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Frame(payload))
    }

    async fn write_frame<T>(io: &mut T, frame: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let header = wire::frame_header(frame.0.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        io.write_all(&header).await?;
        io.write_all(&frame.0).await?;
        io.close().await
    }
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
async fn read_full<T>(io: &mut T, buf: &mut [u8]) -> io::Result<usize>
where
    T: AsyncRead + Unpin + Send,
{
    let mut got = 0;
    while got < buf.len() {
        match io.read(&mut buf[got..]).await? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[async_trait::async_trait]
impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Frame;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        self.read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Self::write_frame(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Self::write_frame(io, res).await
    }
}

#[cfg(test)]
mod tests {
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;

    fn codec() -> (FrameCodec, Arc<Counters>) {
        let c = Arc::new(Counters::default());
        (FrameCodec::new(c.clone()), c)
    }

    fn proto() -> StreamProtocol {
        StreamProtocol::new(wire::RR_PROTOCOL)
    }

    #[tokio::test]
    async fn frame_round_trips() {
        let (mut c, _) = codec();
        let mut buf = Cursor::new(Vec::new());
        c.write_request(&proto(), &mut buf, Frame(b"hello".to_vec()))
            .await
            .unwrap();
        let mut rd = Cursor::new(buf.into_inner());
        let f = c.read_request(&proto(), &mut rd).await.unwrap();
        assert_eq!(f.0, b"hello");
    }

    #[tokio::test]
    async fn oversized_unknown_and_truncated_frames_are_counted() {
        let (mut c, counters) = codec();
        let mut big = vec![wire::FRAME_VERSION];
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(
            c.read_request(&proto(), &mut Cursor::new(big))
                .await
                .is_err()
        );
        let garbage = b"GET / HTTP/1.1\r\n".to_vec();
        assert!(
            c.read_request(&proto(), &mut Cursor::new(garbage))
                .await
                .is_err()
        );
        let mut short = wire::frame_header(10).unwrap().to_vec();
        short.extend_from_slice(b"abc");
        assert!(
            c.read_request(&proto(), &mut Cursor::new(short))
                .await
                .is_err()
        );
        let empty: Vec<u8> = Vec::new();
        let r = c.read_request(&proto(), &mut Cursor::new(empty)).await;
        assert!(r.is_err());
        let mut short_header = wire::frame_header(10).unwrap().to_vec();
        short_header.truncate(3);
        let r = c
            .read_request(&proto(), &mut Cursor::new(short_header))
            .await;
        assert!(r.is_err());
        let s = counters.snapshot();
        assert_eq!(s.frames_oversized, 1);
        assert_eq!(s.frames_unknown_version, 1);
        assert_eq!(s.frames_malformed, 2, "empty stream is not malformed");
    }

    #[tokio::test]
    async fn writing_an_oversized_frame_fails_without_sending() {
        let (mut c, _) = codec();
        let mut buf = Cursor::new(Vec::new());
        let r = c
            .write_request(&proto(), &mut buf, Frame(vec![0; wire::MAX_FRAME_LEN + 1]))
            .await;
        assert!(r.is_err());
        assert!(buf.into_inner().is_empty());
    }
}
