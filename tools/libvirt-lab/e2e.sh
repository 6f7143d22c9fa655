#!/usr/bin/env bash
# End-to-end test of dvms-libvirt against real libvirt and QEMU/KVM: 3 libvirt hosts (lab.sh),
# a guest per host, inventory with QEMU pids and the metadata opt-out, a live migration after
# which the guest runs exactly once, and migrations that fail (destination refuses: daemon
# stopped, iptables on every port, iptables on QEMU's migration ports only; timeout -> abort;
# abort from a second process) and leave the guest running on its source, with libvirt's error.
#
# Run by tools/test.sh. Skips, loudly, only where the machine cannot do it (not root, no
# namespaces, libvirt not installable); with CI=true a failed install fails instead.
# usage: e2e.sh [path/to/dvms-libvirt]   (default: cargo build -p dvms-libvirt, target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
lab=tools/libvirt-lab/lab.sh
id=7 # lab id: its own bridge, namespaces and 169.254.107.0/24

# shellcheck source=tools/libvirt-lab/preflight.sh
. tools/libvirt-lab/preflight.sh
e2e_preflight libvirt mount

bin="${1:-}"
if [ -z "$bin" ]; then
    cargo build -q -p dvms-libvirt --locked
    bin="$PWD/target/debug/dvms-libvirt"
fi
[ -x "$bin" ] || { echo "libvirt e2e: no executable $bin" >&2; exit 1; }

passed=0
failed=0

L() { "$lab" --id "$id" "$@"; }
cleanup() { L down >/dev/null 2>&1 || true; }
trap cleanup EXIT
L down >/dev/null 2>&1 || true # a previous run killed before its trap

started=$(date +%s)
L up --hosts 3
L vm h00 vm-a --mode spin
L vm h01 vm-b --mode halt --no-migrate
L vm h02 vm-c --mode dirty
vm_c_started=$(date +%s)

ask() { # HOST JSON: runs dvms-libvirt inside HOST's namespaces, as dvmsd would on that host
    L exec "$1" "$bin" <<<"$2" 2>>"$log" || true
}
log=$(mktemp)
inventory='{"op":"inventory","version":1,"connect":"qemu:///system"}'
migrate() { # VM TO [BANDWIDTH] [TIMEOUT_MS] [MAX_DOWNTIME_MS]
    local to_addr
    to_addr=$(L addr "$2")
    printf '{"op":"migrate","version":1,"connect":"qemu:///system","vm":"%s","destination":{"name":"%s","address":"%s"},"dest_uri_template":"qemu+tcp://{address}/system","migrate_uri_template":"tcp://{address}","bandwidth_mib_s":%s,"max_downtime_ms":%s,"timeout_ms":%s,"allow_unsafe":true}' \
        "$1" "$2" "$to_addr" "${3:-1000}" "${5:-300}" "${4:-60000}"
}
simple() { # OP VM
    printf '{"op":"%s","version":1,"connect":"qemu:///system","vm":"%s"}' "$1" "$2"
}

