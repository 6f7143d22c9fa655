#!/usr/bin/env bash
# The main job on its defaults: a real cluster on this machine. `dvms-lab cluster` starts 16 real
# dvmsd agents on loopback, each watching its own fake hypervisor root (10 VMs per host) that the
# lab's load generator keeps busy (VMPlaceS workload), lets DVMS fix the overloads for 60 s through
# the lab's migrations, and prints the report. Extra arguments go to `dvms-lab cluster` (for
# example `--scheduler none`, `--hosts 8 --duration 5m`, `--report json`; see `--help`).
# The simulator has its own command: `cargo run --release -p dvms-sim -- run` (README).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
cargo build --release --quiet -p dvms-agent -p dvmsctl -p dvms-lab
exec target/release/dvms-lab cluster "$@"
