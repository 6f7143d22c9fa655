//! URI templates: `{name}` and `{address}` replaced by the destination's node name and address.
//! Any other `{...}`, or a lone brace, is an error, so that a typo in a config fails at once.

use crate::protocol::MAX_URI_BYTES;

/// Checks a template's form (placeholders, length) without rendering it.
pub fn check(template: &str) -> Result<(), String> {
    render(template, "n", "a").map(|_| ())
}

/// Renders a template for one destination.
pub fn render(template: &str, name: &str, address: &str) -> Result<String, String> {
    if template.is_empty() || template.len() > MAX_URI_BYTES {
        return Err(format!("must be 1 to {MAX_URI_BYTES} bytes"));
    }
    if template.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    // An IPv6 literal needs brackets inside a URI.
    let address = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_owned()
    };
    let mut out = String::with_capacity(template.len().saturating_add(address.len()));
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let (before, tail) = rest.split_at(open);
        out.push_str(before);
        if tail.starts_with('}') {
            return Err("has a '}' without '{'".into());
        }
        let close = tail
            .find('}')
            .ok_or_else(|| "has a '{' without '}'".to_owned())?;
        match &tail[1..close] {
            "name" => out.push_str(name),
            "address" => out.push_str(&address),
            other => {
                return Err(format!(
                    "unknown placeholder {{{other}}} (known: {{name}}, {{address}})"
                ));
            }
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    if out.len() > MAX_URI_BYTES {
        return Err(format!("renders to more than {MAX_URI_BYTES} bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced() {
        assert_eq!(
            render(
                "qemu+tcp://{address}:16509/system?name={name}",
                "h01",
                "169.254.100.2"
            )
            .unwrap(),
            "qemu+tcp://169.254.100.2:16509/system?name=h01"
        );
        assert_eq!(
            render("tcp://{address}", "h01", "fe80::1").unwrap(),
            "tcp://[fe80::1]"
        );
        assert_eq!(
            render("qemu:///system", "h01", "x").unwrap(),
            "qemu:///system"
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "",
            "tcp://{port}",
            "tcp://{address",
            "tcp://address}",
            "a\nb",
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        let long = format!("tcp://{}", "x".repeat(MAX_URI_BYTES));
        assert!(check(&long).is_err());
    }
}
