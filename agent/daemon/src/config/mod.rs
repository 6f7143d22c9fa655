//! The agent's configuration: read once, validated into typed settings.
//!
//! Every error names the key (`monitor.period`) and the value it refused; `dvmsd` exits with
//! 78 (`EX_CONFIG`) on any of them.

mod libvirt;
mod raw;
mod typed;

use std::path::{Path, PathBuf};

pub use libvirt::LibvirtSettings;
pub use raw::{
    RawActuator, RawConfig, RawControl, RawLab, RawLibvirt, RawMetrics, RawMonitor, RawNode,
    RawOverlay, RawProtocol,
};
pub(crate) use typed::valid_name as typed_valid_name;
pub use typed::{ActuatorKind, Config};

/// The default config path.
pub const DEFAULT_PATH: &str = "/etc/dvms/dvms.toml";

/// Longest node name: it travels inside the 64-byte gossiped summary, after the 34-byte load.
pub const MAX_NODE_NAME: usize = 30;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{path}: {key}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The key (`.` for the whole file).
        key: String,
        /// The parser's message.
        message: String,
    },
    /// A key has a value outside what it accepts.
    #[error("{key} = {value:?}: {expected}")]
    Invalid {
        /// The key, e.g. `monitor.period`.
        key: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// The cluster key file is unreadable, badly formatted or readable by others.
    #[error("overlay.cluster_key_file = {path:?}: {problem}")]
    ClusterKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, value: impl ToString, expected: impl ToString) -> Self {
        ConfigError::Invalid {
            key: key.to_owned(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
}

/// Parses TOML text into the raw config, naming the key of any error.
///
/// # Errors
/// [`ConfigError::Syntax`].
pub fn parse(path: &Path, text: &str) -> Result<RawConfig, ConfigError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        // toml's message starts with a multi-line excerpt; keep its last line (the reason),
        // and the line number from its first.
        let full = inner.to_string();
        let reason = full
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let at = full.lines().next().unwrap_or("");
        ConfigError::Syntax {
            path: path.to_path_buf(),
            key,
            message: format!("{} ({})", reason.trim(), at.trim()),
        }
    })
}

/// Reads and validates the config file at `path` (the cluster key file is checked later, by
/// [`Config::cluster_key`]).
///
/// # Errors
/// Any [`ConfigError`].
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Config::from_raw(parse(path, &text)?)
}

#[cfg(test)]
mod tests;
