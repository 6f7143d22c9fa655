//! The libvirt hosts of a lab, through the project's script `tools/libvirt-lab/lab.sh` (each
//! host a libvirtd in its own mount, network and cgroup namespaces with a TCP listener on a
//! 169.254.x.x address), the checks made before starting one, and the lab's state file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// The most hosts one lab starts (lab.sh's limit).
pub const MAX_HOSTS: usize = 50;

/// One lab: its id (0..9) and the script that drives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lab {
    /// The lab id: its own bridge, namespaces, cgroups, addresses and state directory.
    pub id: u8,
    /// `tools/libvirt-lab/lab.sh`.
    pub script: PathBuf,
}

/// The script: `$DVMS_LIBVIRT_LAB` when set, else the checkout this crate was built from, else
/// `tools/libvirt-lab/lab.sh` above the executable (`target/debug/dvms-lab`).
pub fn locate_script() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("DVMS_LIBVIRT_LAB") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("$DVMS_LIBVIRT_LAB = {} is not a file", p.display()))
        };
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../libvirt-lab/lab.sh");
    if built.is_file() {
        return Ok(built);
    }
    if let Ok(exe) = std::env::current_exe() {
        for up in exe.ancestors().skip(1).take(4) {
            let p = up.join("tools/libvirt-lab/lab.sh");
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(
        "tools/libvirt-lab/lab.sh not found (run dvms-lab from a checkout, or set $DVMS_LIBVIRT_LAB)"
            .to_owned(),
    )
}

impl Lab {
    /// Lab `id` (0..9) driven by the script found by [`locate_script`].
    pub fn new(id: u8) -> Result<Lab, String> {
        if id > 9 {
            return Err(format!("--id {id}: expected 0 to 9"));
        }
        Ok(Lab {
            id,
            script: locate_script()?,
        })
    }

    /// The lab's state directory (lab.sh's: `$DVMS_LIBVIRT_LAB_DIR` or
    /// `/tmp/dvms-libvirt-lab-<id>`).
    pub fn dir(&self) -> PathBuf {
        std::env::var_os("DVMS_LIBVIRT_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("/tmp/dvms-libvirt-lab-{}", self.id)))
    }

    /// Whether the lab is up (lab.sh's `lab.env` exists).
    pub fn is_up(&self) -> bool {
        self.dir().join("lab.env").exists()
    }

    /// `lab.sh --id ID ARGS...`: its stdout; its stderr is passed through (progress) unless
    /// `quiet`, and ends the error message on failure.
    pub fn sh(&self, args: &[&str], quiet: bool) -> Result<String, String> {
        let mut cmd = Command::new(&self.script);
        cmd.arg("--id")
            .arg(self.id.to_string())
            .args(args)
            .stdin(Stdio::null());
        cmd.stderr(if quiet {
            Stdio::piped()
        } else {
            Stdio::inherit()
        });
        let out = cmd
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.script.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "lab.sh {} failed ({}){}{}",
                args.join(" "),
                out.status,
                if err.trim().is_empty() { "" } else { ": " },
                err.trim()
            ))
        }
    }

    /// The command prefix that runs a program inside `host`'s namespaces and cgroups, as the
    /// same process (lab.sh `exec` ends by `exec`ing it).
    pub fn exec_prefix(&self, host: &str) -> Vec<OsString> {
        vec![
            self.script.clone().into_os_string(),
            "--id".into(),
            self.id.to_string().into(),
            "exec".into(),
            host.into(),
        ]
    }

    /// `host`'s libvirt URI.
    pub fn uri(&self, host: &str) -> Result<String, String> {
        std::fs::read_to_string(self.dir().join(host).join("uri"))
            .map(|s| s.trim().to_owned())
            .map_err(|e| format!("no URI for host {host}: {e}"))
    }

    /// `host`'s address (169.254.x.y).
    pub fn addr(&self, host: &str) -> Result<String, String> {
        self.sh(&["addr", host], true)
    }

    /// Where `vm`'s serial socket is on `host` (seen from the root namespaces).
    pub fn serial_socket(&self, host: &str, vm: &str) -> PathBuf {
        self.dir()
            .join(host)
            .join("lib/qemu")
            .join(format!("dvms-serial-{vm}.sock"))
    }

    /// The guests libvirt runs on `host` now (`virsh list --name`).
    pub fn running(&self, host: &str) -> Result<Vec<String>, String> {
        let uri = self.uri(host)?;
        let out = Command::new("virsh")
            .args(["-q", "-c", &uri, "list", "--name"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run virsh: {e}"))?;
        if !out.status.success() {
            return Err(format!("virsh list on {host} failed ({})", out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// The state file of `dvms-lab libvirt` in the lab's directory.
    pub fn state_file(&self) -> PathBuf {
        self.dir().join("dvms-lab.json")
    }

    /// Reads the state file (an empty state when there is none).
    pub fn load_state(&self) -> Result<State, String> {
        let p = self.state_file();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("cannot read {}: {e}", p.display())),
        }
    }

    /// Writes the state file (atomically).
    pub fn save_state(&self, s: &State) -> Result<(), String> {
        let p = self.state_file();
        let tmp = p.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(s).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &p))
            .map_err(|e| format!("cannot write {}: {e}", p.display()))
    }
}

/// What `dvms-lab libvirt` made in a lab, so that later commands (and `down`) find it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Host names, in order (`h00`, `h01`, ...).
    pub hosts: Vec<String>,
    /// Guests, in order: name, first host, memory.
    pub vms: Vec<GuestState>,
    /// Processes started by `dvms-lab libvirt` that `down` must stop: pid and the command name
    /// (`/proc/PID/comm`) it had, so a reused pid is never signalled.
    pub pids: Vec<(u32, String)>,
}

