#!/usr/bin/env bash
# Measures live migrations through dvms-libvirt on a 2-host lab: one guest migrated back and
# forth COUNT times; prints one JSON answer per migration, then the wall-clock duration of each
# migrate call, libvirt's job time and the downtime QEMU reports (min / mean / max, ms).
# usage: measure.sh [--count N] [--mode spin|halt|dirty] [--mem MIB] [--bandwidth MIB_S]
set -euo pipefail
cd "$(dirname "$0")/../.."
count=10 mode=spin mem=64 bw=1000
while [ $# -gt 0 ]; do
    case "$1" in
        --count) count="$2"; shift 2 ;;
        --mode) mode="$2"; shift 2 ;;
        --mem) mem="$2"; shift 2 ;;
        --bandwidth) bw="$2"; shift 2 ;;
        *) echo "measure: unknown argument $1" >&2; exit 64 ;;
    esac
done
[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -ge 1 ] && [ "$count" -le 1000 ] || { echo "measure: --count 1..1000" >&2; exit 64; }
tools/setup-libvirt.sh
cargo build -q -p dvms-libvirt --locked
bin="$PWD/target/debug/dvms-libvirt"
L() { tools/libvirt-lab/lab.sh --id 8 "$@"; }
trap 'L down >/dev/null 2>&1 || true' EXIT
L down >/dev/null 2>&1 || true
L up --hosts 2
L vm h00 guest --mode "$mode" --mem "$mem"
# wait until SeaBIOS has handed over to the boot sector (EIP inside 0x7c00..0x7dff)
n=0
until virsh -c "$(L uri h00)" qemu-monitor-command --hmp guest 'info registers' 2>/dev/null |
    grep -Eq 'EIP=00007[cd]'; do
    n=$((n + 1))
    [ "$n" -lt 300 ] || { echo "measure: the guest did not boot" >&2; exit 1; }
    sleep 0.5
done
from=h00 to=h01
results=$(mktemp)
for ((i = 0; i < count; i++)); do
    req=$(printf '{"op":"migrate","version":1,"connect":"qemu:///system","vm":"guest","destination":{"name":"%s","address":"%s"},"dest_uri_template":"qemu+tcp://{address}/system","migrate_uri_template":"tcp://{address}","bandwidth_mib_s":%s,"timeout_ms":120000,"allow_unsafe":true}' "$to" "$(L addr "$to")" "$bw")
    out=$(L exec "$from" "$bin" <<<"$req" 2>/dev/null || true)
    echo "$out" | tee -a "$results"
    jq -e '.answer == "migrated"' <<<"$out" >/dev/null || { echo "measure: migration $i failed" >&2; exit 1; }
    tmp=$from from=$to to=$tmp
done
jq -s -r --arg mode "$mode" --arg mem "$mem" '
  def s(f): [.[] | f | select(. != null)] | {min: min, mean: ((add / length) * 10 | round / 10), max: max};
  "guest: \($mode), \($mem) MiB, \(length) migrations",
  "duration_ms (migrate call): \(s(.duration_ms))",
  "time_elapsed_ms (libvirt job): \(s(.stats.time_elapsed_ms))",
  "downtime_ms (QEMU): \(s(.stats.downtime_ms))",
  "data_processed_bytes: \(s(.stats.data_processed_bytes))"' "$results"
rm -f "$results"
