#!/usr/bin/env bash
# journald for real: starts /lib/systemd/systemd-journald by hand (systemd need not be PID 1),
# runs dvmsd against it with DVMS_LOG_FORMAT=journald, and queries the journal by field.
#
# Usage: packaging/journald-test.sh [DVMSD]   (default: /usr/bin/dvmsd)
# Needs root. Everything happens in a private mount namespace with tmpfs over /run/systemd,
# /run/log and /var/log/journal, so the machine's own journal (if any) is neither read nor written.
# The agent watches a fake hypervisor root holding one VM, vm-jt-0042, and must log
# F_VM=vm-jt-0042 (with F_EVENT=vm_seen) and F_NODE=<its node name>; the test also checks that
# a query for another VM finds nothing.
set -euo pipefail

DVMSD=${1:-/usr/bin/dvmsd}
DVMSD=$(readlink -f "$DVMSD")
VM=vm-jt-0042
NODE=jt-node
here=$(cd "$(dirname "$0")" && pwd)

if [ "${DVMS_JT_INSIDE:-}" != 1 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "journald-test: needs root (mount namespace)" >&2; exit 77; }
    [ -x /lib/systemd/systemd-journald ] || { echo "journald-test: /lib/systemd/systemd-journald missing (apt-get install systemd)" >&2; exit 69; }
    exec env DVMS_JT_INSIDE=1 unshare --mount --propagation private "$0" "$DVMSD"
fi

work=$(mktemp -d /tmp/dvms-journald-test.XXXXXX)
jpid=
dpid=
cleanup() {
    [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
    [ -n "$jpid" ] && kill "$jpid" 2>/dev/null && wait "$jpid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/journal /run/log /var/log/journal
mount -t tmpfs tmpfs /run/log
mount -t tmpfs tmpfs /var/log/journal

/lib/systemd/systemd-journald >"$work/journald.log" 2>&1 &
jpid=$!
for _ in $(seq 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.1; done
[ -S /run/systemd/journal/socket ] || { echo "journald-test: journald did not start:" >&2; cat "$work/journald.log" >&2; exit 1; }

# A fake hypervisor root with one running VM, written by dvms-host's fakeroot (the layout the
# monitor reads); the tool prints the [monitor] table that points the agent at it.
(cd "$here/.." && cargo run -q --locked -p dvms-xtask -- fake-host-root "$work/root" --vm "$VM") >"$work/monitor.toml"

cat >"$work/dvms.toml" <<EOT
[node]
name = "$NODE"
state_dir = "$work/state"
[overlay]
listen = "/ip4/127.0.0.1/tcp/0"
cluster_key_file = "$work/cluster.key"
[control]
socket = "$work/control.sock"
EOT
cat "$work/monitor.toml" >>"$work/dvms.toml"
"$DVMSD" init --config "$work/dvms.toml" --cluster-key >/dev/null
"$DVMSD" check-config --config "$work/dvms.toml"

DVMS_LOG_FORMAT=journald "$DVMSD" run --config "$work/dvms.toml" 2>"$work/dvmsd.stderr" &
dpid=$!

# Poll (bounded) until the agent has logged about the VM, then stop it.
found=0
for _ in $(seq 150); do
    if [ -n "$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=dvmsd "F_VM=$VM" 2>/dev/null)" ]; then
        found=1
        break
    fi
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.2
done
kill "$dpid" 2>/dev/null || true
wait "$dpid" 2>/dev/null || true
dpid=

fail=0
echo "== journalctl SYSLOG_IDENTIFIER=dvmsd F_VM=$VM"
journalctl --no-pager -q -o verbose SYSLOG_IDENTIFIER=dvmsd "F_VM=$VM" | head -40
if [ "$found" != 1 ]; then
    echo "journald-test: FAIL: no journal entry with F_VM=$VM" >&2
    fail=1
fi
if [ -z "$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=dvmsd F_EVENT=vm_seen "F_VM=$VM")" ]; then
    echo "journald-test: FAIL: no vm_seen entry (F_EVENT=vm_seen F_VM=$VM)" >&2
    fail=1
fi
if [ -z "$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=dvmsd "F_NODE=$NODE")" ]; then
    echo "journald-test: FAIL: no journal entry with F_NODE=$NODE" >&2
    fail=1
fi
if [ -n "$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=dvmsd F_VM=vm-jt-9999)" ]; then
    echo "journald-test: FAIL: a query for a VM that does not exist found entries" >&2
    fail=1
fi
if [ -s "$work/dvmsd.stderr" ]; then
    echo "== dvmsd stderr (should be empty: logs go to the journal)"
    head -20 "$work/dvmsd.stderr"
fi
n=$(journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=dvmsd | wc -l)
echo "journald-test: $n entries from dvmsd in the journal"
if [ "$fail" = 0 ]; then
    echo "journald-test: PASS (journalctl F_VM=$VM and F_NODE=$NODE find dvmsd's entries)"
fi
exit "$fail"
