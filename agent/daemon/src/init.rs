//! `dvmsd init`: the node identity and the cluster key file, created once, never overwritten.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

use crate::config::Config;

/// What `init` did with one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// It was created.
    New,
    /// It already existed and was left alone.
    Kept,
}

/// Creates `<state_dir>/overlay-identity.key` when absent; returns the peer id.
///
/// # Errors
/// When the directory or file cannot be written, or an existing identity is corrupt.
pub fn identity(cfg: &Config) -> anyhow::Result<dvms_overlay::PeerId> {
    dvms_overlay::load_or_create_identity(&cfg.state_dir)
        .with_context(|| format!("node.state_dir = {:?}", cfg.state_dir))
}

/// Creates the cluster key file with 32 random bytes from the kernel, mode 0600, unless it
/// exists.
///
/// # Errors
/// When the file cannot be created or the kernel's random source cannot be read.
pub fn cluster_key(path: &Path) -> anyhow::Result<Created> {
    if path.exists() {
        return Ok(Created::Kept);
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("cannot read /dev/urandom")?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    // create_new: never overwrite, even when another init races us.
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(Created::Kept),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    writeln!(f, "/key/swarm/psk/1.0.0/\n/base16/\n{hex}")
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Created::New)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn cluster_key_is_private_parses_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cluster.key");
        assert_eq!(cluster_key(&path).unwrap(), Created::New);
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.parse::<dvms_overlay::Psk>().is_ok());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(cluster_key(&path).unwrap(), Created::Kept);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    }
}
