//! Reading small kernel files into reused buffers, without allocating in steady state.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Largest file the monitor reads (a v2 `memory.stat` is about 1.5 KiB).
pub(crate) const MAX_FILE: u64 = 64 * 1024;

/// A path under construction and a read buffer, both reused.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    path: PathBuf,
    buf: Vec<u8>,
    /// The buffer of [`Reader::read_in`], `MAX_FILE + 1` bytes once first used.
    fbuf: Vec<u8>,
}

/// Why a file could not be used.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The file could not be opened or read.
    Io(io::Error),
    /// The file is not UTF-8 or longer than [`MAX_FILE`].
    Garbled,
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl Reader {
    /// Sets the path to `base` joined with each of `parts`.
    pub(crate) fn set(&mut self, base: &Path, parts: &[&[u8]]) -> &Path {
        self.path.as_mut_os_string().clear();
        self.path.push(base);
        for p in parts {
            if !p.is_empty() {
                self.path.push(OsStr::from_bytes(p));
            }
        }
        &self.path
    }

    /// The path last set.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file at the path last set; returns its text.
    pub(crate) fn read(&mut self) -> Result<&str, ReadError> {
        self.buf.clear();
        let f = File::open(&self.path)?;
        let n = f.take(MAX_FILE + 1).read_to_end(&mut self.buf)?;
        if n as u64 > MAX_FILE {
            return Err(ReadError::Garbled);
        }
        std::str::from_utf8(&self.buf).map_err(|_| ReadError::Garbled)
    }

    /// Reads the file `name` of the open directory `dir` (one `openat`, usually one `read`,
    /// one `close`); returns its text.
    ///
    /// A read shorter than the space left means the end of the file: regular files and the
    /// kernel's seq files (cgroup and proc files) fill the buffer up to their end.
    pub(crate) fn read_in(&mut self, dir: &OwnedFd, name: &CStr) -> Result<&str, ReadError> {
        use rustix::fs::{Mode, OFlags};
        let cap = usize::try_from(MAX_FILE)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if self.fbuf.len() != cap {
            self.fbuf.resize(cap, 0);
        }
        let fd = rustix::fs::openat(dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(io::Error::from)?;
        let filled = fill(&fd, &mut self.fbuf, false)?;
        let text = self.fbuf.get(..filled).ok_or(ReadError::Garbled)?;
        std::str::from_utf8(text).map_err(|_| ReadError::Garbled)
    }

    /// Reads a file kept open, from its start (`pread` at offset 0: the kernel regenerates a
    /// cgroup or proc file's text on each read from the start; a regular file is re-read).
    pub(crate) fn read_fd(&mut self, fd: &OwnedFd) -> Result<&str, ReadError> {
        let cap = usize::try_from(MAX_FILE)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        if self.fbuf.len() != cap {
            self.fbuf.resize(cap, 0);
        }
        let filled = fill(fd, &mut self.fbuf, true)?;
        let text = self.fbuf.get(..filled).ok_or(ReadError::Garbled)?;
        std::str::from_utf8(text).map_err(|_| ReadError::Garbled)
    }

    /// Sets the path and reads the file.
    pub(crate) fn read_at(&mut self, base: &Path, parts: &[&[u8]]) -> Result<&str, ReadError> {
        self.set(base, parts);
        self.read()
    }
}

/// Reads `fd` into `buf` from its start (with `pread` when `positioned`), until a short read;
/// returns the length read. A file filling the whole buffer is too long.
fn fill(fd: &OwnedFd, buf: &mut [u8], positioned: bool) -> Result<usize, ReadError> {
    let mut filled = 0usize;
    loop {
        let Some(space) = buf.get_mut(filled..) else {
            return Err(ReadError::Garbled);
        };
        if space.is_empty() {
            return Err(ReadError::Garbled);
        }
        let room = space.len();
        let n = if positioned {
            // filled < buf.len() <= MAX_FILE + 1.
            rustix::io::pread(fd, space, filled as u64)
        } else {
            rustix::io::read(fd, space)
        }
        .map_err(io::Error::from)?;
        filled += n;
        if n == 0 || n < room {
            return Ok(filled);
        }
    }
}
