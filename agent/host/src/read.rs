//! Reading small kernel files into reused buffers, without allocating in steady state.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Largest file the monitor reads (a v2 `memory.stat` is about 1.5 KiB).
pub(crate) const MAX_FILE: u64 = 64 * 1024;

/// A path under construction and a read buffer, both reused.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    path: PathBuf,
    buf: Vec<u8>,
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

    /// Sets the path and reads the file.
    pub(crate) fn read_at(&mut self, base: &Path, parts: &[&[u8]]) -> Result<&str, ReadError> {
        self.set(base, parts);
        self.read()
    }
}
