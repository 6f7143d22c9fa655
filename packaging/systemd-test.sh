#!/usr/bin/env bash
# The package under a real systemd: boots a Debian 12 container (systemd-nspawn, systemd as its
# PID 1), installs the .deb there and checks what only systemd shows: the Type=notify start
# (ExecStartPre= check-config, READY=1), that the hardened unit lets the agent run (syscall
# filter, address families, read-only system, state and runtime directories), dvmsctl status
# against the running agent, `journalctl -u dvmsd F_VM=...`, the online security exposure, that
# a bad config stops the unit with status 78 without restart loops, and purge.
#
# Usage: packaging/systemd-test.sh [DEB] [ROOTFS]
#   DEB     default target/debian/dvms_<version>_amd64.deb
#   ROOTFS  a Debian 12 tree with systemd, default /var/tmp/dvms-ct (created with debootstrap
#           when absent: a few minutes and about 100 MB of Debian packages). Each run boots a
#           throw-away copy (--ephemeral), so the tree stays pristine.
# Needs root and systemd-nspawn (package systemd-container). Not run by tools/test.sh (it needs
# the container tree); its last result is in docs/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
DEB=$(readlink -f "${1:-target/debian/dvms_${version}_amd64.deb}")
ROOTFS=${2:-/var/tmp/dvms-ct}
VM=vm-ct-0001
[ -f "$DEB" ] || { echo "systemd-test: $DEB missing (packaging/build-deb.sh)" >&2; exit 66; }
[ "$(id -u)" -eq 0 ] || { echo "systemd-test: needs root" >&2; exit 77; }

need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
[ -d "$ROOTFS" ] || command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ ! -x "$ROOTFS/lib/systemd/systemd" ]; then
    echo "systemd-test: creating $ROOTFS with debootstrap" >&2
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,adduser,init-system-helpers,man-db,procps \
        bookworm "$ROOTFS" http://deb.debian.org/debian >/dev/null
fi
# The container runs /dvms-test/run.sh at boot when it exists, then powers off.
rm -f "$ROOTFS/etc/systemd/system/multi-user.target.wants/probe.service" \
    "$ROOTFS/etc/systemd/system/probe.service" "$ROOTFS/root/probe.out"
cat >"$ROOTFS/etc/systemd/system/dvms-test.service" <<'UNIT'
[Unit]
Description=dvms package test (packaging/systemd-test.sh)
After=multi-user.target
ConditionPathExists=/dvms-test/run.sh
[Service]
Type=oneshot
ExecStart=/bin/bash /dvms-test/run.sh
ExecStopPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
UNIT
mkdir -p "$ROOTFS/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/dvms-test.service \
    "$ROOTFS/etc/systemd/system/multi-user.target.wants/dvms-test.service"

work=$(mktemp -d /var/tmp/dvms-systemd-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
cp "$DEB" "$work/dvms.deb"
cargo run -q --locked -p dvms-xtask -- fake-host-root "$work/root" --vm "$VM" |
    sed "s|$work|/dvms-test|g" >"$work/monitor.toml"
chmod -R a+rX "$work/root"
printf '#!/bin/bash\nVM=%s\n' "$VM" >"$work/run.sh"
cat "packaging/systemd-test-inside.sh" >>"$work/run.sh"

echo "systemd-test: booting $ROOTFS (ephemeral) with $(basename "$DEB")" >&2
start=$(date +%s)
timeout 300 systemd-nspawn -q -D "$ROOTFS" --ephemeral --register=no --private-network \
    --keep-unit --bind="$work:/dvms-test" -b >"$work/console.log" 2>&1 || true
if [ -f "$work/result.log" ]; then
    cat "$work/result.log"
else
    echo "systemd-test: no result; console:" >&2
    tail -30 "$work/console.log" >&2
fi
status=$(cat "$work/status" 2>/dev/null || echo "NO RESULT")
echo "systemd-test: $status in $(($(date +%s) - start)) s"
[ "$status" = PASS ]
