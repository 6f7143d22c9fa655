//! The request and answer that `dvmsd` and `dvms-libvirt` exchange: one JSON object on the child's
//! stdin, one JSON object (and a newline) on its stdout. The format is documented, with examples,
//! in `docs/libvirt.md`; this module is its single definition. It needs no C library, so `dvmsd`
//! depends on this crate with `default-features = false` and never links libvirt.
//!
//! Both directions carry `"version": 1` ([`VERSION`]). An unknown field, an unknown `op` or a
//! number out of range is refused before libvirt is touched ([`Request::validate`]).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks; a request with another version is refused.
pub const VERSION: u32 = 1;
/// Largest request accepted on stdin, in bytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest libvirt connection URI, URI template or rendered URI accepted, in bytes.
pub const MAX_URI_BYTES: usize = 512;
/// Longest VM name or destination node name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Smallest migration timeout accepted, in milliseconds.
pub const MIN_TIMEOUT_MS: u64 = 100;
/// Largest migration timeout accepted (one day), in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Largest bandwidth cap accepted, in MiB/s.
pub const MAX_BANDWIDTH_MIB_S: u64 = 1_000_000;
/// Largest maximum downtime accepted, in milliseconds.
pub const MAX_DOWNTIME_MS: u64 = 600_000;

/// One request to `dvms-libvirt`, selected by its `op` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Every domain of the connection (running or not) with its QEMU pid and dvms policy.
    Inventory {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// libvirt connection URI of this host, e.g. `qemu:///system`.
        connect: String,
        /// Directory of QEMU's pid files (`<dir>/<domain name>.pid`); default `/run/libvirt/qemu`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        qemu_pid_dir: Option<String>,
    },
    /// Live-migrates one running domain, peer to peer, and answers when the migration has ended.
    Migrate {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// libvirt connection URI of the source host (this host).
        connect: String,
        /// Domain name.
        vm: String,
        /// Where to.
        destination: Destination,
        /// libvirt URI of the destination's daemon, with `{name}` and `{address}` placeholders,
        /// e.g. `qemu+tcp://{address}/system`.
        dest_uri_template: String,
        /// Optional migration data URI (QEMU's stream), same placeholders, e.g. `tcp://{address}`;
        /// absent: the destination daemon chooses (its host name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        migrate_uri_template: Option<String>,
        /// Bandwidth cap in MiB/s; absent: libvirt's default (unlimited).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bandwidth_mib_s: Option<u64>,
        /// Longest pause of the guest QEMU may plan for the switch-over, in ms
        /// (`virDomainMigrateSetMaxDowntime`); absent: QEMU's default (300 ms). A migration whose
        /// guest dirties memory faster than it can be sent within this pause never converges and
        /// ends at `timeout_ms`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_downtime_ms: Option<u64>,
        /// The migration job is aborted (`virDomainAbortJob`) once it has run this long.
        timeout_ms: u64,
        /// Adds `VIR_MIGRATE_UNSAFE` (needed when a local disk file is at the same path on both
        /// hosts, as in the lab); default false.
        #[serde(default)]
        allow_unsafe: bool,
    },
    /// Aborts the migration job running on a domain of this host.
    Abort {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// libvirt connection URI of this host.
        connect: String,
        /// Domain name.
        vm: String,
    },
    /// The state of a domain's current job (a migration, usually).
    JobStatus {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// libvirt connection URI of this host.
        connect: String,
        /// Domain name.
        vm: String,
    },
}

/// The destination of a migration, as dvmsd knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    /// The destination agent's node name (`node.name` in its config), e.g. `h01`.
    pub name: String,
    /// The destination's address (an IP address literal or a DNS name).
    pub address: String,
}

