//! `dvms-xtask`: generates what the Debian package ships from the code, so it cannot drift.
//!
//! `cargo run -p dvms-xtask -- man` writes, under `packaging/`:
//! - `man/dvmsd.8` and `man/dvmsctl.8` from the clap definitions of `dvmsd` and `dvmsctl`;
//! - `man/dvms.toml.5` and the commented conffile `dvms.toml` from the config schema (the raw
//!   config structs of `dvms-agent`: their defaults from `RawConfig::default()`, their
//!   documentation from the doc comments in `agent/daemon/src/config/raw.rs`);
//! - `completions/dvmsd.bash` and `completions/dvmsctl.bash` (clap_complete).
//!
//! `man --check` writes nothing into the tree: it generates every file into a temporary
//! directory, prints `diff -u` against the committed copy for each one that differs, and exits 1
//! naming them (tools/test.sh runs it, so CI fails on stale pages).
//!
//! `fake-host-root DIR --vm NAME` writes a fake hypervisor root holding running VMs (dvms-host's
//! fakeroot) and prints the `[monitor]` table pointing dvmsd at it (packaging/journald-test.sh).

mod conffile;
mod manpages;
mod schema;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

/// Generators for the Debian package.
#[derive(Debug, Parser)]
#[command(name = "dvms-xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the man pages, the bash completions and the commented config into packaging/.
    Man {
        /// Write nothing; exit 1 naming every generated file that differs from the committed one.
        #[arg(long)]
        check: bool,
    },
    /// Write a fake hypervisor root (4 cores, 8 GiB) holding the named VMs (2 vCPUs, 1 GiB each)
    /// and print the `[monitor]` config table that reads it.
    FakeHostRoot {
        /// The directory to create.
        dir: PathBuf,
        /// A VM to put on the host (repeatable).
        #[arg(long = "vm", value_name = "NAME", required = true)]
        vms: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("dvms-xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Man { check } => man(*check),
        Command::FakeHostRoot { dir, vms } => {
            print!("{}", fake_host_root(dir, vms)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the fake root; returns the `[monitor]` table reading it.
fn fake_host_root(dir: &Path, vms: &[String]) -> anyhow::Result<String> {
    let mut root = dvms_host::fakeroot::FakeRoot::create(dir, 4, 8192)
        .with_context(|| format!("cannot create a fake host root in {}", dir.display()))?;
    for vm in vms {
        root.add_vm(vm, 2, 1024)
            .with_context(|| format!("cannot add vm {vm}"))?;
    }
    let m = root.monitor_config();
    let mut table = toml::Table::new();
    table.insert("period".into(), "200ms".into());
    for (key, path) in [
        ("cgroup_root", &m.cgroup_root),
        ("proc_root", &m.proc_root),
        ("sys_root", &m.sys_root),
    ] {
        let path = path.to_str().context("fake root path is not UTF-8")?;
        table.insert(key.into(), path.into());
    }
    let mut doc = toml::Table::new();
    doc.insert("monitor".into(), toml::Value::Table(table));
    Ok(toml::to_string(&doc)?)
}

fn man(check: bool) -> anyhow::Result<ExitCode> {
    let root = workspace_root();
    let files = generate(&root)?;
    let mut stale = Vec::new();
    for (rel, text) in &files {
        let path = root.join(rel);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(text.as_str()) {
            continue;
        }
        if check {
            stale.push(rel.clone());
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {rel}");
        }
    }
    if stale.is_empty() {
        if check {
            println!("packaging: {} generated files up to date", files.len());
        }
        return Ok(ExitCode::SUCCESS);
    }
    show_diffs(&root, &files, &stale);
    for rel in &stale {
        eprintln!("stale: {rel}");
    }
    eprintln!("run `cargo run -p dvms-xtask -- man` and commit the result");
    Ok(ExitCode::FAILURE)
}

/// Writes the generated text of every stale file into a temporary directory and prints
/// `diff -u committed generated` for it (best effort: the stale list is the verdict).
fn show_diffs(root: &Path, files: &[(String, String)], stale: &[String]) {
    let tmp = std::env::temp_dir().join(format!("dvms-xtask-man.{}", std::process::id()));
    for (rel, text) in files.iter().filter(|(rel, _)| stale.contains(rel)) {
        let generated = tmp.join(rel);
        let written = generated
            .parent()
            .is_some_and(|dir| std::fs::create_dir_all(dir).is_ok())
            && std::fs::write(&generated, text).is_ok();
        if !written {
            continue;
        }
        let committed = root.join(rel);
        let committed = if committed.exists() {
            committed
        } else {
            PathBuf::from("/dev/null")
        };
        // diff's own output goes to our stdout; its exit status (1: files differ) is expected.
        let _ = std::process::Command::new("diff")
            .arg("-u")
            .arg("--label")
            .arg(format!("{rel} (committed)"))
            .arg("--label")
            .arg(format!("{rel} (generated)"))
            .arg(&committed)
            .arg(&generated)
            .status();
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The workspace root: two levels above this crate.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every generated file: path relative to the workspace root, and its text.
fn generate(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let version = env!("CARGO_PKG_VERSION");
    let raw_rs = root.join(schema::RAW_CONFIG_SOURCE);
    let source = std::fs::read_to_string(&raw_rs)
        .with_context(|| format!("cannot read the config schema {}", raw_rs.display()))?;
    let schema = schema::Schema::from_source(&source)?;

    let dvmsd = dvms_agent::cli::Cli::command();
    let dvmsctl = dvmsctl::cli::Cli::command();
    Ok(vec![
        (
            "packaging/man/dvmsd.8".into(),
            manpages::dvmsd(dvmsd.clone(), version)?,
        ),
        (
            "packaging/man/dvmsctl.8".into(),
            manpages::dvmsctl(dvmsctl.clone(), version)?,
        ),
        (
            "packaging/man/dvms.toml.5".into(),
            manpages::config(&schema, version),
        ),
        ("packaging/dvms.toml".into(), conffile::render(&schema)),
        (
            "packaging/completions/dvmsd.bash".into(),
            completion(dvmsd, "dvmsd")?,
        ),
        (
            "packaging/completions/dvmsctl.bash".into(),
            completion(dvmsctl, "dvmsctl")?,
        ),
    ])
}

fn completion(mut cmd: clap::Command, name: &str) -> anyhow::Result<String> {
    let mut out = Vec::new();
    clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut out);
    String::from_utf8(out).context("completion script is not UTF-8")
}
