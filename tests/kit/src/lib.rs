//! dvms-testkit: real `dvmsd` clusters on loopback for integration tests.
//!
//! A [`Lab`] starts the dvms-lab fake hypervisor (one kernel-format root per host, the `lab`
//! actuator's server, the ground truth of where each VM is) in a temporary directory, writes a
//! cluster key and one config per host, and spawns one `dvmsd` process per host: the first
//! alone, the others bootstrapping from its address. Agents are asked for their state through
//! their control sockets, exactly as `dvmsctl` does. Every process is killed by pid when the
//! `Lab` is dropped.
//!
//! Waiting is by polling with generous hang guards ([`Lab::wait`]), never by asserting on time.
//!
//! # Layout
//! - [`bin`]: where the `dvmsd` and `dvmsctl` binaries are (built on demand).
//! - [`Lab`]: the hypervisor, the agents, their configs and control.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dvms_agent::control::proto::{Request, Response, Status};
use dvms_lab::hv::{HostSpec, HvConfig, Hypervisor, VmSpec};

/// Clusters run one at a time: each is 8-16 processes on a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Takes the cluster lock (poison-tolerant: a failed test must not fail the next ones).
pub fn serial() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// The path of a workspace binary (`dvmsd`, `dvmsctl`), building it when absent.
///
/// # Panics
/// When the binary cannot be found or built.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "dvms-agent", "-p", "dvmsctl"]);
        if dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of dvmsd/dvmsctl failed");
    }
    assert!(path.exists(), "{} not found", path.display());
    path
}

/// One host's agent.
#[derive(Debug)]
pub struct Agent {
    /// Node name (`h00`, ...).
    pub name: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its log (stderr).
    pub log: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Asks the agent; `None` when it does not answer.
    pub fn ask(&self, request: &Request) -> Option<Response> {
        dvmsctl::client::ask(&self.socket, request).ok()
    }

    /// Its status; `None` when it does not answer.
    pub fn status(&self) -> Option<Status> {
        match self.ask(&Request::Status)? {
            Response::Status(s) => Some(*s),
            _ => None,
        }
    }
}

/// Settings of a lab.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Number of hosts (8 to 16 for the tests).
    pub hosts: usize,
    /// CPU per host, thousandths of a core (whole cores).
    pub cpu_milli: u64,
    /// Memory per host, MiB.
    pub mem_mib: u64,
    /// Migration bandwidth, MiB/s (low: slow migrations, partitions that last).
    pub bandwidth_mib_s: f64,
    /// Extra `[protocol]` lines for every agent.
    pub protocol: String,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            hosts: 8,
            cpu_milli: 4000,
            mem_mib: 16384,
            bandwidth_mib_s: 1000.0,
            protocol: String::new(),
        }
    }
}

/// A fake hypervisor and the `dvmsd` agents of its hosts.
#[derive(Debug)]
pub struct Lab {
    /// The temporary directory holding everything.
    pub dir: tempfile::TempDir,
    /// The fake hypervisor.
    pub hv: Hypervisor,
    /// The cluster key file.
    pub key: PathBuf,
    /// The agents, by host index.
    pub agents: Vec<Agent>,
    spec: LabSpec,
    bootstrap: Option<String>,
}

/// `h00`, `h01`, ...
pub fn host_name(i: usize) -> String {
    format!("h{i:02}")
}

impl Lab {
    /// Starts the hypervisor with `spec.hosts` empty hosts and writes a cluster key.
    ///
    /// # Panics
    /// When the lab cannot be set up.
    pub fn new(spec: LabSpec) -> Lab {
        let dir = tempfile::Builder::new()
            .prefix("dvms-it")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let hosts: Vec<HostSpec> = (0..spec.hosts)
            .map(|i| HostSpec {
                name: host_name(i),
                cpu_milli: spec.cpu_milli,
                mem_mib: spec.mem_mib,
            })
            .collect();
        let cfg = HvConfig {
            dir: dir.path().join("roots"),
            socket: dir.path().join("lab.sock"),
            bandwidth_mib_s: spec.bandwidth_mib_s,
            tick: Duration::from_millis(100),
        };
        let hv = Hypervisor::start(&cfg, &hosts).expect("start the lab hypervisor");
        let key = dir.path().join("cluster.key");
        write_key(&key, 0x5a);
        let mut lab = Lab {
            dir,
            hv,
            key,
            agents: Vec::new(),
            spec,
            bootstrap: None,
        };
        for i in 0..lab.spec.hosts {
            let agent = lab.write_config(i, None);
            lab.agents.push(agent);
        }
        lab
    }

