//! The libvirt actuator against a fake `dvms-libvirt` (a shell script that records each
//! request and answers by its `op`); the real one is exercised by
//! tools/libvirt-lab/e2e-agents.sh.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::{LibvirtSettings, RawLibvirt};

/// Writes an executable fake dvms-libvirt in `dir`: each request is appended to `dir/requests`;
/// `migrate` waits (up to 10 s) while `dir/hold` exists, then prints `dir/migrate.json`
/// (or, once `dir/aborted` exists, `dir/migrate-aborted.json`); `abort` creates `dir/aborted`
/// and prints `dir/abort.json`; `inventory` prints `dir/inventory.json`.
fn fake(dir: &Path) -> PathBuf {
    let bin = dir.join("dvms-libvirt");
    let script = r#"#!/bin/sh
d="$(dirname "$0")"
req="$(cat)"
printf '%s\n' "$req" >>"$d/requests"
echo "fake dvms-libvirt: got a request" >&2
case "$req" in
*'"op":"migrate"'*)
    n=0
    while [ -e "$d/hold" ] && [ ! -e "$d/aborted" ] && [ "$n" -lt 200 ]; do sleep 0.05; n=$((n+1)); done
    if [ -e "$d/aborted" ]; then cat "$d/migrate-aborted.json"; else cat "$d/migrate.json"; fi ;;
*'"op":"abort"'*) touch "$d/aborted"; cat "$d/abort.json" ;;
*'"op":"inventory"'*) cat "$d/inventory.json" ;;
*) echo '{"answer":"error","version":1,"kind":"bad-request","message":"?"}'; exit 64 ;;
esac
"#;
    std::fs::write(&bin, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn settings(bin: &Path) -> LibvirtSettings {
    let raw = RawLibvirt {
        binary: bin.display().to_string(),
        addresses: vec!["h01=169.254.107.2".into()],
        migrate_uri: "tcp://{address}".into(),
        bandwidth_mib_s: 500,
        timeout: "20s".into(),
        allow_unsafe: true,
        ..RawLibvirt::default()
    };
    LibvirtSettings::from_raw(&raw, |_, t, _, _| Ok(humantime::parse_duration(t).unwrap())).unwrap()
}

fn req(timeout: Duration) -> MigrateRequest {
    MigrateRequest {
        vm: "vm-a".into(),
        from: "h00".into(),
        to: "h01".into(),
        timeout,
    }
}

fn requests(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("requests"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const FAILED: &str = r#"{"answer":"error","version":1,"kind":"migration-failed","message":"live migration of vm-a to h01 failed","libvirt":{"code":38,"domain":7,"message":"unable to connect to server at '169.254.107.2:16509': Connection refused"},"source_state":"running"}"#;

#[tokio::test]
async fn a_migration_sends_the_documented_request_and_reports_done() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(
        dir.path().join("migrate.json"),
        r#"{"answer":"migrated","version":1,"vm":"vm-a","destination":"h01","duration_ms":812,"stats":{"time_elapsed_ms":700,"downtime_ms":41}}"#,
    )
    .unwrap();
    let a = Libvirt::new(settings(&bin));
    // the shorter of the protocol's timeout (5 s) and the section's (20 s)
    assert_eq!(
        a.migrate(req(Duration::from_secs(5))).await,
        MigrationOutcome::Done
    );
    let sent = requests(dir.path());
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0],
        serde_json::json!({"op":"migrate","version":1,"connect":"qemu:///system","vm":"vm-a",
            "destination":{"name":"h01","address":"169.254.107.2"},
            "dest_uri_template":"qemu+tcp://{address}/system","migrate_uri_template":"tcp://{address}",
            "bandwidth_mib_s":500,"timeout_ms":5000,"allow_unsafe":true})
    );
}

#[tokio::test]
async fn a_refused_migration_carries_libvirts_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(dir.path().join("migrate.json"), FAILED).unwrap();
    let out = Libvirt::new(settings(&bin))
        .migrate(req(Duration::from_secs(60)))
        .await;
    let MigrationOutcome::Failed { reason } = out else {
        panic!("{out:?}");
    };
    assert!(reason.starts_with("migration-failed: "), "{reason}");
    assert!(
        reason.contains("libvirt error 38 (domain 7): unable to connect")
            && reason.contains("Running"),
        "{reason}"
    );
    assert_eq!(requests(dir.path())[0]["timeout_ms"], 20_000);
}

