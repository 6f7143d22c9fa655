//! Who may run and join: the cluster key, the config file, and dvmsctl facing no agent.

use std::process::Command;
use std::time::Duration;

use dvms_agent::control::proto::{Request, Response};
use dvms_testkit::{Lab, LabSpec, bin, serial};

#[test]
fn agent_without_the_cluster_key_cannot_join() {
    let _one = serial();
    let mut lab = Lab::new(LabSpec {
        hosts: 3,
        ..LabSpec::default()
    });
    // h00 and h01 share the key; h02 has another one and bootstraps from h00 all the same.
    lab.spawn(0);
    let s = lab.wait("h00 ready", Duration::from_secs(60), |lab| {
        lab.agents[0].status().filter(|s| s.ready)
    });
    let boot = format!("{}/p2p/{}", s.listen[0], s.peer_id);
    for i in 1..3 {
        let text = std::fs::read_to_string(&lab.agents[i].config).unwrap();
        if i == 2 {
            lab.use_other_key(2);
        }
        let text2 = std::fs::read_to_string(&lab.agents[i].config).unwrap_or(text);
        std::fs::write(
            &lab.agents[i].config,
            text2.replace("bootstrap = []", &format!("bootstrap = [{boot:?}]")),
        )
        .unwrap();
        lab.spawn(i);
    }
    lab.wait("h01 joined h00", Duration::from_secs(60), |lab| {
        lab.agents[1].status().filter(|s| s.ready && s.peers > 0)
    });
    let h02 = lab.wait("h02 up", Duration::from_secs(60), |lab| {
        lab.agents[2].status().filter(|s| s.ready)
    });
    // Give the intruder the time of several handshakes (pnet refuses it each time).
    std::thread::sleep(Duration::from_secs(8));
    let s = lab.agents[2].status().expect("h02 answers");
    assert_eq!(s.peers, 0, "h02 got in: {s:?}");
    for i in 0..2 {
        let Some(Response::Peers(peers)) = lab.agents[i].ask(&Request::Peers) else {
            panic!("h0{i} does not answer");
        };
        assert!(
            peers.iter().all(|p| p.peer_id != h02.peer_id),
            "h0{i} knows h02"
        );
    }
}

#[test]
fn bad_config_is_refused_with_exit_78_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        ("[monitor]\nperiod = \"fast\"\n", "monitor.period"),
        ("[monitor]\nperiode = \"1s\"\n", "monitor.periode"),
        ("[actuator]\nkind = \"teleport\"\n", "actuator.kind"),
    ];
    for (text, key) in cases {
        let path = dir.join("bad.toml");
        std::fs::write(&path, format!("[node]\nname = \"h00\"\n{text}")).unwrap();
        for sub in ["check-config", "run"] {
            let out = Command::new(bin("dvmsd"))
                .arg("--config")
                .arg(&path)
                .arg(sub)
                .env("DVMS_LOG_FORMAT", "plain")
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{sub} {text:?}: {err}");
            assert!(err.contains(key), "{sub} {text:?}: {err}");
        }
    }
    // A cluster key file others may read is refused the same way.
    let key = dir.join("open.key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let path = dir.join("key.toml");
    std::fs::write(
        &path,
        format!("[node]\nname = \"h00\"\n[overlay]\ncluster_key_file = {key:?}\n"),
    )
    .unwrap();
    let out = Command::new(bin("dvmsd"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("overlay.cluster_key_file"));
}

#[test]
fn dvmsctl_says_when_the_agent_is_not_running() {
    let _one = serial();
    let mut lab = Lab::new(LabSpec {
        hosts: 1,
        ..LabSpec::default()
    });
    lab.spawn(0);
    lab.wait("h00 ready", Duration::from_secs(60), |lab| {
        lab.agents[0].status().filter(|s| s.ready)
    });
    let socket = lab.agents[0].socket.clone();
    let ctl = |args: &[&str]| {
        Command::new(bin("dvmsctl"))
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let status: dvms_agent::control::proto::Status =
        serde_json::from_slice(&out.stdout).expect("status --json is a Status");
    assert!(status.ready && status.name == "h00", "{status:?}");
    // SIGTERM: a clean exit within the grace period, the socket removed.
    assert_eq!(lab.terminate(0), Some(0));
    let out = ctl(&["status"]);
    assert_eq!(out.status.code(), Some(69));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dvmsd is not running"), "{err}");
}
