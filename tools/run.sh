#!/usr/bin/env bash
# The main job on its embedded default: a 1,000-host, 10,000-VM VMPlaceS-like workload for one
# simulated hour under DVMS, printed as a text report. Extra arguments go to `dvms-sim run`
# (for example `--hosts 10000 --report json`).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec cargo run --release --quiet -p dvms-sim -- run "$@"
