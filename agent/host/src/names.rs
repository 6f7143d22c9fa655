//! Names: the cgroup directory names libvirt creates for a domain, and the QEMU command line.
//!
//! libvirt names a domain's machine `qemu-<id>-<name>` (the name stripped of characters
//! other than ASCII alphanumerics, `-`, `_` and `.`, and cut at 64 bytes). Under systemd the
//! cgroup is the scope `machine-<escaped machine>.scope`, where systemd escapes every byte
//! outside `[A-Za-z0-9:_.]` as `\xNN` (so each `-` is `\x2d`); without systemd it is
//! `<machine>.libvirt-qemu` under `machine/`.

/// What a VM's cgroup directory name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineDir {
    /// libvirt's domain id (the `<id>` of `qemu-<id>-<name>`).
    pub id: u32,
    /// The (sanitised) domain name.
    pub name: String,
}

/// The shape of a directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// `machine-qemu\x2d<id>\x2d<name>.scope` (systemd).
    Scope,
    /// `qemu-<id>-<name>.libvirt-qemu` (no systemd).
    LibvirtQemu,
}

/// Tells whether a directory name is a QEMU domain's cgroup, without allocating.
pub fn dir_kind(name: &[u8]) -> Option<DirKind> {
    if name.starts_with(b"machine-qemu") && name.ends_with(b".scope") {
        Some(DirKind::Scope)
    } else if name.starts_with(b"qemu-") && name.ends_with(b".libvirt-qemu") {
        Some(DirKind::LibvirtQemu)
    } else {
        None
    }
}

/// Decodes systemd's unit-name escaping (`\xNN`). `None` when an escape is malformed or the
/// result is not UTF-8.
pub fn unescape_unit(escaped: &str) -> Option<String> {
    let b = escaped.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if b.get(i + 1) != Some(&b'x') {
                return None;
            }
            let hex = b.get(i + 2..i + 4)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes a string as systemd does for a unit name component (`systemd-escape`).
pub fn escape_unit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for (i, b) in s.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// libvirt's machine name `qemu-<id>-<name>`, with the name sanitised as libvirt does
/// (only `[A-Za-z0-9_.-]` kept, no leading or doubled `.`, at most 64 bytes in all).
pub fn machine_name(id: u32, name: &str) -> String {
    let mut out = format!("qemu-{id}-");
    let mut prev_dot = true;
    for c in name.chars() {
        if out.len() >= 64 {
            break;
        }
        if c == '.' {
            if prev_dot {
                continue;
            }
            prev_dot = true;
            out.push(c);
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            prev_dot = false;
            out.push(c);
        }
    }
    out
}

fn split_machine(machine: &str) -> Option<MachineDir> {
    let rest = machine.strip_prefix("qemu-")?;
    let (id, name) = rest.split_once('-')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some(MachineDir {
        id: id.parse().ok()?,
        name: name.to_owned(),
    })
}

/// Parses a VM cgroup directory name of either shape. `None` when it is not one.
pub fn parse_machine_dir(dir: &str) -> Option<MachineDir> {
    match dir_kind(dir.as_bytes())? {
        DirKind::Scope => {
            let inner = dir.strip_prefix("machine-")?.strip_suffix(".scope")?;
            split_machine(&unescape_unit(inner)?)
        }
        DirKind::LibvirtQemu => {
            let inner = dir.strip_suffix(".libvirt-qemu")?;
            // libvirt prefixes '_' to partition names that could clash; strip it.
            split_machine(inner.strip_prefix('_').unwrap_or(inner))
        }
    }
}

/// The systemd scope directory name of a domain (`machine-qemu\x2d<id>\x2d<name>.scope`).
pub fn scope_dir_name(id: u32, name: &str) -> String {
    format!("machine-{}.scope", escape_unit(&machine_name(id, name)))
}

/// What the monitor takes from a QEMU command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QemuArgs {
    /// `-name guest=<name>` (or the old `-name <name>`), with `,,` unescaped to `,`.
    pub guest: Option<String>,
    /// `-m` in MiB (`-m 2048`, `-m 2G`, `-m size=2097152k,...`).
    pub mem_mib: Option<u64>,
    /// `-smp <n>` or `-smp cpus=<n>,...` (also the first field of `-smp 4,sockets=...`).
    pub smp: Option<u32>,
}