#[tokio::test]
async fn garbage_a_missing_binary_and_a_bad_exit_are_failures() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(dir.path().join("migrate.json"), "not json\n").unwrap();
    let out = Libvirt::new(settings(&bin))
        .migrate(req(Duration::from_secs(60)))
        .await;
    assert!(
        matches!(&out, MigrationOutcome::Failed { reason } if reason.contains("bad answer from dvms-libvirt") && reason.contains("fake dvms-libvirt: got a request")),
        "{out:?}"
    );
    let out = Libvirt::new(settings(Path::new("/nonexistent/dvms-libvirt")))
        .migrate(req(Duration::from_secs(60)))
        .await;
    assert!(
        matches!(&out, MigrationOutcome::Failed { reason } if reason.contains("cannot run")),
        "{out:?}"
    );
    // an answer of the wrong kind
    std::fs::write(
        dir.path().join("migrate.json"),
        r#"{"answer":"aborted","version":1,"vm":"vm-a"}"#,
    )
    .unwrap();
    let out = Libvirt::new(settings(&bin))
        .migrate(req(Duration::from_secs(60)))
        .await;
    assert!(
        matches!(&out, MigrationOutcome::Failed { reason } if reason.contains("unexpected answer")),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_abort_during_a_migration_ends_it_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(dir.path().join("hold"), "").unwrap();
    std::fs::write(dir.path().join("migrate.json"), FAILED).unwrap();
    std::fs::write(
        dir.path().join("migrate-aborted.json"),
        FAILED.replace(
            "unable to connect to server at '169.254.107.2:16509': Connection refused",
            "operation aborted: migration out job: canceled by client",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("abort.json"),
        r#"{"answer":"aborted","version":1,"vm":"vm-a"}"#,
    )
    .unwrap();
    let a = Libvirt::new(settings(&bin));
    let (out, aborted) = tokio::join!(a.migrate(req(Duration::from_secs(60))), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.abort("vm-a").await
    });
    assert_eq!(aborted, Ok(()));
    assert_eq!(out, MigrationOutcome::Aborted);
    let ops: Vec<_> = requests(dir.path())
        .iter()
        .map(|r| r["op"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops, ["migrate", "abort"]);
    // the abort was consumed: the next failure is a failure
    std::fs::remove_file(dir.path().join("aborted")).unwrap();
    std::fs::remove_file(dir.path().join("hold")).unwrap();
    assert!(matches!(
        a.migrate(req(Duration::from_secs(60))).await,
        MigrationOutcome::Failed { .. }
    ));
}

#[tokio::test]
async fn an_abort_refused_by_libvirt_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(
        dir.path().join("abort.json"),
        r#"{"answer":"error","version":1,"kind":"not-migrating","message":"no job on vm-a"}"#,
    )
    .unwrap();
    let err = Libvirt::new(settings(&bin))
        .abort("vm-a")
        .await
        .unwrap_err();
    assert!(err.starts_with("not-migrating: no job on vm-a"), "{err}");
}

#[tokio::test]
async fn a_stuck_dvms_libvirt_is_given_up_and_its_job_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    std::fs::write(dir.path().join("hold"), "").unwrap();
    std::fs::write(dir.path().join("migrate.json"), FAILED).unwrap();
    std::fs::write(dir.path().join("migrate-aborted.json"), FAILED).unwrap();
    std::fs::write(
        dir.path().join("abort.json"),
        r#"{"answer":"aborted","version":1,"vm":"vm-a"}"#,
    )
    .unwrap();
    let a = Libvirt::new(settings(&bin)).with_grace(Duration::from_millis(100));
    // 1 s timeout + 0.1 s grace, while the fake holds for up to 10 s
    let out = a.migrate(req(Duration::from_secs(1))).await;
    assert!(
        matches!(&out, MigrationOutcome::Failed { reason } if reason.contains("no answer within")),
        "{out:?}"
    );
    let ops: Vec<_> = requests(dir.path())
        .iter()
        .map(|r| r["op"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ops, ["migrate", "abort"]);
}

#[tokio::test]
async fn the_inventory_decides_what_is_migratable() {
    let dir = tempfile::tempdir().unwrap();
    let bin = fake(dir.path());
    let inv = Inventory::new(settings(&bin));
    assert!(
        !inv.migratable("vm-a", 100),
        "nothing is migratable before the first inventory"
    );
    let vm = |name: &str, pid: Option<u32>, state: &str, migratable: bool| {
        serde_json::json!({"name":name,"uuid":"8f0e6a3c-0000-4000-8000-000000000000","state":state,
            "qemu_pid":pid,"vcpus":1,"memory_mib":64,"max_memory_mib":64,"persistent":true,
            "migratable":migratable})
    };
    let mut vms = vec![
        vm("vm-a", Some(100), "running", true),
        vm("vm-b", Some(101), "running", false),
        vm("vm-c", Some(102), "running", true),
        vm("vm-d", None, "shutoff", true),
    ];
    vms[3].as_object_mut().unwrap().remove("qemu_pid");
    std::fs::write(
        dir.path().join("inventory.json"),
        serde_json::json!({"answer":"inventory","version":1,"hostname":"h00","vms":vms})
            .to_string(),
    )
    .unwrap();
    assert_eq!(inv.refresh().await, Ok(4));
    assert!(inv.migratable("vm-a", 100));
    assert!(!inv.migratable("vm-b", 101), "opted out");
    assert!(!inv.migratable("vm-c", 999), "another QEMU than libvirt's");
    assert!(!inv.migratable("vm-d", 103), "not running");
    assert!(!inv.migratable("vm-e", 104), "unknown to libvirt");
    assert_eq!(inv.get("vm-b").map(|v| v.uuid.len()), Some(36));
    // a failed read keeps the previous inventory
    std::fs::write(dir.path().join("inventory.json"), "garbage").unwrap();
    assert!(inv.refresh().await.is_err());
    assert!(inv.migratable("vm-a", 100));
}
