//! QEMU's pid and cgroup for a running domain, from its pid file and `/proc`. libvirt's API does
//! not expose the pid; its QEMU driver writes `<pid dir>/<domain name>.pid`. The pid is trusted
//! only when `/proc/<pid>/cmdline` carries `-uuid <the domain's UUID>`, so a stale pid file or a
//! recycled pid yields no pid rather than a wrong one.

use std::io::Read;
use std::path::Path;

/// Default directory of the QEMU driver's pid files.
pub const DEFAULT_PID_DIR: &str = "/run/libvirt/qemu";
/// Largest `/proc/<pid>/cmdline` read, in bytes.
const MAX_CMDLINE_BYTES: u64 = 256 * 1024;
/// Largest pid file or `/proc/<pid>/cgroup` read, in bytes.
const MAX_SMALL_FILE_BYTES: u64 = 64 * 1024;
/// Largest pid Linux hands out (`PID_MAX_LIMIT`).
const PID_MAX: u32 = 4_194_304;

/// QEMU's pid for the domain `name` with `uuid`, or `None` when it cannot be established.
pub fn qemu_pid(pid_dir: &Path, proc_root: &Path, name: &str, uuid: &str) -> Option<u32> {
    let text = read_bounded(&pid_dir.join(format!("{name}.pid")), MAX_SMALL_FILE_BYTES)?;
    let pid = parse_pid(&String::from_utf8_lossy(&text))?;
    let cmdline = read_bounded(
        &proc_root.join(pid.to_string()).join("cmdline"),
        MAX_CMDLINE_BYTES,
    )?;
    cmdline_has_uuid(&cmdline, uuid).then_some(pid)
}

/// The cgroup of `pid` (see [`parse_cgroup`]).
pub fn cgroup(proc_root: &Path, pid: u32) -> Option<String> {
    let text = read_bounded(
        &proc_root.join(pid.to_string()).join("cgroup"),
        MAX_SMALL_FILE_BYTES,
    )?;
    parse_cgroup(&String::from_utf8_lossy(&text))
}

/// Parses a pid file's content: one decimal pid in 1..=4194304, surrounding whitespace allowed.
pub fn parse_pid(text: &str) -> Option<u32> {
    let pid: u32 = text.trim().parse().ok()?;
    (1..=PID_MAX).contains(&pid).then_some(pid)
}

/// Whether a NUL-separated command line contains the arguments `-uuid <uuid>` (case-insensitive).
pub fn cmdline_has_uuid(cmdline: &[u8], uuid: &str) -> bool {
    let mut args = cmdline.split(|&b| b == 0);
    while let Some(arg) = args.next() {
        if arg == b"-uuid" {
            return args
                .next()
                .is_some_and(|v| v.eq_ignore_ascii_case(uuid.as_bytes()));
        }
    }
    false
}

/// The cgroup path from `/proc/<pid>/cgroup`: the unified (`0::`) line when it names a real
/// cgroup, else the v1 `cpu` controller's line (hybrid and v1-only hosts).
pub fn parse_cgroup(text: &str) -> Option<String> {
    let mut cpu_v1 = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() && path != "/" {
            return Some(path.to_owned());
        }
        if controllers.split(',').any(|c| c == "cpu") {
            cpu_v1 = Some(path.to_owned());
        }
    }
    cpu_v1
}

fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "6f1c1b8e-3d5a-4c1e-9a0b-1234567890ab";

    #[test]
    fn pid_files_are_range_checked() {
        assert_eq!(parse_pid("4242\n"), Some(4242));
        assert_eq!(parse_pid("0"), None);
        assert_eq!(parse_pid("99999999"), None);
        assert_eq!(parse_pid("-1"), None);
        assert_eq!(parse_pid("12ab"), None);
    }

    #[test]
    fn uuid_must_follow_the_uuid_flag() {
        let cmd =
            format!("/usr/bin/qemu-system-x86_64\0-name\0guest=vm-0000\0-uuid\0{UUID}\0-m\064\0");
        assert!(cmdline_has_uuid(cmd.as_bytes(), UUID));
        assert!(cmdline_has_uuid(cmd.as_bytes(), &UUID.to_uppercase()));
        assert!(!cmdline_has_uuid(
            cmd.as_bytes(),
            "00000000-3d5a-4c1e-9a0b-1234567890ab"
        ));
        let elsewhere = format!("/bin/sleep\0{UUID}\0");
        assert!(!cmdline_has_uuid(elsewhere.as_bytes(), UUID));
        assert!(!cmdline_has_uuid(b"qemu\0-uuid", UUID));
    }

    #[test]
    fn cgroup_prefers_v2_then_v1_cpu() {
        let v2 = "0::/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator\n";
        assert_eq!(
            parse_cgroup(v2).as_deref(),
            Some("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator")
        );
        let hybrid = "12:cpu,cpuacct:/machine/qemu-1-vm-0000.libvirt-qemu/emulator\n1:name=systemd:/\n0::/\n";
        assert_eq!(
            parse_cgroup(hybrid).as_deref(),
            Some("/machine/qemu-1-vm-0000.libvirt-qemu/emulator")
        );
        assert_eq!(parse_cgroup("garbage\n"), None);
    }

    #[test]
    fn pid_is_trusted_only_with_matching_cmdline() {
        let dir = std::env::temp_dir().join(format!("dvms-libvirt-procfs-{}", std::process::id()));
        let proc_root = dir.join("proc");
        std::fs::create_dir_all(proc_root.join("77")).unwrap();
        std::fs::write(dir.join("vm-a.pid"), "77\n").unwrap();
        std::fs::write(dir.join("vm-b.pid"), "78\n").unwrap();
        std::fs::write(
            proc_root.join("77/cmdline"),
            format!("qemu\0-uuid\0{UUID}\0"),
        )
        .unwrap();
        assert_eq!(qemu_pid(&dir, &proc_root, "vm-a", UUID), Some(77));
        assert_eq!(qemu_pid(&dir, &proc_root, "vm-a", "other"), None);
        assert_eq!(qemu_pid(&dir, &proc_root, "vm-b", UUID), None);
        assert_eq!(qemu_pid(&dir, &proc_root, "vm-c", UUID), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