/// One answer from `dvms-libvirt`, selected by its `answer` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Answer {
    /// Answer to [`Request::Inventory`].
    Inventory {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// libvirt's host name for the connection.
        hostname: String,
        /// Every domain, running or not, sorted by name.
        vms: Vec<Vm>,
    },
    /// Answer to [`Request::Migrate`] when the domain runs on the destination.
    Migrated {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// Domain name.
        vm: String,
        /// Destination node name.
        destination: String,
        /// Wall-clock time of the migration call, in milliseconds.
        duration_ms: u64,
        /// The statistics libvirt kept of the completed job, when it could be read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stats: Option<JobStats>,
    },
    /// Answer to [`Request::Abort`]: the job was asked to abort.
    Aborted {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// Domain name.
        vm: String,
    },
    /// Answer to [`Request::JobStatus`].
    Job {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// Domain name.
        vm: String,
        /// Whether a job is running now.
        active: bool,
        /// The running job's statistics (when `active`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stats: Option<JobStats>,
    },
    /// The request failed; nothing was changed unless `kind` says otherwise.
    Error {
        /// Protocol version, [`VERSION`].
        version: u32,
        /// What failed.
        kind: ErrorKind,
        /// A one-line description of what failed (this layer only).
        message: String,
        /// libvirt's error, verbatim, when libvirt reported one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        libvirt: Option<LibvirtError>,
        /// For a failed migration: the domain's state on the source afterwards, read back through
        /// libvirt (`running` when the failure left it where it was).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_state: Option<VmState>,
    },
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was not valid JSON, had an unknown field, or a value out of range.
    BadRequest,
    /// The request's `version` is not [`VERSION`].
    UnsupportedVersion,
    /// The libvirt connection could not be opened.
    Connect,
    /// No domain of that name on this host.
    NoSuchVm,
    /// The domain is not running, so it cannot be migrated live.
    NotRunning,
    /// The domain's dvms policy forbids migrating it (`migrate="never"`).
    OptedOut,
    /// libvirt refused or failed the migration; see `libvirt` and `source_state`.
    MigrationFailed,
    /// The migration ran past `timeout_ms` and was aborted; see `source_state`.
    MigrationTimedOut,
    /// `abort` found no job running on the domain.
    NotMigrating,
    /// Another libvirt call failed; see `libvirt`.
    Libvirt,
}

/// An error as libvirt reported it (`virError`), copied verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibvirtError {
    /// `virErrorNumber` (e.g. 38 = `VIR_ERR_SYSTEM_ERROR`).
    pub code: i64,
    /// `virErrorDomain` (e.g. 10 = `VIR_FROM_QEMU`).
    pub domain: i64,
    /// libvirt's message.
    pub message: String,
}

/// A libvirt domain as the inventory reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vm {
    /// Domain name.
    pub name: String,
    /// Domain UUID, lower-case with dashes.
    pub uuid: String,
    /// Domain state.
    pub state: VmState,
    /// QEMU's pid, when the domain runs and its pid file names a live QEMU started with this
    /// domain's UUID (checked in `/proc/<pid>/cmdline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_pid: Option<u32>,
    /// QEMU's cgroup: the cgroup v2 path (`0::` line of `/proc/<pid>/cgroup`), or the v1 `cpu`
    /// controller's path on a v1-only host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Current memory, MiB.
    pub memory_mib: u64,
    /// Maximum memory, MiB.
    pub max_memory_mib: u64,
    /// Whether the domain is defined persistently on this host.
    pub persistent: bool,
    /// False when the domain's metadata holds a dvms policy `migrate="never"` (or a policy that
    /// cannot be read: the safe reading); the solver must then leave it where it is.
    pub migratable: bool,
    /// Why the policy element could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_error: Option<String>,
}

/// A domain's state (`virDomainState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum VmState {
    /// Running.
    Running,
    /// Blocked on a resource.
    Blocked,
    /// Paused (also during the last phase of a migration).
    Paused,
    /// Being shut down.
    Shutdown,
    /// Not running.
    Shutoff,
    /// Crashed.
    Crashed,
    /// Suspended by guest power management.
    PmSuspended,
    /// No state, or a state this version does not know.
    Unknown,
}

impl VmState {
    /// Whether QEMU is running for this domain (it can be migrated live).
    pub fn is_active(self) -> bool {
        matches!(self, VmState::Running | VmState::Blocked | VmState::Paused)
    }
}

/// Statistics of a migration job, as libvirt reports them (`virDomainGetJobStats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobStats {
    /// Time since the job started, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_elapsed_ms: Option<u64>,
    /// Guest downtime of a completed migration, ms (QEMU's figure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
    /// Total bytes to transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_total_bytes: Option<u64>,
    /// Bytes transferred so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_processed_bytes: Option<u64>,
    /// Bytes left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_remaining_bytes: Option<u64>,
    /// Memory transfer rate, bytes/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bps: Option<u64>,
}

/// Why a request was refused before libvirt was touched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The request's version is not [`VERSION`].
    #[error("request version {got} is not supported (this is version {VERSION})")]
    Version {
        /// The version the request carried.
        got: u32,
    },
    /// A field is out of its range or malformed.
    #[error("{field}: {why}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

