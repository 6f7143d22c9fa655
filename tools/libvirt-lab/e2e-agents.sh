#!/usr/bin/env bash
# End-to-end test of dvms on real VMs: 3 libvirt hosts (lab.sh, each in its own mount, network
# and cgroup namespaces), a dvmsd per host run inside that host's namespaces with the libvirt
# actuator (dvms-libvirt) and its monitor reading the real cgroups and /proc of the host's QEMU
# processes. h00 is driven into overload with spinning boot-sector guests (plus one that opts
# out with <dvms:policy migrate="never"/>); the agents form a partition and live-migrate guests
# through libvirt until no host is overloaded. Then every guest must run exactly once, checked
# through libvirt on every host, the opted-out guest must not have moved, and every migration
# the agents report must be one libvirt did.
#
# Each host's capacity is made 1.5 cores with monitor.reserve_cpu_milli (the 3 "hosts" share
# this machine's cores). A spinning guest's CPU demand (use plus run-queue wait of its vCPU, at
# most 1000 milli-cores a vCPU) is a full core whatever else runs on the machine, so each host
# holds one spinning guest at most (threshold 100 %): h00's three are an overload that needs two
# of them moved, one to each other host. The figures (time from overload to decision and to
# the end of migrations, migrations, libvirt's downtime) are printed as one JSON line at the end
# and appended to $DVMS_E2E_FIGURES when set.
#
# Run by tools/test.sh. Skips, loudly, only where the machine cannot (not root, no namespaces,
# libvirt not installable; CI=true: a failed install fails).
# usage: e2e-agents.sh [BIN_DIR]   (BIN_DIR with dvmsd, dvms-libvirt, dvmsctl; default: cargo
#                                   build them, target/debug)
set -euo pipefail
cd "$(dirname "$0")/../.."
lab=tools/libvirt-lab/lab.sh
id=8 # lab id: its own bridge, namespaces, cgroups and 169.254.108.0/24

# shellcheck source=tools/libvirt-lab/preflight.sh
. tools/libvirt-lab/preflight.sh
e2e_preflight "dvmsd + libvirt" mount cgroup

bindir="${1:-}"
if [ -z "$bindir" ]; then
    cargo build -q -p dvms-agent -p dvms-libvirt -p dvmsctl --locked
    bindir="$PWD/target/debug"
fi
bindir="$(cd "$bindir" && pwd)"
for b in dvmsd dvms-libvirt dvmsctl; do
    [ -x "$bindir/$b" ] || { echo "agents e2e: no executable $bindir/$b" >&2; exit 1; }
done

passed=0
failed=0
is() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'" >&2; return 1; }; }
jqt() { jq -e "$2" <<<"$1" >/dev/null || { echo "    $2 does not hold for: $1" >&2; return 1; }; }

L() { "$lab" --id "$id" "$@"; }
work=$(mktemp -d /tmp/dvms-e2e-agents.XXXXXX)
hosts=(h00 h01 h02)
scenario=${DVMS_E2E_SCENARIO:-overload} # overload | refuse | kill | serial | abort
case "$scenario" in overload | refuse | kill | serial | abort) ;; *) echo "agents e2e: unknown scenario $scenario" >&2; exit 64 ;; esac
# serial: max_parallel_migrations = 1, so h00's two migrations run one after the other.
# abort: the two migratable guests rewrite their memory (make-bootsector.sh dirty), the
# migration bandwidth is capped at 1 MiB/s and the switch-over pause at 1 ms, so no migration
# converges; the agent aborts each one
# after protocol.migrate_timeout (8 s; libvirt's own timeout is longer) and the guest must keep
# running on h00, exactly once.
max_parallel=2 bandwidth=0 migrate_timeout=60s guest_mode=spin max_downtime=0
case "$scenario" in
    serial) max_parallel=1 ;;
    # max_downtime_ms 1: a guest starved on a loaded machine dirties little, and within QEMU's
    # default 300 ms switch-over its migration would converge after all
    abort) bandwidth=1 migrate_timeout=8s guest_mode=dirty max_downtime=1 ;;