/// Splits a QEMU option value on single commas, `,,` being an escaped comma.
fn qemu_opts(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn parse_size_mib(v: &str) -> Option<u64> {
    let v = v.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mib = match unit {
        "" | "M" | "m" | "MB" | "MiB" => n,
        "k" | "K" | "KB" | "KiB" => n / 1024,
        "G" | "g" | "GB" | "GiB" => n.checked_mul(1024)?,
        "T" | "t" | "TB" | "TiB" => n.checked_mul(1024 * 1024)?,
        "B" | "b" => n >> 20,
        _ => return None,
    };
    // At most 4 PiB.
    (mib <= 1 << 32).then_some(mib)
}

/// Reads the `-name`, `-m` and `-smp` options of a QEMU command line (its NUL-separated
/// arguments). Unknown or malformed values are left `None`.
pub fn parse_qemu_args<S: AsRef<str>>(args: &[S]) -> QemuArgs {
    let mut out = QemuArgs::default();
    let mut it = args.iter().map(AsRef::as_ref);
    while let Some(a) = it.next() {
        match a {
            "-name" => {
                let Some(v) = it.next() else { break };
                let opts = qemu_opts(v);
                let guest = opts
                    .iter()
                    .find_map(|o| o.strip_prefix("guest=").map(str::to_owned));
                // The old form `-name <name>[,process=...]`: first field without '='.
                let guest = guest.or_else(|| opts.first().filter(|o| !o.contains('=')).cloned());
                out.guest = guest.filter(|g| !g.is_empty() && g.len() <= 1024);
            }
            "-m" => {
                let Some(v) = it.next() else { break };
                let opts = qemu_opts(v);
                let size = opts
                    .iter()
                    .find_map(|o| o.strip_prefix("size="))
                    .or_else(|| {
                        opts.first()
                            .map(String::as_str)
                            .filter(|o| !o.contains('='))
                    });
                out.mem_mib = size.and_then(parse_size_mib);
            }
            "-smp" => {
                let Some(v) = it.next() else { break };
                let opts = qemu_opts(v);
                let n = opts
                    .iter()
                    .find_map(|o| o.strip_prefix("cpus="))
                    .or_else(|| {
                        opts.first()
                            .map(String::as_str)
                            .filter(|o| !o.contains('='))
                    });
                out.smp = n
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| (1..=crate::parse::MAX_VCPUS).contains(&n));
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_round_trip() {
        let d = scope_dir_name(3, "web-01");
        assert_eq!(d, r"machine-qemu\x2d3\x2dweb\x2d01.scope");
        assert_eq!(
            parse_machine_dir(&d),
            Some(MachineDir {
                id: 3,
                name: "web-01".into()
            })
        );
        // Characters libvirt drops, and a dot.
        assert_eq!(
            scope_dir_name(12, "a b/c.d"),
            r"machine-qemu\x2d12\x2dabc.d.scope"
        );
        assert_eq!(dir_kind(b"machine-lxc\\x2d1\\x2dfoo.scope"), None);
        assert_eq!(parse_machine_dir(r"machine-qemu\x2dx\x2dfoo.scope"), None);
        assert_eq!(parse_machine_dir(r"machine-qemu\x2d1\x2.scope"), None);
    }

    #[test]
    fn plain_names() {
        assert_eq!(
            parse_machine_dir("qemu-4-db-main.libvirt-qemu"),
            Some(MachineDir {
                id: 4,
                name: "db-main".into()
            })
        );
        assert_eq!(parse_machine_dir("qemu-4.libvirt-qemu"), None);
        assert_eq!(parse_machine_dir("emulator"), None);
    }

    #[test]
    fn escape_matches_systemd_escape() {
        // `systemd-escape 'qemu-1-a.b_c:d'` prints `qemu\x2d1\x2da.b_c:d`.
        assert_eq!(escape_unit("qemu-1-a.b_c:d"), r"qemu\x2d1\x2da.b_c:d");
        assert_eq!(escape_unit(".x"), r"\x2ex");
        assert_eq!(unescape_unit(r"\x2ex").as_deref(), Some(".x"));
    }

    #[test]
    fn qemu_command_lines() {
        let modern = [
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "guest=web,,01,debug-threads=on",
            "-S",
            "-m",
            "size=2097152k",
            "-smp",
            "4,sockets=4,cores=1,threads=1",
        ];
        let a = parse_qemu_args(&modern);
        assert_eq!(a.guest.as_deref(), Some("web,01"));
        assert_eq!(a.mem_mib, Some(2048));
        assert_eq!(a.smp, Some(4));
        let old = ["qemu-kvm", "-name", "db", "-m", "1024", "-smp", "cpus=2"];
        let a = parse_qemu_args(&old);
        assert_eq!(a.guest.as_deref(), Some("db"));
        assert_eq!(a.mem_mib, Some(1024));
        assert_eq!(a.smp, Some(2));
        let bad = ["qemu", "-m", "lots", "-smp", "0", "-name"];
        assert_eq!(parse_qemu_args(&bad), QemuArgs::default());
        assert_eq!(parse_qemu_args(&["qemu", "-m", "4G"]).mem_mib, Some(4096));
    }
}
