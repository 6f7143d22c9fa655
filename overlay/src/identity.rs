//! The host's ed25519 identity, persisted in the state directory.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use libp2p::identity::Keypair;

/// File name of the identity key inside the state directory.
pub const IDENTITY_FILE: &str = "overlay-identity.key";

/// Loading or creating the identity key failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The key file could not be read or written.
    #[error("cannot access identity key file {path}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The key file exists but does not hold a valid ed25519 key.
    #[error("identity key file {path} is corrupt; move it away to generate a new identity")]
    Corrupt {
        /// The key file.
        path: PathBuf,
    },
}

/// Loads `<dir>/overlay-identity.key` (libp2p protobuf encoding), or creates it with mode
/// 0600 when absent. Never overwrites an existing file.
pub(crate) fn load_or_create(dir: &Path) -> Result<Keypair, IdentityError> {
    let path = dir.join(IDENTITY_FILE);
    let io_err = |source| IdentityError::Io {
        path: path.clone(),
        source,
    };
    match fs::read(&path) {
        Ok(bytes) => {
            let kp = Keypair::from_protobuf_encoding(&bytes)
                .map_err(|_| IdentityError::Corrupt { path: path.clone() })?;
            if kp.clone().try_into_ed25519().is_err() {
                return Err(IdentityError::Corrupt { path });
            }
            Ok(kp)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_err)?;
            let kp = Keypair::generate_ed25519();
            let bytes = kp
                .to_protobuf_encoding()
                .map_err(|_| IdentityError::Corrupt { path: path.clone() })?;
            let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
            let write = || -> io::Result<()> {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?;
                f.set_permissions(fs::Permissions::from_mode(0o600))?;
                f.write_all(&bytes)?;
                f.sync_all()?;
                fs::rename(&tmp, &path)
            };
            write().map_err(io_err)?;
            tracing::info!(path = %path.display(), "created overlay identity");
            Ok(kp)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists_across_loads_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_identity_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(IDENTITY_FILE), b"not a key").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::Corrupt { .. }));
        assert!(err.to_string().contains("corrupt"));
    }
}
