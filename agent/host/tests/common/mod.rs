//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use dvms_host::MonitorConfig;

/// The fixture tree `name` under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Copies a fixture tree into a fresh temporary directory (tests change counters in it).
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixture(name), dir.path());
    dir
}

/// Copies the tree `src` to `dst` (new files and directories: new inodes).
pub fn copy_tree(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// A monitor configuration reading the tree at `root` (`proc/`, `sys/`, `sys/fs/cgroup/`).
pub fn config(root: &Path) -> MonitorConfig {
    MonitorConfig {
        cgroup_root: root.join("sys/fs/cgroup"),
        proc_root: root.join("proc"),
        sys_root: root.join("sys"),
        reserve_cpu_milli: 0,
        reserve_mem_mib: 0,
    }
}

/// Rewrites one `key value` line of a flat keyed file, adding `add` to the value.
pub fn bump(path: &Path, key: &str, add: u64) {
    let text = fs::read_to_string(path).unwrap();
    let out: String = text
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((k, v)) if k == key => format!("{k} {}\n", v.parse::<u64>().unwrap() + add),
            _ => format!("{l}\n"),
        })
        .collect();
    fs::write(path, out).unwrap();
}

/// Adds to a single-number file.
pub fn bump_single(path: &Path, add: u64) {
    let v: u64 = fs::read_to_string(path).unwrap().trim().parse().unwrap();
    fs::write(path, format!("{}\n", v + add)).unwrap();
}

/// Adds to the run delay (second field) of a schedstat file.
pub fn bump_run_delay(path: &Path, add_ns: u64) {
    let t = fs::read_to_string(path).unwrap();
    let f: Vec<u64> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
    fs::write(path, format!("{} {} {}\n", f[0], f[1] + add_ns, f[2] + 1)).unwrap();
}

/// Adds to the `some` total of a pressure file.
pub fn bump_psi_some(path: &Path, add_us: u64) {
    let t = fs::read_to_string(path).unwrap();
    let out: String = t
        .lines()
        .map(|l| {
            if l.starts_with("some") {
                let (head, total) = l.rsplit_once("total=").unwrap();
                format!("{head}total={}\n", total.parse::<u64>().unwrap() + add_us)
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(path, out).unwrap();
}
