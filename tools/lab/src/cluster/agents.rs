//! The `dvmsd` processes of a lab cluster: started, watched, asked for their status, stopped by
//! pid. Every process started is stopped when [`Agents`] is dropped, also on an error path.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

/// How long a stopped agent gets to leave its partition before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where the two binaries are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binaries {
    /// `dvmsd`.
    pub dvmsd: PathBuf,
    /// `dvmsctl`.
    pub dvmsctl: PathBuf,
}

impl Binaries {
    /// `$DVMSD` / `$DVMSCTL`, else next to the current executable (or its parent, for test
    /// binaries in `target/*/deps`).
    pub fn locate() -> Result<Binaries, String> {
        Ok(Binaries {
            dvmsd: locate("dvmsd", "DVMSD")?,
            dvmsctl: locate("dvmsctl", "DVMSCTL")?,
        })
    }
}

/// Finds executable `name`: `$var` when set, else next to the current executable (or its
/// parent, for test binaries in `target/*/deps`).
pub fn locate(name: &str, var: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("${var} = {} is not a file", p.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let mut dir = exe.parent();
    for _ in 0..2 {
        let Some(d) = dir else { break };
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
        dir = d.parent();
    }
    Err(format!(
        "{name} not found next to {} (build it: cargo build -p dvms-agent -p dvmsctl) and ${var} not set",
        exe.display()
    ))
}

/// One agent process.
#[derive(Debug)]
pub struct Agent {
    /// Its node name.
    pub name: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its control socket.
    pub control: PathBuf,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    child: Option<Child>,
    /// Exit status once it ended.
    pub exited: Option<String>,
    /// CPU ticks (utime + stime) at the start of the measured part of the run.
    pub ticks_at_start: Option<u64>,
}

impl Agent {
    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it still runs (reaps it if it ended).
    pub fn alive(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.exited = Some(status.to_string());
                self.child = None;
                false
            }
            Err(_) => true,
        }
    }

    /// The last lines of its log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }
}

/// The agents of a cluster.
#[derive(Debug)]
pub struct Agents {
    bins: Binaries,
    /// The agents, in host order.
    pub list: Vec<Agent>,
}

impl Agents {
    /// No agent yet.
    pub fn new(bins: Binaries) -> Agents {
        Agents {
            bins,
            list: Vec::new(),
        }
    }

