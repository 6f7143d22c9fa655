#!/usr/bin/env bash
# End-to-end test of the trace-following guest load and of the monitor's rediscovery, on real
# KVM guests: 2 libvirt hosts (lab.sh), a dvmsd per host (actuator "observe": it measures and
# never migrates) started BEFORE any guest. Then:
#   - a duty-cycle guest (make-bootsector.sh duty) started on h00 after the agents must be seen
#     and counted by h00's agent (dvmsctl vms / status);
#   - its CPU demand as dvms-host measures it (use + run-queue wait of its vCPU) must follow the
#     duty cycle the lab writes to its serial port: 25 %, 50 %, 100 %, 0 % (within 12 points);
#   - after a live migration to h01 (virsh), h01's agent must see it, h00's not any more, and a
#     duty cycle written to the destination's serial socket must show in h01's measure.
# This is what `dvms-lab libvirt load` relies on (a CPU quota would not lower the demand dvms
# measures: the capped time is run-queue wait).
#
# Run by tools/test.sh. Skips, loudly, only where the machine cannot (not root, no namespaces,
# libvirt not installable; CI=true: a failed install fails).
# usage: e2e-duty.sh [BIN_DIR]   (BIN_DIR with dvmsd, dvmsctl; default: cargo build them)
set -euo pipefail
cd "$(dirname "$0")/../.."
lab=tools/libvirt-lab/lab.sh
id=3 # lab id: its own bridge, namespaces, cgroups and 169.254.103.0/24 (e2e.sh uses 7)

# shellcheck source=tools/libvirt-lab/preflight.sh
. tools/libvirt-lab/preflight.sh
e2e_preflight "duty-cycle guest + rediscovery" mount cgroup
command -v python3 >/dev/null || e2e_skip "needs python3 (lab.sh duty writes the serial byte)"

bindir="${1:-}"
if [ -z "$bindir" ]; then
    cargo build -q -p dvms-agent -p dvmsctl --locked
    bindir="$PWD/target/debug"
fi
bindir="$(cd "$bindir" && pwd)"
for b in dvmsd dvmsctl; do
    [ -x "$bindir/$b" ] || { echo "duty e2e: no executable $bindir/$b" >&2; exit 1; }
done

