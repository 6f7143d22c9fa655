//! The backend against libvirt's `test` driver (no daemon, no root): a node file with two running
//! domains, one of which opts out of migration through its metadata. Real migrations are tested
//! against real libvirt by `tools/libvirt-lab/e2e.sh`.
#![cfg(feature = "libvirt")]

use std::path::PathBuf;

use dvms_libvirt::backend::execute;
use dvms_libvirt::policy::NAMESPACE;
use dvms_libvirt::protocol::{Answer, Destination, ErrorKind, Request, VERSION, VmState};

/// Writes the test driver's node file; each test gets its own directory.
fn node(test: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("dvms-libvirt-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the temp dir is writable");
    let domain = |name: &str, uuid: &str, metadata: &str| {
        format!(
            "<domain type='test'><name>{name}</name><uuid>{uuid}</uuid><memory>65536</memory>\
             <currentMemory>65536</currentMemory><vcpu>2</vcpu><os><type>hvm</type></os>\
             <metadata>{metadata}</metadata></domain>"
        )
    };
    let xml = format!(
        "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>\
         <active>2</active><mhz>2000</mhz><model>x86_64</model></cpu><memory>8388608</memory>{}{}</node>",
        domain("vm-free", "11111111-2222-4333-8444-555555555555", ""),
        domain(
            "vm-pinned",
            "66666666-7777-4888-8999-aaaaaaaaaaaa",
            &format!(r#"<dvms:policy xmlns:dvms="{NAMESPACE}" migrate="never"/>"#)
        ),
    );
    let file = dir.join("node.xml");
    std::fs::write(&file, xml).expect("the temp dir is writable");
    let uri = format!("test://{}", file.display());
    (dir, uri)
}

fn migrate(uri: &str, vm: &str) -> Request {
    Request::Migrate {
        version: VERSION,
        connect: uri.to_owned(),
        vm: vm.to_owned(),
        destination: Destination {
            name: "h01".into(),
            address: "169.254.100.2".into(),
        },
        dest_uri_template: "qemu+tcp://{address}/system".into(),
        migrate_uri_template: None,
        bandwidth_mib_s: Some(100),
        max_downtime_ms: None,
        timeout_ms: 10_000,
        allow_unsafe: false,
    }
}

#[test]
fn inventory_lists_domains_with_sizes_and_policy() {
    let (dir, uri) = node("inventory");
    let req = Request::Inventory {
        version: VERSION,
        connect: uri,
        qemu_pid_dir: Some(dir.display().to_string()),
    };
    let Answer::Inventory { vms, .. } = execute(&req) else {
        panic!("not an inventory")
    };
    let names: Vec<_> = vms.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["vm-free", "vm-pinned"]);
    for vm in &vms {
        assert_eq!(vm.state, VmState::Running, "{vm:?}");
        assert_eq!((vm.vcpus, vm.memory_mib), (2, 64), "{vm:?}");
        assert_eq!(vm.qemu_pid, None, "no pid file, no pid: {vm:?}");
        assert!(vm.persistent, "{vm:?}");
    }
    assert!(vms[0].migratable);
    assert!(!vms[1].migratable, "the metadata opt-out is read");
    assert_eq!(vms[1].policy_error, None);
    assert_eq!(vms[0].uuid, "11111111-2222-4333-8444-555555555555");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn opted_out_domain_is_refused_before_libvirt_migrates() {
    let (dir, uri) = node("optout");
    let answer = execute(&migrate(&uri, "vm-pinned"));
    assert!(
        matches!(
            answer,
            Answer::Error {
                kind: ErrorKind::OptedOut,
                ..
            }
        ),
        "{answer:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn failed_migration_reports_libvirt_error_and_source_state() {
    // The test driver cannot migrate: libvirt's refusal must come back verbatim, with the
    // domain still running on the source.
    let (dir, uri) = node("failed");
    let answer = execute(&migrate(&uri, "vm-free"));
    match answer {
        Answer::Error {
            kind,
            libvirt,
            source_state,
            ..
        } => {
            assert_eq!(kind, ErrorKind::MigrationFailed);
            let libvirt = libvirt.expect("libvirt's error");
            assert!(
                libvirt.code > 0 && !libvirt.message.is_empty(),
                "{libvirt:?}"
            );
            assert_eq!(source_state, Some(VmState::Running));
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn unknown_domain_and_unreachable_libvirt_are_typed_errors() {
    let (dir, uri) = node("errors");
    let answer = execute(&Request::JobStatus {
        version: VERSION,
        connect: uri.clone(),
        vm: "vm-zzz".into(),
    });
    assert!(
        matches!(
            answer,
            Answer::Error {
                kind: ErrorKind::NoSuchVm,
                ..
            }
        ),
        "{answer:?}"
    );
    let answer = execute(&Request::Abort {
        version: VERSION,
        connect: uri,
        vm: "vm-zzz".into(),
    });
    assert!(
        matches!(
            answer,
            Answer::Error {
                kind: ErrorKind::NoSuchVm,
                ..
            }
        ),
        "{answer:?}"
    );
    let missing = format!("test://{}/absent.xml", dir.display());
    let answer = execute(&Request::Inventory {
        version: VERSION,
        connect: missing,
        qemu_pid_dir: None,
    });
    match answer {
        Answer::Error {
            kind: ErrorKind::Connect,
            libvirt: Some(e),
            ..
        } => assert!(!e.message.is_empty()),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(dir).unwrap();
}