    /// Writes host `i`'s config (with another key file when `key` is given).
    fn write_config(&self, i: usize, key: Option<&Path>) -> Agent {
        let name = host_name(i);
        let home = self.dir.path().join(&name);
        std::fs::create_dir_all(&home).expect("host dir");
        let roots = self.hv.roots(&name).expect("roots of a lab host");
        let bootstrap = self
            .bootstrap
            .as_ref()
            .map(|b| format!("{b:?}"))
            .unwrap_or_default();
        let text = format!(
            r#"[node]
name = "{name}"
state_dir = {state:?}
shutdown_grace = "3s"
[overlay]
listen = "/ip4/127.0.0.1/tcp/0"
bootstrap = [{bootstrap}]
cluster_key_file = {key:?}
[monitor]
period = "1s"
cgroup_root = {cg:?}
proc_root = {proc:?}
sys_root = {sys:?}
[protocol]
{protocol}
[actuator]
kind = "lab"
[actuator.lab]
socket = {lab:?}
[control]
socket = {sock:?}
"#,
            state = home.join("state"),
            key = key.unwrap_or(&self.key),
            cg = roots.cgroup_root,
            proc = roots.proc_root,
            sys = roots.sys_root,
            protocol = self.spec.protocol,
            lab = self.hv.socket(),
            sock = home.join("control.sock"),
        );
        let config = home.join("dvms.toml");
        std::fs::write(&config, text).expect("write config");
        Agent {
            name,
            config,
            socket: home.join("control.sock"),
            log: home.join("dvmsd.log"),
            child: None,
        }
    }

    /// Adds a VM to host `host` with `vcpus` vCPUs, `mem_mib` MiB and a CPU demand.
    ///
    /// # Panics
    /// When the hypervisor refuses.
    pub fn add_vm(&self, host: usize, name: &str, vcpus: u32, mem_mib: u64, demand_milli: u64) {
        let vm = VmSpec {
            name: name.into(),
            vcpus,
            mem_mib,
        };
        self.hv
            .add_vm(&host_name(host), &vm, demand_milli)
            .expect("add a vm");
    }

    /// Starts agent `i` (its config must be written).
    ///
    /// # Panics
    /// When the process cannot be spawned.
    pub fn spawn(&mut self, i: usize) {
        let a = &mut self.agents[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&a.log)
            .expect("log file");
        let child = Command::new(bin("dvmsd"))
            .args(["--config"])
            .arg(&a.config)
            .arg("run")
            .env("DVMS_LOG_FORMAT", "plain")
            .env("DVMS_LOG", "info,libp2p=warn")
            .env("RUST_BACKTRACE", "0")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dvmsd");
        a.child = Some(child);
    }

    /// Starts every agent: the first alone, then the others bootstrapping from it. Waits
    /// until every one is ready.
    pub fn start_all(&mut self) {
        self.spawn(0);
        let s = self.wait("h00 ready", Duration::from_secs(60), |lab| {
            lab.agents[0].status().filter(|s| s.ready)
        });
        let addr = s.listen.first().expect("h00 listens").clone();
        self.bootstrap = Some(format!("{addr}/p2p/{}", s.peer_id));
        for i in 1..self.agents.len() {
            self.agents[i] = self.write_config(i, None);
            self.spawn(i);
        }
        let n = self.agents.len();
        self.wait(
            "every agent ready and knowing a peer",
            Duration::from_secs(120),
            |lab| {
                (0..n)
                    .all(|i| {
                        lab.agents[i]
                            .status()
                            .is_some_and(|s| s.ready && s.peers > 0)
                    })
                    .then_some(())
            },
        );
    }

    /// Rewrites agent `i`'s config with another cluster key (a fresh random-looking one).
    pub fn use_other_key(&mut self, i: usize) -> PathBuf {
        let other = self.dir.path().join("other.key");
        write_key(&other, 0xa5);
        self.agents[i] = self.write_config(i, Some(&other));
        other
    }

    /// Sends SIGKILL to agent `i` and reaps it.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.agents[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM to agent `i` and waits for its exit; returns its exit code.
    pub fn terminate(&mut self, i: usize) -> Option<i32> {
        let mut c = self.agents[i].child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).ok()?);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        c.wait().ok()?.code()
    }

    /// Polls `f` every 250 ms until it returns `Some`, for at most `guard` (a hang guard, not
    /// a timing goal). Panics with `what`, the agents' log tails and the hosts' state.
    pub fn wait<T>(&self, what: &str, guard: Duration, mut f: impl FnMut(&Lab) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if start.elapsed() > guard {
                self.dump();
                panic!("hang guard: still waiting for {what} after {guard:?}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Prints every agent's log tail and the hypervisor's hosts (for failures).
    pub fn dump(&self) {
        for a in &self.agents {
            let log = std::fs::read_to_string(&a.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("==== {} ====", a.name);
            let head = lines.len().min(15);
            for l in &lines[..head] {
                eprintln!("{l}");
            }
            if lines.len() > head + 25 {
                eprintln!("[...]");
            }
            for l in &lines[head.max(lines.len().saturating_sub(25))..] {
                eprintln!("{l}");
            }
        }
        for h in self.hv.hosts() {
            eprintln!("{h:?}");
        }
    }

    /// Hosts whose VMs' demand is above their capacity now (the hypervisor's truth).
    pub fn overloaded(&self) -> Vec<String> {
        self.hv
            .hosts()
            .into_iter()
            .filter(|h| h.demand_milli > h.cpu_milli)
            .map(|h| h.name)
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for a in &mut self.agents {
            if let Some(mut c) = a.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        self.hv.stop();
    }
}

/// Writes a 64-hex-digit key file with mode 0600.
fn write_key(path: &Path, seed: u8) {
    use std::os::unix::fs::PermissionsExt;
    let hex: String = (0u8..32)
        .map(|i| format!("{:02x}", i.wrapping_mul(37).wrapping_add(seed)))
        .collect();
    std::fs::write(path, hex).expect("write key");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod key");
}