passed=0
failed=0
L() { "$lab" --id "$id" "$@"; }
work=$(mktemp -d /tmp/dvms-e2e-duty.XXXXXX)
hosts=(h00 h01)
agent_pid() { cat "$work/$1/dvmsd.pid" 2>/dev/null || true; }
stop_agents() {
    local h p
    for h in "${hosts[@]}"; do
        p=$(agent_pid "$h")
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        rm -f "$work/$h/dvmsd.pid"
    done
}
cleanup() {
    stop_agents
    L down >/dev/null 2>&1 || true
    [ -n "${keep:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
L down >/dev/null 2>&1 || true
started=$(date +%s)
L up --hosts 2

key="$work/cluster.key"
for h in "${hosts[@]}"; do
    a="$work/$h"
    mkdir -p "$a/state"
    boot=""
    [ "$h" = h00 ] || boot="\"/ip4/$(L addr h00)/tcp/7946\""
    cat >"$a/dvms.toml" <<EOF
# dvmsd of lab host $h (tools/libvirt-lab/e2e-duty.sh)
[node]
name = "$h"
state_dir = "$a/state"
shutdown_grace = "2s"
[overlay]
listen = "/ip4/$(L addr "$h")/tcp/7946"
bootstrap = [$boot]
cluster_key_file = "$key"
[monitor]
period = "1s"
[actuator]
kind = "observe"
[control]
socket = "$a/control.sock"
EOF
    "$bindir/dvmsd" --config "$a/dvms.toml" init --cluster-key >/dev/null
done
ctl() { "$bindir/dvmsctl" --socket "$work/$1/control.sock" --json "${@:2}"; }
for h in "${hosts[@]}"; do
    DVMS_LOG_FORMAT=json DVMS_LOG=info,libp2p=warn \
        L exec "$h" sh -c 'echo $$ >"$0"; exec "$@"' "$work/$h/dvmsd.pid" \
        "$bindir/dvmsd" --config "$work/$h/dvms.toml" run >>"$work/$h/log.json" 2>&1 &
    for _ in $(seq 100); do ctl "$h" status >/dev/null 2>&1 && break; sleep 0.2; done
done
vms_seen() { ctl "$1" status 2>/dev/null | jq -r '.vms // 0' 2>/dev/null || echo 0; }
check "agents up with no guest (h00 sees 0 VMs)" [ "$(vms_seen h00)" = 0 ]

# --- a guest started after the agents ------------------------------------------------------------
L vm h00 g1 --mode duty --duty 25 --mem 64
seen() { # HOST VM MAX_S: until HOST's agent lists VM
    local n=0
    until ctl "$1" vms 2>/dev/null | jq -e --arg vm "$2" '[.. | objects | select(.name? == $vm)] | length > 0' >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$n" -lt $(($3 * 5)) ] || return 1
        sleep 0.2
    done
}
t=$(date +%s.%N)
check "a guest started after dvmsd is seen (h00)" seen h00 g1 30
echo "    seen after $(echo "$(date +%s.%N) - $t" | bc) s"
check "and counted (status .vms == 1)" [ "$(vms_seen h00)" = 1 ]
check "the vm_seen event names it" grep -q '"vm":"g1"' "$work/h00/log.json"

demand() { # HOST VM: the demand dvms-host measures, milli-cores (mean of 3 samples, 1 s apart)
    local s=0 i d
    for i in 1 2 3; do
        sleep 1
        d=$(ctl "$1" vms 2>/dev/null | jq -r --arg vm "$2" '[.. | objects | select(.name? == $vm) | .cpu_demand_milli] | first // empty')
        s=$((s + ${d:-0}))
    done
    echo $((s / 3))
}
near() { # GOT WANT: within 120 milli-cores
    local d=$(($1 - $2))
    [ "${d#-}" -le 120 ] || { echo "    measured $1 milli-cores, set $2" >&2; return 1; }
}
figures=""
for p in 25 50 100 0; do
    L duty g1 "$p"
    sleep 3 # the monitor's window moves past the change
    got=$(demand h00 g1)
    figures="$figures $p%->$got"
    check "measured demand follows the duty cycle ($p % -> $got milli-cores)" near "$got" $((p * 10))
done

# --- after a live migration, the destination's agent sees it, and its serial socket drives it --
L duty g1 60
virsh -q -c "$(L uri h00)" migrate --live --p2p --persistent --undefinesource --unsafe g1 \
    "$(L uri h01)" "tcp://$(L addr h01)" >/dev/null
check "g1 runs on h01 after the migration" [ "$(L where g1)" = h01 ]
check "h01's agent sees the migrated guest" seen h01 g1 30
n=0
while [ "$(vms_seen h00)" != 0 ] && [ "$n" -lt 30 ]; do sleep 1; n=$((n + 1)); done
check "h00's agent no longer counts it" [ "$(vms_seen h00)" = 0 ]
sleep 2
got=$(demand h01 g1)
figures="$figures migrated:60%->$got"
check "the duty cycle survived the migration (60 % -> $got)" near "$got" 600
L duty g1 30
sleep 3
got=$(demand h01 g1)
figures="$figures dest:30%->$got"
check "a duty cycle written to the destination's serial socket (30 % -> $got)" near "$got" 300
echo "figures: set->measured milli-cores:$figures"

if [ "$failed" -gt 0 ]; then
    keep=1
    echo "duty e2e: logs kept in $work" >&2
fi
stop_agents
L down
echo "duty e2e: $(($(date +%s) - started)) s"
echo "duty-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