esac
agent_pid() { cat "$work/$1/dvmsd.pid" 2>/dev/null || true; }
stop_agent() { # HOST [SIGNAL]: stops that host's dvmsd by its pid
    local p
    p=$(agent_pid "$1")
    [ -n "$p" ] || return 0
    kill "-${2:-TERM}" "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    rm -f "$work/$1/dvmsd.pid"
}
stop_agents() {
    local h
    for h in "${hosts[@]}"; do stop_agent "$h"; done
}
cleanup() {
    stop_agents
    L down >/dev/null 2>&1 || true
    [ -n "${keep:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
L down >/dev/null 2>&1 || true # a previous run killed before its trap

started=$(date +%s)
L up --hosts 3

# --- guests: h00 overloaded, h01 and h02 light -------------------------------------------------
spin_h00=(vm-a vm-b)
for vm in "${spin_h00[@]}"; do L vm h00 "$vm" --mode "$guest_mode" --mem 128; done
L vm h00 vm-pin --mode spin --mem 128 --no-migrate
L vm h01 vm-e --mode halt --mem 128
L vm h02 vm-f --mode halt --mem 128
all_vms=("${spin_h00[@]}" vm-pin vm-e vm-f)

# --- agents ------------------------------------------------------------------------------------
# capacity of each host: 1.5 cores of this machine's (the rest reserved), threshold 100 %
cpus=$(nproc)
capacity_milli=${DVMS_E2E_CAPACITY_MILLI:-1500}
reserve=$((cpus * 1000 - capacity_milli))
[ "$reserve" -ge 0 ] || reserve=0
addresses=""
for h in "${hosts[@]}"; do addresses="$addresses\"$h=$(L addr "$h")\", "; done
key="$work/cluster.key"
for h in "${hosts[@]}"; do
    a="$work/$h"
    mkdir -p "$a/state"
    boot=""
    [ "$h" = h00 ] || boot="\"/ip4/$(L addr h00)/tcp/7946\""
    cat >"$a/dvms.toml" <<EOF
# dvmsd of lab host $h (tools/libvirt-lab/e2e-agents.sh)
[node]
name = "$h"
state_dir = "$a/state"
shutdown_grace = "5s"
[overlay]
listen = "/ip4/$(L addr "$h")/tcp/7946"
bootstrap = [$boot]
cluster_key_file = "$key"
[monitor]
period = "1s"
reserve_cpu_milli = $reserve
[protocol]
cpu_threshold_pct = 100
detect_hold = "3s"
migrate_timeout = "$migrate_timeout"
[actuator]
kind = "libvirt"
max_parallel_migrations = $max_parallel
[actuator.libvirt]
binary = "$bindir/dvms-libvirt"
connect = "qemu:///system"
dest_uri = "qemu+tcp://{address}/system"
migrate_uri = "tcp://{address}"
addresses = [${addresses%, }]
timeout = "60s"
allow_unsafe = true
bandwidth_mib_s = $bandwidth
max_downtime_ms = $max_downtime
inventory_period = "1s"
[control]
socket = "$a/control.sock"
EOF
    "$bindir/dvmsd" --config "$a/dvms.toml" init --cluster-key >/dev/null
done
ctl() { "$bindir/dvmsctl" --socket "$work/$1/control.sock" --json "${@:2}"; }

running_on() { # VM: the hosts where libvirt says it runs
    local vm="$1" h out=()
    for h in "${hosts[@]}"; do
        [ "$(virsh -q -c "$(L uri "$h")" domstate "$vm" 2>/dev/null | head -n1)" = running ] && out+=("$h")
    done
    echo "${out[*]:-none}"
}
defined_on() {
    local vm="$1" h out=()
    for h in "${hosts[@]}"; do
        virsh -q -c "$(L uri "$h")" dominfo "$vm" >/dev/null 2>&1 && out+=("$h")
    done
    echo "${out[*]:-none}"
}
once() { local w; w=$(running_on "$1"); [[ "$w" =~ ^h0[0-9]$ ]] || { echo "    $1 runs on: $w" >&2; return 1; }; }

start_agent() { # HOST: dvmsd inside the host's namespaces and cgroups (its log appended)
    # the shell records its pid, then becomes dvmsd
    DVMS_LOG_FORMAT=json DVMS_LOG=info,libp2p=warn \
        L exec "$1" sh -c 'echo $$ >"$0"; exec "$@"' "$work/$1/dvmsd.pid" \
        "$bindir/dvmsd" --config "$work/$1/dvms.toml" run >>"$work/$1/log.json" 2>&1 &
    for _ in $(seq 50); do [ -s "$work/$1/dvmsd.pid" ] && break; sleep 0.1; done
}
status_of() { ctl "$1" status 2>/dev/null || echo '{}'; }
calm() { # HOST: ready, not overloaded, in no partition, no migration running
    jq -e '.ready == true and .overloaded == false and .migrations_running == 0 and .role == "free"' \
        <<<"$(status_of "$1")" >/dev/null 2>&1
}
# libvirt's truth: the two migratable spinning guests have left h00 (one each elsewhere)
spread() { [ "$(running_on vm-a)" != h00 ] && [ "$(running_on vm-b)" != h00 ] && once vm-a && once vm-b; }
settle() { # MAX_S: until every agent is calm and the guests spread, 3 s in a row
    local n=0 h busy
    settled=0
    while [ "$n" -lt "$1" ]; do
        sleep 1
        n=$((n + 1))
        busy=0
        for h in "${hosts[@]}"; do calm "$h" || busy=1; done
        if [ "$busy" -eq 0 ] && spread 2>/dev/null; then
            settled=$((settled + 1))
            [ "$settled" -ge 3 ] && return 0
        else
            settled=0
        fi
    done
    return 1
}
wait_log() { # HOST EVENT MAX_S: until HOST's log has EVENT
    local n=0
    until grep -q "\"event\":\"$2\"" "$work/$1/log.json" 2>/dev/null; do
        sleep 0.2
        n=$((n + 1))
        [ "$n" -lt $(($3 * 5)) ] || return 1
    done
}

case "$scenario" in
    refuse) # the destinations refuse QEMU's migration stream (iptables) until told otherwise
        L block h01 migration
        L block h02 migration ;;
esac
t_agents=$(date +%s.%N)
for h in "${hosts[@]}"; do
    start_agent "$h"
    [ "$h" = h00 ] && sleep 1 # the bootstrap host listens first
done
case "$scenario" in
    refuse)
        echo "== destinations refuse the migration stream (iptables)"
        check "a migration failed (h00)" wait_log h00 migration_failed 120
        # every partition dissolves; the guests stay on h00
        n=0
        until { calm h01 && calm h02 && jq -e '.role == "free" and .migrations_running == 0' <<<"$(status_of h00)" >/dev/null; } || [ "$n" -ge 60 ]; do
            sleep 1
            n=$((n + 1))
        done
        check "partitions dissolved after the refusals" jqt "$(for h in "${hosts[@]}"; do status_of "$h"; done | jq -s 'map(.role)')" 'all(. == "free")'
        for vm in vm-a vm-b vm-pin; do check "$vm still runs exactly once, on h00" is "$(running_on "$vm")" h00; done
        check "the failure carries libvirt's error (log)" grep -q '"libvirt_message":' "$work/h00/log.json"
        check "dvmsctl events shows the failure with libvirt's error" jqt "$(ctl h00 events 2>/dev/null || echo '[]')" \
            '[.. | strings | select(test("libvirt error"))] | length > 0'
        L unblock h01
        L unblock h02
        echo "== destinations accept again: the agents retry" ;;
    kill)
        echo "== h00's agent killed (SIGKILL) mid-migration"
        check "a migration started (h00)" wait_log h00 migration_started 120
        stop_agent h00 KILL
        # what dvms-libvirt started goes on (peer to peer); the other agents' partition dissolves
        n=0
        until { calm h01 && calm h02; } || [ "$n" -ge 60 ]; do sleep 1; n=$((n + 1)); done
        sleep 3 # a migration libvirt still runs ends within this lab's 3 s
        for vm in "${all_vms[@]}"; do check "$vm runs exactly once after the kill" once "$vm"; done
        check "h01 and h02 left the partition" jqt "$(for h in h01 h02; do status_of "$h"; done | jq -s 'map(.role)')" 'all(. == "free")'
        echo "    after the kill: vm-a on $(running_on vm-a), vm-b on $(running_on vm-b)"
        start_agent h00
        echo "== h00's agent restarted" ;;
    abort)
        echo "== migrations that cannot converge (1 MiB/s, guests rewriting memory): aborted"
        check "a migration was aborted after migrate_timeout (h00)" wait_log h00 migration_aborted 120
        check "libvirt aborted the job (dvms-libvirt abort)" grep -q '"event":"migration_abort"' "$work/h00/log.json"
        for vm in "${all_vms[@]}"; do check "$vm runs exactly once right after the abort" once "$vm"; done
        for vm in "${spin_h00[@]}" vm-pin; do check "$vm still on h00 after the abort" is "$(running_on "$vm")" h00; done
        # the agents try again (and abort again) for a while: the invariant holds throughout
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            sleep 2
            for vm in "${spin_h00[@]}"; do once "$vm" || break 2; done
        done
        check "still exactly once 20 s later" once vm-a
        check "still exactly once 20 s later (vm-b)" once vm-b
        stop_agents
        sleep 1
        for vm in "${all_vms[@]}"; do
            check "$vm runs exactly once after the agents stopped" once "$vm"
            check "$vm defined exactly once" is "$(defined_on "$vm" | wc -w)" 1
        done
        for vm in "${spin_h00[@]}"; do check "$vm on h00 at the end" is "$(running_on "$vm")" h00; done
        aborted_n=$(cat "$work"/h0*/log.json | grep -c '"event":"migration_aborted"' || true)
        done_n=$(cat "$work"/h0*/log.json | grep -c '"event":"migration_done"' || true)
        check "no migration completed ($done_n)" is "$done_n" 0
        echo "figures: {\"scenario\":\"abort\",\"migrations_aborted\":$aborted_n}"
        [ "$failed" -eq 0 ] || { keep=1; echo "agents e2e: logs kept in $work" >&2; }
        L down
        echo "agents e2e: $(($(date +%s) - started)) s"
        echo "agents-e2e: $passed passed, $failed failed"
        [ "$failed" -eq 0 ]
        exit ;;
