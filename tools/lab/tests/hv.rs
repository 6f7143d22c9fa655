//! The fake hypervisor through its socket, as an agent's `lab` actuator uses it.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dvms_lab::hv::proto::{Request, Response};
use dvms_lab::hv::{HostSpec, HvConfig, Hypervisor, VmSpec, request};

/// A lab of `hosts` hosts of 2 cores and 4 GiB in a fresh directory.
fn lab(test: &str, hosts: usize, bandwidth_mib_s: f64) -> (Hypervisor, PathBuf) {
    let dir = std::env::temp_dir().join(format!("dvms-lab-hv-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test dir");
    let cfg = HvConfig {
        dir: dir.join("hosts"),
        socket: dir.join("lab.sock"),
        bandwidth_mib_s,
        tick: Duration::from_millis(20),
    };
    let specs: Vec<HostSpec> = (0..hosts)
        .map(|i| HostSpec {
            name: format!("h{i:02}"),
            cpu_milli: 2000,
            mem_mib: 4096,
        })
        .collect();
    (Hypervisor::start(&cfg, &specs).expect("start"), dir)
}

fn vm(name: &str, mem_mib: u64) -> VmSpec {
    VmSpec {
        name: name.into(),
        vcpus: 1,
        mem_mib,
    }
}

fn migrate(vm: &str, from: &str, to: &str) -> Request {
    Request::Migrate {
        vm: vm.into(),
        from: from.into(),
        to: to.into(),
    }
}

/// Polls `cond` every 10 ms; a hang guard, not a timing assertion.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn migration_moves_the_vm_to_its_destination() {
    let (hv, dir) = lab("moves", 2, 10_000.0);
    hv.add_vm("h00", &vm("vm-0000", 100), 500).expect("add");
    let answer = request(hv.socket(), &migrate("vm-0000", "h00", "h01")).expect("answer");
    assert!(answer.ok, "{answer:?}");
    assert!(answer.duration_ms.is_some());
    assert_eq!(hv.location("vm-0000").as_deref(), Some("h01"));
    let audit = hv.audit().expect("audit");
    assert!(audit.lost.is_empty() && audit.duplicated.is_empty() && audit.misplaced.is_empty());
    let (stats, _, in_flight) = hv.stats();
    assert_eq!((stats.migrations, in_flight), (1, 0));
    // Moving it back works too; moving it from the wrong source does not.
    let wrong = request(hv.socket(), &migrate("vm-0000", "h00", "h01")).expect("answer");
    assert!(!wrong.ok && wrong.error.as_deref().unwrap_or("").contains("is on h01"));
    let back = request(hv.socket(), &migrate("vm-0000", "h01", "h00")).expect("answer");
    assert!(back.ok, "{back:?}");
    assert_eq!(hv.location("vm-0000").as_deref(), Some("h00"));
    drop(hv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn abort_leaves_the_vm_on_its_source() {
    // 1000 MiB at 1 MiB/s: the migration would take over 16 minutes.
    let (hv, dir) = lab("abort", 2, 1.0);
    hv.add_vm("h00", &vm("vm-0000", 1000), 900).expect("add");
    let socket = hv.socket().to_owned();
    let client = std::thread::spawn(move || request(&socket, &migrate("vm-0000", "h00", "h01")));
    let status = || {
        request(
            hv.socket(),
            &Request::Status {
                vm: "vm-0000".into(),
            },
        )
        .expect("status")
    };
    wait_until("the migration is seen", || status().migrating == Some(true));
    assert_eq!(status().to, Some(Some("h01".to_owned())));
    let again = request(hv.socket(), &migrate("vm-0000", "h00", "h01")).expect("answer");
    assert!(
        !again.ok,
        "a second migration of a migrating VM must be refused"
    );
    let abort = request(
        hv.socket(),
        &Request::Abort {
            vm: "vm-0000".into(),
        },
    )
    .expect("abort");
    assert_eq!(abort, Response::ok());
    let migrated = client.join().expect("client").expect("answer");
    assert_eq!(migrated, Response::error("aborted"));
    assert_eq!(hv.location("vm-0000").as_deref(), Some("h00"));
    let after = status();
    assert_eq!(after.migrating, Some(false));
    assert!(matches!(after.to, None | Some(None)), "{after:?}");
    let twice = request(
        hv.socket(),
        &Request::Abort {
            vm: "vm-0000".into(),
        },
    )
    .expect("abort");
    assert_eq!(twice, Response::error("not migrating"));
    assert!(hv.audit().expect("audit").lost.is_empty());
    drop(hv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_that_disconnects_does_not_stop_its_migration() {
    // 200 MiB at 1000 MiB/s: about 0.2 s.
    let (hv, dir) = lab("disconnect", 2, 1000.0);
    hv.add_vm("h00", &vm("vm-0000", 200), 100).expect("add");
    {
        let mut s = UnixStream::connect(hv.socket()).expect("connect");
        let mut line = migrate("vm-0000", "h00", "h01").to_line();
        line.push('\n');
        s.write_all(line.as_bytes()).expect("send");
        // Dropped here, before any answer.
    }
    wait_until("the VM is on h01", || {
        hv.location("vm-0000").as_deref() == Some("h01")
    });
    let audit = hv.audit().expect("audit");
    assert!(audit.lost.is_empty() && audit.duplicated.is_empty() && audit.misplaced.is_empty());
    assert_eq!(hv.stats().0.migrations, 1);
    drop(hv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn impossible_migrations_are_refused_with_a_reason() {
    let (hv, dir) = lab("refuse", 2, 1000.0);
    hv.add_vm("h00", &vm("vm-0000", 3000), 100).expect("add");
    hv.add_vm("h01", &vm("vm-0001", 2000), 100).expect("add");
    let cases = [
        (migrate("vm-9999", "h00", "h01"), "unknown vm"),
        (migrate("vm-0000", "h00", "h07"), "unknown node h07"),
        (migrate("vm-0000", "h00", "h00"), "already on h00"),
        (migrate("vm-0000", "h00", "h01"), "not enough memory"),
    ];
    for (req, why) in cases {
        let a = request(hv.socket(), &req).expect("answer");
        assert!(
            !a.ok && a.error.as_deref().unwrap_or("").contains(why),
            "{req:?}: {a:?}"
        );
    }
    // Garbage gets an error naming the problem, not a hang or a crash.
    let mut s = UnixStream::connect(hv.socket()).expect("connect");
    s.write_all(b"{\"op\":\"explode\"}\n").expect("send");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut s, &mut answer).expect("read");
    assert!(answer.contains("explode"), "{answer}");
    assert_eq!(hv.location("vm-0000").as_deref(), Some("h00"));
    drop(hv);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_saturated_host_caps_use_and_shows_the_rest_as_waiting() {
    let (hv, dir) = lab("capped", 1, 1000.0);
    for i in 0..3 {
        hv.add_vm("h00", &vm(&format!("vm-{i:04}"), 100), 1000)
            .expect("add");
    }
    wait_until("a tick", || hv.hosts()[0].demand_milli > 0);
    let h = &hv.hosts()[0];
    assert_eq!((h.demand_milli, h.use_milli, h.vms), (3000, 2000, 3));
    wait_until("an overload is counted", || {
        hv.stats().0.cumulated_violation_s > 0.0
    });
    assert_eq!(hv.stats().1, 1);
    hv.set_demand("vm-0000", 0).expect("set");
    wait_until("the overload ends", || hv.stats().1 == 0);
    drop(hv);
    let _ = std::fs::remove_dir_all(dir);
}