# Where VM runs, read through libvirt on every host: "h01" when exactly there, else a list.
running_on() {
    local vm="$1" h hosts=()
    for h in h00 h01 h02; do
        if [ "$(virsh -q -c "$(L uri "$h")" domstate "$vm" 2>/dev/null | head -n1)" = running ]; then
            hosts+=("$h")
        fi
    done
    echo "${hosts[*]:-none}"
}
defined_on() {
    local vm="$1" h hosts=()
    for h in h00 h01 h02; do
        virsh -q -c "$(L uri "$h")" dominfo "$vm" >/dev/null 2>&1 && hosts+=("$h")
    done
    echo "${hosts[*]:-none}"
}
is() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'" >&2; return 1; }; }
jqt() { jq -e "$2" <<<"$1" >/dev/null || { echo "    $2 does not hold for: $1" >&2; return 1; }; }
pid_is_qemu_of() { # INVENTORY VM: qemu_pid is a live process whose command line names the guest
    local pid
    pid=$(jq -r --arg vm "$2" '.vms[] | select(.name == $vm) | .qemu_pid' <<<"$1")
    [ -n "$pid" ] && [ "$pid" != null ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "guest=$2," ||
        { echo "    qemu_pid '$pid' is not $2's QEMU" >&2; return 1; }
}
booted() { # VM HOST: the guest runs its boot sector (EIP inside 0x7c00..0x7dff)
    virsh -c "$(L uri "$2")" qemu-monitor-command --hmp "$1" 'info registers' 2>/dev/null |
        grep -Eq 'EIP=00007[cd]'
}

echo "== inventory"
for pair in h00:vm-a h01:vm-b h02:vm-c; do
    h=${pair%%:*} vm=${pair#*:}
    inv=$(ask "$h" "$inventory")
    check "$h inventory lists $vm running" jqt "$inv" ".answer == \"inventory\" and ([.vms[] | select(.name == \"$vm\" and .state == \"running\")] | length == 1)"
    check "$h inventory gives $vm's QEMU pid" pid_is_qemu_of "$inv" "$vm"
    check "$h inventory gives $vm's cgroup" jqt "$inv" ".vms[0].cgroup | test(\"$vm\")"
    if [ "$vm" = vm-b ]; then
        check "metadata opt-out read: vm-b not migratable" jqt "$inv" '.vms[0].migratable == false'
    else
        check "$vm migratable" jqt "$inv" '.vms[0].migratable == true'
    fi
done

echo "== live migration h00 -> h01"
out=$(ask h00 "$(migrate vm-a h01)")
echo "    $out"
check "vm-a migrated" jqt "$out" '.answer == "migrated" and .destination == "h01"'
check "libvirt reports the downtime" jqt "$out" '.stats.downtime_ms >= 0'
check "vm-a runs exactly once, on h01" is "$(running_on vm-a)" h01
check "vm-a defined only on h01 (persistent there, undefined on h00)" is "$(defined_on vm-a)" h01
inv=$(ask h01 "$inventory")
check "h01 inventory gives vm-a's new QEMU pid" pid_is_qemu_of "$inv" vm-a

echo "== opt-out refused"
out=$(ask h01 "$(migrate vm-b h00)")
check "vm-b refused: opted-out" jqt "$out" '.answer == "error" and .kind == "opted-out"'
check "vm-b still runs exactly once, on h01" is "$(running_on vm-b)" h01

echo "== destination libvirtd stopped"
L stop-daemon h02
out=$(ask h01 "$(migrate vm-a h02)")
echo "    $out"
check "refused migration reports libvirt's error" jqt "$out" '.kind == "migration-failed" and (.libvirt.message | test("Connection refused"))'
check "source_state running" jqt "$out" '.source_state == "running"'
L start-daemon h02
check "vm-a still runs exactly once, on h01" is "$(running_on vm-a)" h01

echo "== destination refuses every connection (iptables)"
L block h02 all
out=$(ask h01 "$(migrate vm-a h02)")
L unblock h02
check "blocked destination: migration-failed with libvirt's error" jqt "$out" '.kind == "migration-failed" and .libvirt.code > 0 and .source_state == "running"'
check "vm-a still runs exactly once, on h01" is "$(running_on vm-a)" h01

echo "== destination refuses QEMU's migration stream only (iptables)"
L block h02 migration
out=$(ask h01 "$(migrate vm-a h02)")
L unblock h02
echo "    $out"
check "stream refused: migration-failed, source running" jqt "$out" '.kind == "migration-failed" and .source_state == "running"'
check "vm-a still runs exactly once, on h01" is "$(running_on vm-a)" h01
check "vm-a defined only on h01 (destination cleaned up)" is "$(defined_on vm-a)" h01

echo "== timeout aborts a migration that cannot converge (dirtying guest, 1 MiB/s, 1 ms max downtime, 3 s timeout)"
n=0
# SeaBIOS hands over after ~10 s on an idle machine, much later on a loaded one
until booted vm-c h02 || [ "$n" -ge 300 ]; do n=$((n + 1)); sleep 0.5; done
echo "    (vm-c in its boot sector $(($(date +%s) - vm_c_started)) s after its start)"
check "vm-c booted its dirtying boot sector" booted vm-c h02
# 1 MiB/s and at most 1 ms of downtime: 512 KiB rewritten at memory speed can never be sent in time
out=$(ask h02 "$(migrate vm-c h00 1 3000 1)")
echo "    $out"
check "timed out, aborted through libvirt" jqt "$out" '.kind == "migration-timed-out" and (.libvirt.message | test("cancel"))'
check "source_state running" jqt "$out" '.source_state == "running"'
check "vm-c still runs exactly once, on h02" is "$(running_on vm-c)" h02
check "vm-c defined only on h02" is "$(defined_on vm-c)" h02

echo "== abort from a second process, seen through job-status"
out=$(ask h02 "$(simple abort vm-c)")
check "abort without a job: not-migrating" jqt "$out" '.kind == "not-migrating"'
bg_out=$(mktemp)
ask h02 "$(migrate vm-c h00 1 120000 1)" >"$bg_out" &
bg=$!
bg_started=$(date +%s)
n=0
# wait until QEMU itself migrates (libvirt's job starts with connecting to the destination)
# (on a loaded 2-core machine the destination's QEMU can take 20 s to start)
# Two answers in a row: the first answer of a new job can still carry the previous job's figures.
in_qemu_phase() { jqt "$(ask h02 "$(simple job-status vm-c)")" '.active == true and .stats.data_total_bytes > 0' 2>/dev/null; }
until { in_qemu_phase && sleep 0.5 && in_qemu_phase; } || [ "$n" -ge 240 ]; do
    n=$((n + 1))
    sleep 0.5
done
echo "    (polled job-status $n times, $(($(date +%s) - bg_started)) s after the request)"
check "job-status sees the running migration" jqt "$(ask h02 "$(simple job-status vm-c)")" '.answer == "job" and .active == true and .stats.data_total_bytes > 0'
out=$(ask h02 "$(simple abort vm-c)")
check "abort answered" jqt "$out" '.answer == "aborted"'
wait "$bg" || true
out=$(cat "$bg_out")
echo "    $out"
check "aborted migration reports libvirt's error, source running" jqt "$out" '.kind == "migration-failed" and (.libvirt.message | test("cancel")) and .source_state == "running"'
check "vm-c still runs exactly once, on h02" is "$(running_on vm-c)" h02
check "job-status: no job any more" jqt "$(ask h02 "$(simple job-status vm-c)")" '.active == false'

echo "== opt-out set at run time (virsh metadata), after the migration"
virsh -q -c "$(L uri h01)" metadata vm-a http://dvms.invalid/xmlns/policy/1 --key dvms \
    --set '<policy migrate="never"/>' --live --config
inv=$(ask h01 "$inventory")
check "vm-a now not migratable" jqt "$inv" '[.vms[] | select(.name == "vm-a")][0].migratable == false'
out=$(ask h01 "$(migrate vm-a h00)")
check "vm-a refused: opted-out" jqt "$out" '.kind == "opted-out"'
check "vm-a still runs exactly once, on h01" is "$(running_on vm-a)" h01

echo "== CPU cap (what dvms-lab's load will drive)"
L cpu-cap vm-a 30
check "vm-a vCPU quota set to 30 % of a core" is "$(virsh -q -c "$(L uri h01)" schedinfo vm-a --live | awk '$1 == "vcpu_quota" {print $3}')" 30000
check "lab.sh where finds vm-a" is "$(L where vm-a)" h01

echo "== bad requests"
out=$(ask h00 '{"op":"migrate","version":1}')
check "malformed request: bad-request" jqt "$out" '.kind == "bad-request"'
out=$(ask h00 "$(simple job-status vm-zzz)")
check "unknown VM: no-such-vm" jqt "$out" '.kind == "no-such-vm"'

rm -f "$bg_out" "$log"
L down
trap - EXIT
echo "libvirt e2e: $(($(date +%s) - started)) s"
echo "libvirt-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