/// One guest of the lab.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestState {
    /// Domain name.
    pub name: String,
    /// The host it was started on.
    pub host: String,
    /// Memory, MiB.
    pub mem_mib: u64,
}

/// A process's command name, from `/proc/PID/comm`.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// What the machine lacks to run a libvirt lab, each with what to do about it; empty when
/// nothing is missing. Checks: root, the programs tools/setup-libvirt.sh installs, network
/// namespaces, private mount and cgroup namespaces.
pub fn preflight() -> Vec<String> {
    let mut missing = Vec::new();
    if effective_uid() != Some(0) {
        missing.push(
            "not root: a libvirt lab creates namespaces, bridges and libvirt daemons (run as root)"
                .to_owned(),
        );
        return missing;
    }
    for (file, pkg) in [
        ("/usr/sbin/libvirtd", "libvirt-daemon-system"),
        ("/usr/bin/virsh", "libvirt-clients"),
        ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
        ("/usr/sbin/ip", "iproute2"),
        ("/usr/sbin/iptables", "iptables"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/nsenter", "util-linux"),
    ] {
        if !Path::new(file).exists() {
            missing.push(format!(
                "no {file} (package {pkg}): run tools/setup-libvirt.sh"
            ));
        }
    }
    if !missing.is_empty() {
        return missing;
    }
    let probe = format!("dvl-probe-{}", std::process::id());
    if ok(Command::new("ip").args(["netns", "add", &probe])) {
        let _ = ok(Command::new("ip").args(["netns", "del", &probe]));
    } else {
        missing.push("cannot create network namespaces (ip netns add failed)".to_owned());
    }
    if !ok(Command::new("unshare").args([
        "--mount",
        "--cgroup",
        "--propagation",
        "private",
        "true",
    ])) {
        missing.push("cannot create mount and cgroup namespaces (unshare failed)".to_owned());
    }
    missing
}

fn ok(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The effective uid, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_euid(&text)
}

fn parse_euid(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Whether guests get KVM (else QEMU's TCG: much slower to start).
pub fn kvm_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euid_is_the_second_uid() {
        assert_eq!(parse_euid("Name:\tx\nUid:\t1000\t0\t0\t0\n"), Some(0));
        assert_eq!(parse_euid("Uid:\t0\t1000\t0\t0\n"), Some(1000));
        assert_eq!(parse_euid("Name: x\n"), None);
    }

    #[test]
    fn state_round_trips() {
        let s = State {
            hosts: vec!["h00".into()],
            vms: vec![GuestState {
                name: "vm-00-0".into(),
                host: "h00".into(),
                mem_mib: 64,
            }],
            pids: vec![(42, "dvmsd".into())],
        };
        let text = serde_json::to_string(&s).expect("json");
        assert_eq!(serde_json::from_str::<State>(&text).expect("back"), s);
    }

    #[test]
    fn the_script_is_found_in_this_checkout() {
        let p = locate_script().expect("lab.sh");
        assert!(p.ends_with("lab.sh"), "{}", p.display());
        assert!(Lab::new(10).is_err());
    }
}
