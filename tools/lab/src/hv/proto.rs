//! The lab actuator protocol (CONTRACTS B): one JSON object per line, one request per
//! connection, the answer on the same connection.

use serde::{Deserialize, Serialize};

/// The longest request line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// The longest VM or node name accepted.
pub const MAX_NAME: usize = 128;

/// A request from an agent's `lab` actuator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Live-migrate `vm` from node `from` to node `to`; answered when it ends.
    Migrate {
        /// The VM.
        vm: String,
        /// The node it is on.
        from: String,
        /// The node it goes to.
        to: String,
    },
    /// Abort the migration of `vm`; it stays on its source.
    Abort {
        /// The VM.
        vm: String,
    },
    /// Is `vm` migrating, and where to?
    Status {
        /// The VM.
        vm: String,
    },
}

impl Request {
    /// Parses one request line, checking every name.
    pub fn parse(line: &str) -> Result<Request, String> {
        let req: Request =
            serde_json::from_str(line.trim()).map_err(|e| format!("bad request: {e}"))?;
        match &req {
            Request::Migrate { vm, from, to } => {
                check_name("vm", vm)?;
                check_name("from", from)?;
                check_name("to", to)?;
            }
            Request::Abort { vm } | Request::Status { vm } => check_name("vm", vm)?,
        }
        Ok(req)
    }

    /// The request as one line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Names are 1 to [`MAX_NAME`] characters of `[A-Za-z0-9._-]`.
pub fn check_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad request: {field} {name:?} is not 1 to {MAX_NAME} characters of [A-Za-z0-9._-]"
        ))
    }
}

/// An answer (the union of the three answers' fields; absent ones are not written).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// Why it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `migrate`: how long the migration took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `status`: whether the VM is migrating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrating: Option<bool>,
    /// `status`: where to (`null` when not migrating).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Option<String>>,
}

impl Response {
    /// `{"ok":false,"error":...}`.
    pub fn error(why: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(why.into()),
            ..Response::default()
        }
    }

    /// `{"ok":true}`.
    pub fn ok() -> Response {
        Response {
            ok: true,
            ..Response::default()
        }
    }

    /// `{"ok":true,"duration_ms":N}`.
    pub fn migrated(duration_ms: u64) -> Response {
        Response {
            ok: true,
            duration_ms: Some(duration_ms),
            ..Response::default()
        }
    }

    /// `{"ok":true,"migrating":bool,"to":name|null}`.
    pub fn status(to: Option<String>) -> Response {
        Response {
            ok: true,
            migrating: Some(to.is_some()),
            to: Some(to),
            ..Response::default()
        }
    }

    /// The answer as one line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"cannot encode"}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_as_the_contract_writes_them() {
        let r = Request::parse(r#"{"op":"migrate","vm":"vm-0001","from":"h00","to":"h03"}"#);
        assert_eq!(
            r,
            Ok(Request::Migrate {
                vm: "vm-0001".into(),
                from: "h00".into(),
                to: "h03".into()
            })
        );
        assert_eq!(
            Request::parse(r#"{"op":"abort","vm":"vm-0001"}"#),
            Ok(Request::Abort {
                vm: "vm-0001".into()
            })
        );
    }

    #[test]
    fn bad_requests_are_named() {
        let e = Request::parse(r#"{"op":"migrate","vm":"../x","from":"h0","to":"h1"}"#);
        assert!(e.unwrap_err().contains("vm \"../x\""));
        let e = Request::parse(r#"{"op":"reboot","vm":"a"}"#);
        assert!(e.unwrap_err().contains("reboot"));
        let e = Request::parse(r#"{"op":"abort","vm":"a","extra":1}"#);
        assert!(e.unwrap_err().contains("extra"));
        assert!(Request::parse("not json").is_err());
    }

    #[test]
    fn responses_write_only_their_fields() {
        assert_eq!(
            Response::migrated(1200).to_line(),
            r#"{"ok":true,"duration_ms":1200}"#
        );
        assert_eq!(
            Response::status(None).to_line(),
            r#"{"ok":true,"migrating":false,"to":null}"#
        );
        assert_eq!(
            Response::error("not migrating").to_line(),
            r#"{"ok":false,"error":"not migrating"}"#
        );
    }
}