impl Request {
    /// The libvirt connection URI the request is for.
    pub fn connect(&self) -> &str {
        match self {
            Request::Inventory { connect, .. }
            | Request::Migrate { connect, .. }
            | Request::Abort { connect, .. }
            | Request::JobStatus { connect, .. } => connect,
        }
    }

    /// The domain the request is about, if any.
    pub fn vm(&self) -> Option<&str> {
        match self {
            Request::Inventory { .. } => None,
            Request::Migrate { vm, .. }
            | Request::Abort { vm, .. }
            | Request::JobStatus { vm, .. } => Some(vm),
        }
    }

    /// Checks the version and every field's range and form.
    pub fn validate(&self) -> Result<(), RequestError> {
        let version = match self {
            Request::Inventory { version, .. }
            | Request::Migrate { version, .. }
            | Request::Abort { version, .. }
            | Request::JobStatus { version, .. } => *version,
        };
        if version != VERSION {
            return Err(RequestError::Version { got: version });
        }
        check_uri("connect", self.connect())?;
        if let Some(vm) = self.vm() {
            check_name("vm", vm)?;
        }
        if let Request::Inventory {
            qemu_pid_dir: Some(dir),
            ..
        } = self
        {
            if !dir.starts_with('/') || dir.len() > MAX_URI_BYTES {
                return Err(field(
                    "qemu_pid_dir",
                    "must be an absolute path of at most 512 bytes",
                ));
            }
        }
        if let Request::Migrate {
            destination,
            dest_uri_template,
            migrate_uri_template,
            bandwidth_mib_s,
            max_downtime_ms,
            timeout_ms,
            ..
        } = self
        {
            check_name("destination.name", &destination.name)?;
            check_address(&destination.address)?;
            crate::template::check(dest_uri_template)
                .map_err(|why| field("dest_uri_template", why))?;
            if let Some(t) = migrate_uri_template {
                crate::template::check(t).map_err(|why| field("migrate_uri_template", why))?;
            }
            if let Some(b) = bandwidth_mib_s {
                if *b == 0 || *b > MAX_BANDWIDTH_MIB_S {
                    return Err(field(
                        "bandwidth_mib_s",
                        format!("{b} is outside 1..={MAX_BANDWIDTH_MIB_S}"),
                    ));
                }
            }
            if let Some(d) = max_downtime_ms {
                if *d == 0 || *d > MAX_DOWNTIME_MS {
                    return Err(field(
                        "max_downtime_ms",
                        format!("{d} is outside 1..={MAX_DOWNTIME_MS}"),
                    ));
                }
            }
            if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(timeout_ms) {
                return Err(field(
                    "timeout_ms",
                    format!("{timeout_ms} is outside {MIN_TIMEOUT_MS}..={MAX_TIMEOUT_MS}"),
                ));
            }
        }
        Ok(())
    }
}

fn field(field: &'static str, why: impl Into<String>) -> RequestError {
    RequestError::Field {
        field,
        why: why.into(),
    }
}

fn check_uri(name: &'static str, uri: &str) -> Result<(), RequestError> {
    if uri.is_empty() || uri.len() > MAX_URI_BYTES || uri.chars().any(char::is_control) {
        return Err(field(
            name,
            "must be 1 to 512 bytes without control characters",
        ));
    }
    Ok(())
}

/// Names (VM, node): 1 to [`MAX_NAME_BYTES`] of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
fn check_name(name: &'static str, value: &str) -> Result<(), RequestError> {
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let ok_start = !value.starts_with(['.', '-']);
    if value.is_empty() || value.len() > MAX_NAME_BYTES || !ok_chars || !ok_start {
        return Err(field(
            name,
            format!(
                "{value:?} is not 1 to {MAX_NAME_BYTES} of [A-Za-z0-9._-] (not starting with . or -)"
            ),
        ));
    }
    Ok(())
}

/// An address is an IP literal or a DNS name (letters, digits, `-`, `.`), at most 253 bytes.
fn check_address(value: &str) -> Result<(), RequestError> {
    if value.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let dns = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        });
    if dns {
        Ok(())
    } else {
        Err(field(
            "destination.address",
            format!("{value:?} is neither an IP address nor a DNS name"),
        ))
    }
}

impl Answer {
    /// An error answer without libvirt details.
    pub fn error(kind: ErrorKind, message: impl Into<String>) -> Answer {
        Answer::Error {
            version: VERSION,
            kind,
            message: message.into(),
            libvirt: None,
            source_state: None,
        }
    }