    /// `dvmsd init --config F [--cluster-key]`.
    pub fn init(&self, config: &Path, cluster_key: bool) -> Result<(), String> {
        let mut cmd = Command::new(&self.bins.dvmsd);
        cmd.arg("--config").arg(config).arg("init");
        if cluster_key {
            cmd.arg("--cluster-key");
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bins.dvmsd.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "dvmsd init --config {} failed ({}): {}",
                config.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Starts `dvmsd --config F run`, its output to `log`.
    pub fn spawn(
        &mut self,
        name: &str,
        config: &Path,
        control: &Path,
        log: &Path,
    ) -> Result<(), String> {
        self.spawn_wrapped(name, &[], "plain", config, control, log)
    }

    /// Starts `WRAPPER... dvmsd --config F run` with `DVMS_LOG_FORMAT=log_format`, its output
    /// to `log`. The wrapper must end by `exec`ing its arguments (as `lab.sh exec HOST` does),
    /// so that the pid kept and signalled is dvmsd's own.
    pub fn spawn_wrapped(
        &mut self,
        name: &str,
        wrapper: &[std::ffi::OsString],
        log_format: &str,
        config: &Path,
        control: &Path,
        log: &Path,
    ) -> Result<(), String> {
        let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.bins.dvmsd);
                c
            }
            None => Command::new(&self.bins.dvmsd),
        };
        let child = cmd
            .arg("--config")
            .arg(config)
            .arg("run")
            .env("DVMS_LOG_FORMAT", log_format)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bins.dvmsd.display()))?;
        tracing::info!(node = %name, pid = child.id(), "agent started");
        self.list.push(Agent {
            name: name.to_owned(),
            config: config.to_owned(),
            control: control.to_owned(),
            log: log.to_owned(),
            child: Some(child),
            exited: None,
            ticks_at_start: None,
        });
        Ok(())
    }

    /// `dvmsctl --socket P status --json`, parsed; `None` when the agent does not answer.
    pub fn status(&self, agent: &Agent) -> Option<AgentStatus> {
        let out = Command::new(&self.bins.dvmsctl)
            .arg("--socket")
            .arg(&agent.control)
            .arg("status")
            .arg("--json")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(AgentStatus::from_json(&v))
    }

    /// Waits until agent `i` answers as ready; fails when it exits or `timeout` passes.
    pub fn wait_ready(
        &mut self,
        i: usize,
        timeout: Duration,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<AgentStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if interrupted() {
                return Err("interrupted".to_owned());
            }
            let Some(agent) = self.list.get_mut(i) else {
                return Err(format!("no agent {i}"));
            };
            if !agent.alive() {
                return Err(format!(
                    "agent {} exited ({}) before it was ready; its log {} ends with:\n{}",
                    agent.name,
                    agent.exited.as_deref().unwrap_or("?"),
                    agent.log.display(),
                    agent.log_tail()
                ));
            }
            if let Some(s) = self.status(&self.list[i]) {
                if s.ready {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                let a = &self.list[i];
                return Err(format!(
                    "agent {} not ready after {timeout:?}; its log {} ends with:\n{}",
                    a.name,
                    a.log.display(),
                    a.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to every agent still running, SIGKILL after [`STOP_GRACE`], all reaped.
    pub fn stop_all(&mut self) {
        for a in &mut self.list {
            if let Some(pid) = a.pid() {
                if a.alive() {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline && self.list.iter_mut().any(Agent::alive) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for a in &mut self.list {
            if let Some(mut child) = a.child.take() {
                if matches!(child.try_wait(), Ok(None)) {
                    tracing::warn!(node = %a.name, pid = child.id(), "agent did not stop in time: SIGKILL");
                    let _ = child.kill();
                }
                if let Ok(status) = child.wait() {
                    a.exited = Some(status.to_string());
                }
            }
        }
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// What the lab reads from `dvmsctl status --json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentStatus {
    /// Overlay and first sample up.
    pub ready: bool,
    /// `free`, `member` or `leader`.
    pub role: String,
    /// The partition id, when in one.
    pub partition: Option<String>,
    /// Overlay listen addresses.
    pub listen: Vec<String>,
    /// Overlay peer id.
    pub peer_id: String,
    /// Peers known.
    pub peers: u64,
    /// Core counters: events started, plans chosen, messages sent.
    pub events_started: u64,
    /// Plans chosen as leader.
    pub plans_chosen: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Migrations this agent runs now.
    pub migrations_running: u64,
    /// Whether the agent sees its host overloaded.
    pub overloaded: bool,
    /// VMs the agent sees on its host.
    pub vms: u64,
}

impl AgentStatus {
    /// Reads the fields it knows, from the object itself or under `"status"`; absent fields
    /// keep their defaults (`ready` defaults to true: an agent that answers is up).
    pub fn from_json(v: &Value) -> AgentStatus {
        let o = v.get("status").unwrap_or(v);
        let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let stat = |k: &str| {
            o.get("stats")
                .and_then(|x| x.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        AgentStatus {
            ready: o.get("ready").and_then(Value::as_bool).unwrap_or(true),
            role: s("role"),
            partition: o
                .get("partition")
                .and_then(|p| p.get("id"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            listen: o
                .get("listen")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            peer_id: s("peer_id"),
            peers: o.get("peers").and_then(Value::as_u64).unwrap_or(0),
            events_started: stat("events_started"),
            plans_chosen: stat("plans_chosen"),
            messages_sent: stat("messages_sent"),
            migrations_running: o
                .get("migrations_running")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            overloaded: o
                .get("overloaded")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            vms: o.get("vms").and_then(Value::as_u64).unwrap_or(0),
        }
    }

    /// The loopback address others bootstrap from (`/p2p/<id>` appended when absent).
    pub fn bootstrap_addr(&self) -> Option<String> {
        let a = self
            .listen
            .iter()
            .find(|a| a.starts_with("/ip4/127.0.0.1/"))?;
        if a.contains("/p2p/") || self.peer_id.is_empty() {
            Some(a.clone())
        } else {
            Some(format!("{a}/p2p/{}", self.peer_id))
        }
    }
}

/// CPU ticks (utime + stime) of process `pid`, from `/proc/<pid>/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_ticks(&text)
}

/// utime + stime from the text of `/proc/<pid>/stat` (fields 14 and 15; the command name in
/// parentheses may hold spaces).
pub fn parse_stat_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    utime.checked_add(stime)
}

/// Peak resident memory (`VmHWM`) of process `pid`, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&text, "VmHWM:")
}

/// A `Key:   N kB` line of `/proc/<pid>/status`.
pub fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second of `/proc/<pid>/stat`.
pub fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_survive_odd_command_names() {
        let line = "4242 (dvmsd (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 25 0 0 20 0 8 0";
        assert_eq!(parse_stat_ticks(line), Some(175));
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_ticks("1 (a) S 1 2"), None);
    }

    #[test]
    fn status_lines_parse() {
        let text = "Name:\tdvmsd\nVmHWM:\t   10240 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(parse_status_kib(text, "VmHWM:"), Some(10240));
        assert_eq!(parse_status_kib(text, "VmSwap:"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(peak_rss_kib(pid).unwrap_or(0) > 0);
        assert!(clock_ticks() > 0);
    }

    #[test]
    fn status_json_is_read_with_or_without_its_wrapper() {
        let v: Value = serde_json::json!({"status": {
            "ready": true, "role": "leader", "partition": {"id": "h00#3"},
            "listen": ["/ip6/::1/tcp/1", "/ip4/127.0.0.1/tcp/4001"], "peer_id": "12D3Koo",
            "peers": 15, "stats": {"events_started": 2, "plans_chosen": 1, "messages_sent": 40}
        }});
        let s = AgentStatus::from_json(&v);
        assert!(s.ready);
        assert_eq!(s.partition.as_deref(), Some("h00#3"));
        assert_eq!(
            s.bootstrap_addr().as_deref(),
            Some("/ip4/127.0.0.1/tcp/4001/p2p/12D3Koo")
        );
        assert_eq!(
            (s.events_started, s.plans_chosen, s.messages_sent),
            (2, 1, 40)
        );
        let bare = AgentStatus::from_json(&serde_json::json!({"ready": false, "role": "free"}));
        assert!(!bare.ready && bare.partition.is_none());
    }
}
