//! The lab's guests: duty-cycle boot sectors (`make-bootsector.sh duty`) whose vCPU spins the
//! given percentage of each 50 ms and halts for the rest, so the CPU demand dvms-host measures
//! (use plus run-queue wait) follows the workload. The duty cycle is one byte 0..100 written to
//! the guest's serial port: a unix socket per host, so after a live migration the byte goes to
//! the destination's socket.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::host::{GuestState, Lab};

/// The guest name for guest `j` of host `h`.
pub fn guest_name(h: usize, j: usize) -> String {
    format!("vm-{h:02}-{j}")
}

/// The duty cycle (percent, 0..100) for a demand in thousandths of a core.
pub fn duty_pct(cpu_milli: u64) -> u8 {
    u8::try_from(cpu_milli.saturating_add(5) / 10)
        .unwrap_or(100)
        .min(100)
}

/// Defines and starts `per_host` guests on every host, guest `i` (over all hosts, host-major)
/// at the duty cycle `initial(i)`; returns them in that order.
pub fn create(
    lab: &Lab,
    hosts: &[String],
    per_host: usize,
    mem_mib: u64,
    initial: &dyn Fn(usize) -> u64,
    quiet: bool,
) -> Result<Vec<GuestState>, String> {
    let mut out = Vec::new();
    for (h, host) in hosts.iter().enumerate() {
        for j in 0..per_host {
            let name = guest_name(h, j);
            let duty = duty_pct(initial(out.len())).to_string();
            let mem = mem_mib.to_string();
            lab.sh(
                &[
                    "vm", host, &name, "--mode", "duty", "--duty", &duty, "--mem", &mem,
                ],
                quiet,
            )?;
            out.push(GuestState {
                name,
                host: host.clone(),
                mem_mib,
            });
        }
    }
    Ok(out)
}

/// Sets `vm`'s duty cycle: the byte goes to every host where the guest has a serial socket
/// that accepts a connection (during a migration, both source and destination: whichever
/// keeps running has it). Returns how many sockets took it; an error when none did.
pub fn set_duty(lab: &Lab, hosts: &[String], vm: &str, pct: u8) -> Result<usize, String> {
    let pct = pct.min(100);
    let mut sent = 0;
    let mut last_err = None;
    for h in hosts {
        let sock = lab.serial_socket(h, vm);
        if !sock.exists() {
            continue;
        }
        match UnixStream::connect(&sock).and_then(|mut s| {
            s.set_write_timeout(Some(Duration::from_secs(1)))?;
            s.write_all(&[pct])
        }) {
            Ok(()) => sent += 1,
            Err(e) => last_err = Some(format!("{}: {e}", sock.display())),
        }
    }
    if sent == 0 {
        Err(last_err.unwrap_or_else(|| format!("{vm}: no serial socket on any host")))
    } else {
        Ok(sent)
    }
}

/// Where every guest runs, through libvirt on every host: guest name to the hosts running it.
/// A host whose libvirtd does not answer is skipped (and named in the error list).
pub fn placement(lab: &Lab, hosts: &[String]) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut errors = Vec::new();
    for h in hosts {
        match lab.running(h) {
            Ok(vms) => {
                for vm in vms {
                    map.entry(vm).or_default().push(h.clone());
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (map, errors)
}

/// Lost (running nowhere) and duplicated (running on several hosts) guests.
pub fn audit(guests: &[GuestState], map: &BTreeMap<String, Vec<String>>) -> (usize, usize) {
    let mut lost = 0;
    let mut dup = 0;
    for g in guests {
        match map.get(&g.name).map_or(0, Vec::len) {
            0 => lost += 1,
            1 => {}
            _ => dup += 1,
        }
    }
    (lost, dup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duty_rounds_and_caps() {
        assert_eq!(duty_pct(0), 0);
        assert_eq!(duty_pct(604), 60);
        assert_eq!(duty_pct(605), 61);
        assert_eq!(duty_pct(1000), 100);
        assert_eq!(duty_pct(5000), 100);
        assert_eq!(duty_pct(u64::MAX), 100);
    }

    #[test]
    fn audit_counts_lost_and_duplicated() {
        let g = |n: &str| GuestState {
            name: n.into(),
            host: "h00".into(),
            mem_mib: 64,
        };
        let guests = [g("a"), g("b"), g("c")];
        let mut map = BTreeMap::new();
        map.insert("a".to_owned(), vec!["h00".to_owned()]);
        map.insert("b".to_owned(), vec!["h00".to_owned(), "h01".to_owned()]);
        assert_eq!(audit(&guests, &map), (1, 1));
    }

    #[test]
    fn a_guest_with_no_socket_is_an_error() {
        let lab = Lab {
            id: 9,
            script: "/nonexistent/lab.sh".into(),
        };
        let e = set_duty(&lab, &["h77".to_owned()], "nope", 50).unwrap_err();
        assert!(e.contains("nope"), "{e}");
    }
}