esac
settle 240 || true
t_end=$(date +%s.%N)
for h in "${hosts[@]}"; do
    echo "    $h: $(status_of "$h" | jq -c '{role, overloaded, vms, load, migrations_running, stats}')"
done

# --- checks ------------------------------------------------------------------------------------
check "agents settled: no host overloaded, no partition, no migration running" [ "$settled" -ge 3 ]
for vm in "${all_vms[@]}"; do
    check "$vm runs exactly once" once "$vm"
    check "$vm defined exactly once" is "$(defined_on "$vm" | wc -w)" 1
done
check "vm-pin (migrate=\"never\") never moved" is "$(running_on vm-pin)" h00
moved=0
for vm in "${spin_h00[@]}"; do [ "$(running_on "$vm")" != h00 ] && moved=$((moved + 1)); done
check "both migratable spinning guests left h00 (3000 -> 1000 milli-cores)" is "$moved" 2
check "one spinning guest per host" is "$(for vm in vm-pin "${spin_h00[@]}"; do running_on "$vm"; done | sort | paste -sd' ')" "h00 h01 h02"
done_n=$(cat "$work"/h0*/log.json | grep -c '"event":"migration_done"' || true)
failed_n=$(cat "$work"/h0*/log.json | grep -c 'migration failed: the vm stays here' || true)
libvirt_n=$(cat "$work"/h0*/log.json | grep -c 'libvirt live migration done' || true)
check "every migration the agents report done is one libvirt did ($done_n)" is "$libvirt_n" "$done_n"
[ "$scenario" = kill ] || check "2 migrations done" is "$done_n" 2
# most live migrations libvirt ran at once for h00: each one's interval is [done - duration,
# done] from dvmsd's "libvirt live migration done" lines (migration_started is logged before the
# migration waits for its max_parallel_migrations permit, so it cannot tell); 100 ms tolerance
parallel=$(jq -rR 'fromjson? | select((.fields.message // .message) == "libvirt live migration done")
        | (.timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdate) as $s
        | (.timestamp | capture("\\.(?<f>[0-9]+)Z$").f // "0" | ("0." + .) | tonumber) as $f
        | ($s + $f) as $t | ((.fields.duration_ms // .duration_ms) / 1000) as $d
        | "\($t - $d + 0.1) 1\n\($t) -1"' "$work/h00/log.json" 2>/dev/null |
    { grep -v '^$' || true; } | sort -n | awk '{n += $2; if (n > m) m = n} END {print m + 0}')
echo "    at most $parallel migrations at once on h00 (max_parallel_migrations = $max_parallel)"
check "h00 never ran more than max_parallel_migrations ($max_parallel) at once" [ "$parallel" -le "$max_parallel" ]
[ "$scenario" = serial ] && check "serial: one migration after the other" is "$parallel" 1
[ "$scenario" = refuse ] || check "no migration failed" is "$failed_n" 0
check "the monitor read the guests' real cgroups (vm_seen for every guest)" \
    is "$(cat "$work"/h0*/log.json | grep '"event":"vm_seen"' | jq -r '.fields.vm // .vm' 2>/dev/null | sort -u | wc -l)" "${#all_vms[@]}"
check "the opt-out reached the solver (vm-pin not migratable)" \
    grep -q '"vm":"vm-pin".*"migratable":false\|"migratable":false.*"vm":"vm-pin"' "$work/h00/log.json"
for h in "${hosts[@]}"; do
    check "$h not overloaded after" jqt "$(status_of "$h")" '.overloaded == false' 
done
events=$(ctl h00 events 2>/dev/null || echo '[]')
[ "$scenario" = kill ] || check "dvmsctl events on h00 shows the migrations" jqt "$events" '[.. | strings | select(test("migration_done"))] | length > 0' 

# --- figures -------------------------------------------------------------------------------------
ts() { # FILE EVENT: first timestamp of EVENT in a JSON log, as seconds since the epoch
    { jq -rR --arg e "$2" 'fromjson? | select((.fields.event // .event) == $e) | .timestamp' "$1" 2>/dev/null || true; } |
        head -n1 | xargs -r -I{} date -d {} +%s.%N
}
logs() { cat "$work"/h0*/log.json | jq -cR 'fromjson? // empty' 2>/dev/null || true; } # valid lines only
first_event=$(ts "$work/h00/log.json" event_started || true)
decided=$(ts "$work/h00/log.json" plan_chosen || true)
[ -n "$decided" ] || decided=$(for h in "${hosts[@]}"; do ts "$work/$h/log.json" plan_chosen; done | sort -n | head -n1)
last_done=$(logs | jq -r 'select((.fields.event // .event) == "migration_done") | .timestamp' | sort | tail -n1)
[ -n "$last_done" ] && last_done=$(date -d "$last_done" +%s.%N)
downtimes=$(logs | jq -r 'select((.fields.message // .message) == "libvirt live migration done") | (.fields.downtime_ms // .downtime_ms // empty)' | paste -sd, -)
durations=$(logs | jq -r 'select((.fields.message // .message) == "libvirt live migration done") | (.fields.duration_ms // .duration_ms // empty)' | paste -sd, -)
figures=$(jq -cn --arg start "$t_agents" --arg ev "${first_event:-}" --arg dec "${decided:-}" --arg last "${last_done:-}" \
    --arg dt "$downtimes" --arg du "$durations" --arg sc "$scenario" --arg par "$parallel" --argjson n "$done_n" --argjson f "$failed_n" '
    def num: if . == "" then null else tonumber end;
    def ms(a; b): if (a|num) == null or (b|num) == null then null else (((b|num) - (a|num)) * 1000 | floor) end;
    ($dt | split(",") | map(select(. != "") | tonumber)) as $d |
    ($du | split(",") | map(select(. != "") | tonumber)) as $u |
    {scenario: $sc, max_parallel_seen: ($par | tonumber), migrations: $n, migrations_failed: $f,
     agents_start_to_event_ms: ms($start; $ev),
     agents_start_to_decision_ms: ms($start; $dec),
     agents_start_to_last_migration_ms: ms($start; $last),
     event_to_decision_ms: ms($ev; $dec),
     decision_to_last_migration_ms: ms($dec; $last),
     migration_duration_ms: {mean: (if ($u|length) > 0 then ($u | add / length | floor) else null end), max: ($u | max)},
     migration_downtime_ms: {mean: (if ($d|length) > 0 then ($d | add / length | floor) else null end), max: ($d | max)}}')
echo "figures: $figures"
[ -n "${DVMS_E2E_FIGURES:-}" ] && echo "$figures" >>"$DVMS_E2E_FIGURES"

if [ "$failed" -gt 0 ]; then
    keep=1
    echo "agents e2e: logs kept in $work" >&2
    for h in "${hosts[@]}"; do
        echo "--- $h (last 30 lines)" >&2
        tail -n 30 "$work/$h/log.json" >&2
    done
fi
stop_agents
L down
echo "agents e2e: $(($(date +%s) - started)) s"
echo "agents-e2e: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
