//! The per-VM dvms policy, read from a metadata element of the domain XML:
//!
//! ```xml
//! <metadata>
//!   <dvms:policy xmlns:dvms="http://dvms.invalid/xmlns/policy/1" migrate="never"/>
//! </metadata>
//! ```
//!
//! `migrate="never"` makes the VM not migratable; `migrate="allowed"` (or no element) leaves it
//! migratable. An element that cannot be read is reported and read as "never" (the safe side).

/// The XML namespace of the policy element (the URI passed to `virDomainGetMetadata`).
pub const NAMESPACE: &str = "http://dvms.invalid/xmlns/policy/1";
/// The element's conventional prefix (the key passed to `virDomainSetMetadata`).
pub const PREFIX: &str = "dvms";
/// Largest metadata element read, in bytes.
pub const MAX_POLICY_BYTES: usize = 16 * 1024;

/// What a domain's policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Whether dvms may live-migrate the domain.
    pub migratable: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy { migratable: true }
    }
}

/// Parses the element returned by `virDomainGetMetadata(ELEMENT, NAMESPACE)`.
pub fn parse(xml: &str) -> Result<Policy, String> {
    if xml.len() > MAX_POLICY_BYTES {
        return Err(format!(
            "policy element longer than {MAX_POLICY_BYTES} bytes"
        ));
    }
    let doc =
        roxmltree::Document::parse(xml).map_err(|e| format!("policy element is not XML: {e}"))?;
    let root = doc.root_element();
    // libvirt selects the element by namespace and hands it back without the declaration.
    let ns_ok = matches!(root.tag_name().namespace(), None | Some(NAMESPACE));
    if root.tag_name().name() != "policy" || !ns_ok {
        return Err(format!(
            "metadata element is <{}>, not <policy xmlns=\"{NAMESPACE}\">",
            root.tag_name().name()
        ));
    }
    match root.attribute("migrate") {
        None | Some("allowed") => Ok(Policy { migratable: true }),
        Some("never") => Ok(Policy { migratable: false }),
        Some(other) => Err(format!(
            "migrate={other:?} is neither \"never\" nor \"allowed\""
        )),
    }
}

/// The element to store with `virDomainSetMetadata` (or to put in a domain's `<metadata>`).
pub fn element(policy: Policy) -> String {
    let migrate = if policy.migratable {
        "allowed"
    } else {
        "never"
    };
    format!(r#"<{PREFIX}:policy xmlns:{PREFIX}="{NAMESPACE}" migrate="{migrate}"/>"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_and_allowed_are_read() {
        let never = element(Policy { migratable: false });
        assert_eq!(parse(&never), Ok(Policy { migratable: false }));
        let allowed = element(Policy::default());
        assert_eq!(parse(&allowed), Ok(Policy::default()));
        // libvirt hands the element back with a default namespace rather than the prefix.
        let libvirt_form = format!(r#"<policy xmlns="{NAMESPACE}" migrate="never"/>"#);
        assert_eq!(parse(&libvirt_form), Ok(Policy { migratable: false }));
        let bare = format!(r#"<policy xmlns="{NAMESPACE}"/>"#);
        assert_eq!(parse(&bare), Ok(Policy::default()));
        // ...or, as libvirt 9 does, without any namespace.
        assert_eq!(
            parse(r#"<policy migrate="never"/>"#),
            Ok(Policy { migratable: false })
        );
    }

    #[test]
    fn unreadable_policies_are_errors() {
        let typo = format!(r#"<policy xmlns="{NAMESPACE}" migrate="nevr"/>"#);
        assert!(parse(&typo).unwrap_err().contains("nevr"));
        assert!(parse(r#"<other xmlns="urn:x" migrate="never"/>"#).is_err());
        assert!(parse(r#"<policy xmlns="urn:x" migrate="never"/>"#).is_err());
        assert!(parse("<policy").is_err());
        assert!(parse(&" ".repeat(MAX_POLICY_BYTES + 1)).is_err());
    }
}