    /// Whether this answer reports a failure.
    pub fn is_error(&self) -> bool {
        matches!(self, Answer::Error { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrate_json() -> &'static str {
        r#"{"op":"migrate","version":1,"connect":"qemu+tcp://169.254.100.1/system","vm":"vm-0000",
            "destination":{"name":"h01","address":"169.254.100.2"},
            "dest_uri_template":"qemu+tcp://{address}/system","migrate_uri_template":"tcp://{address}",
            "bandwidth_mib_s":100,"max_downtime_ms":50,"timeout_ms":30000,"allow_unsafe":true}"#
    }

    #[test]
    fn migrate_request_parses_and_validates() {
        let req: Request = serde_json::from_str(migrate_json()).unwrap();
        assert_eq!(req.validate(), Ok(()));
        assert_eq!(req.vm(), Some("vm-0000"));
        let back: Request = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn unknown_fields_and_ops_are_refused() {
        let extra = migrate_json().replace("\"allow_unsafe\"", "\"surprise\":1,\"allow_unsafe\"");
        assert!(serde_json::from_str::<Request>(&extra).is_err());
        let op = r#"{"op":"reboot","version":1,"connect":"qemu:///system"}"#;
        assert!(serde_json::from_str::<Request>(op).is_err());
        let dest = migrate_json().replace("\"name\":\"h01\"", "\"name\":\"h01\",\"port\":1");
        assert!(serde_json::from_str::<Request>(&dest).is_err());
    }

    #[test]
    fn out_of_range_values_name_the_field() {
        let cases = [
            ("\"timeout_ms\":30000", "\"timeout_ms\":5", "timeout_ms"),
            (
                "\"bandwidth_mib_s\":100",
                "\"bandwidth_mib_s\":0",
                "bandwidth_mib_s",
            ),
            ("\"vm\":\"vm-0000\"", "\"vm\":\"../etc\"", "vm"),
            (
                "\"address\":\"169.254.100.2\"",
                "\"address\":\"a b\"",
                "destination.address",
            ),
            ("{address}/system", "{port}/system", "dest_uri_template"),
        ];
        for (from, to, name) in cases {
            let req: Request = serde_json::from_str(&migrate_json().replace(from, to)).unwrap();
            match req.validate() {
                Err(RequestError::Field { field, .. }) => assert_eq!(field, name, "{to}"),
                other => panic!("{to}: {other:?}"),
            }
        }
        let v2 = migrate_json().replace("\"version\":1", "\"version\":2");
        let req: Request = serde_json::from_str(&v2).unwrap();
        assert_eq!(req.validate(), Err(RequestError::Version { got: 2 }));
    }

    #[test]
    fn error_answer_round_trips_with_libvirt_error() {
        let a = Answer::Error {
            version: VERSION,
            kind: ErrorKind::MigrationFailed,
            message: "live migration of vm-0000 to h01 failed".into(),
            libvirt: Some(LibvirtError {
                code: 38,
                domain: 7,
                message: "unable to connect to server".into(),
            }),
            source_state: Some(VmState::Running),
        };
        let text = serde_json::to_string(&a).unwrap();
        assert!(
            text.starts_with(r#"{"answer":"error","version":1,"kind":"migration-failed""#),
            "{text}"
        );
        assert!(text.contains(r#""source_state":"running""#), "{text}");
        assert_eq!(serde_json::from_str::<Answer>(&text).unwrap(), a);
        assert!(a.is_error());
    }

    #[test]
    fn inventory_answer_format_is_stable() {
        let a = Answer::Inventory {
            version: VERSION,
            hostname: "h00".into(),
            vms: vec![Vm {
                name: "vm-0000".into(),
                uuid: "8f0e6a3c-0000-4000-8000-000000000000".into(),
                state: VmState::Running,
                qemu_pid: Some(4242),
                cgroup: Some("/machine/qemu-1-vm-0000.libvirt-qemu".into()),
                vcpus: 1,
                memory_mib: 64,
                max_memory_mib: 64,
                persistent: true,
                migratable: false,
                policy_error: None,
            }],
        };
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(
            text,
            r#"{"answer":"inventory","version":1,"hostname":"h00","vms":[{"name":"vm-0000","uuid":"8f0e6a3c-0000-4000-8000-000000000000","state":"running","qemu_pid":4242,"cgroup":"/machine/qemu-1-vm-0000.libvirt-qemu","vcpus":1,"memory_mib":64,"max_memory_mib":64,"persistent":true,"migratable":false}]}"#
        );
    }
}
