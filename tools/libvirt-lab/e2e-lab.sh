#!/usr/bin/env bash
# End-to-end test of `dvms-lab libvirt` (the lab tool on real KVM guests), small enough for
# tools/test.sh:
#   1. up / vms / load / status / down, each as its own command, then nothing left behind;
#   2. `run` (2 hosts, 2 duty-cycle guests each, 20 s of vmplaces, JSON report): the report has
#      the fields of `dvms-lab cluster` plus `migration_downtime_ms`, no guest lost or
#      duplicated, no agent exited, and nothing is left behind;
#   3. `run` interrupted by SIGINT while it plays the workload: it still stops every agent and
#      takes the lab down (exit 130).
# "Nothing left behind": no network namespace, bridge, state directory, libvirtd, QEMU or
# dvmsd of the lab.
#
# Run by tools/test.sh. Skips, loudly, only where the machine cannot (not root, no namespaces,
# libvirt not installable; CI=true: a failed install fails).
# usage: e2e-lab.sh [BIN_DIR]   (BIN_DIR with dvms-lab, dvmsd, dvms-libvirt, dvmsctl; default:
#                                cargo build them)
set -euo pipefail
cd "$(dirname "$0")/../.."
id=6 # lab id: its own bridge, namespaces, cgroups and 169.254.106.0/24

# shellcheck source=tools/libvirt-lab/preflight.sh
. tools/libvirt-lab/preflight.sh
e2e_preflight "dvms-lab libvirt" mount cgroup

bindir="${1:-}"
if [ -z "$bindir" ]; then
    cargo build -q -p dvms-lab -p dvms-agent -p dvms-libvirt -p dvmsctl --locked
    bindir="$PWD/target/debug"
fi
bindir="$(cd "$bindir" && pwd)"
for b in dvms-lab dvmsd dvms-libvirt dvmsctl; do
    [ -x "$bindir/$b" ] || { echo "lab e2e: no executable $bindir/$b" >&2; exit 1; }
done
lab() { "$bindir/dvms-lab" libvirt --id "$id" "$@"; }

passed=0
failed=0
jqt() { jq -e "$2" <<<"$1" >/dev/null || { echo "    $2 does not hold for: $1" >&2; return 1; }; }
work=$(mktemp -d /tmp/dvms-e2e-lab.XXXXXX)
trap 'lab down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
lab down >/dev/null 2>&1 || true
started=$(date +%s)

nothing_left() { # no namespace, bridge, directory or process of lab $id
    local bad=""
    ip netns list | grep -q "^dvl$id-" && bad="$bad netns"
    ip link show "dvlbr$id" >/dev/null 2>&1 && bad="$bad bridge"
    [ -e "/tmp/dvms-libvirt-lab-$id" ] && bad="$bad state-dir"
    pgrep -f "dvms-libvirt-lab-$id/" >/dev/null && bad="$bad processes"
    pgrep -f "dvms-lab-libvirt-$id.agents/" >/dev/null && bad="$bad dvmsd"
    [ -z "$bad" ] || { echo "    left behind:$bad" >&2; return 1; }
}

# --- 1. the commands one by one --------------------------------------------------------------------
echo "== up / vms / load / status / down"
lab up --hosts 2 2>/dev/null
check "up: 2 hosts in the state file" jqt "$(cat /tmp/dvms-libvirt-lab-$id/dvms-lab.json)" '.hosts == ["h00","h01"]'
out=$(lab up --hosts 2 2>&1 || true)
check "up twice is refused with what to do" grep -q "already up" <<<"$out"
lab vms --per-host 1 --duty 20 2>/dev/null
check "vms: two guests in the state file" jqt "$(cat /tmp/dvms-libvirt-lab-$id/dvms-lab.json)" '[.vms[].name] == ["vm-00-0","vm-01-0"]'
st=$(lab status)
check "status: vm-00-0 running" grep -Eq "vm-00-0 +running" <<<"$st"
check "status: vm-01-0 running" grep -Eq "vm-01-0 +running" <<<"$st"
lab load --workload vmplaces --load-period 2s --duration 6s 2>"$work/load.err"
check "load applied changes" grep -Eq "[1-9][0-9]* load changes applied" "$work/load.err"
lab down 2>/dev/null
check "down: nothing left behind" nothing_left

# --- 2. the whole experiment ----------------------------------------------------------------------
echo "== run"
set +e
lab run --hosts 2 --vms-per-host 2 --duration 20s --load-period 5s --demand-scale-pct 20 \
    --host-cpu-milli 500 --report json >"$work/report.json" 2>"$work/run.err"
rc=$?
set -e
check "run exits 0" [ "$rc" -eq 0 ]
r=$(cat "$work/report.json")
check "report: the cluster's fields" jqt "$r" 'has("cumulated_violation_s") and has("time_to_decide_s") and has("migrations") and has("vms_lost") and has("agent_rss_mib_max") and has("events_started")'
check "report: migration_downtime_ms {mean, max}" jqt "$r" '.migration_downtime_ms | has("mean") and has("max")'
check "report: 2 hosts, 4 guests, ~20 s" jqt "$r" '.hosts == 2 and .vms == 4 and .duration_s >= 19'
check "report: no guest lost or duplicated" jqt "$r" '.vms_lost == 0 and .vms_duplicated == 0'
check "report: no agent exited, the agents saw every guest" jqt "$r" '.agents_exited == 0'
check "progress lines while it ran" grep -q "agents up 2/2 (seeing 4 guests)" "$work/run.err"
check "run: nothing left behind" nothing_left

# --- 3. interrupted -----------------------------------------------------------------------------
echo "== run, interrupted (SIGINT)"
# exec: $! must be dvms-lab itself, not a subshell running the function (which would not pass
# the signal on)
(exec "$bindir/dvms-lab" libvirt --id "$id" run --hosts 2 --vms-per-host 1 --duration 300s \
    --report json >"$work/int.json" 2>"$work/int.err") &
pid=$!
n=0
until grep -q "playing" "$work/int.err" 2>/dev/null || [ "$n" -ge 300 ]; do sleep 0.5; n=$((n + 1)); done
sleep 3
kill -INT "$pid"
set +e
wait "$pid"
rc=$?
set -e
check "interrupted run exits 130" [ "$rc" -eq 130 ]
check "its report says interrupted" jqt "$(cat "$work/int.json")" '.interrupted == true'
check "interrupted: nothing left behind" nothing_left

echo "lab e2e: $(($(date +%s) - started)) s"
echo "lab-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { tail -n 20 "$work/run.err" >&2; }
[ "$failed" -eq 0 ]
