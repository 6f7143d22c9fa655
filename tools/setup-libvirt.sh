#!/usr/bin/env bash
# Installs what the libvirt parts of dvms need on Debian 12 (libvirt 9, QEMU 7.2), then makes
# /dev/kvm usable by QEMU. Idempotent: installs only what is missing, changes only what is wrong.
# Called by tools/test.sh (through tools/libvirt-lab/e2e.sh) and by hand; needs root (or sudo)
# only when something is missing.
#
# Exit status: 0 when everything is in place, 69 (EX_UNAVAILABLE) when it could not be installed.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# package -> a file it installs (checked instead of dpkg's database, which may lie in containers)
declare -A probe=(
    [libvirt-daemon-system]=/usr/sbin/libvirtd
    [libvirt-daemon-driver-qemu]=/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so
    [libvirt-clients]=/usr/bin/virsh
    [libvirt-dev]=/usr/include/libvirt/libvirt.h
    [qemu-system-x86]=/usr/bin/qemu-system-x86_64
    [pkg-config]=/usr/bin/pkg-config
    [iproute2]=/usr/sbin/ip
    [iptables]=/usr/sbin/iptables
    [util-linux]=/usr/bin/unshare
    [procps]=/usr/bin/pgrep
    [jq]=/usr/bin/jq
    [python3-minimal]=/usr/bin/python3 # lab.sh duty: one byte to a guest's serial socket
)
need=()
for pkg in "${!probe[@]}"; do
    [ -e "${probe[$pkg]}" ] || need+=("$pkg")
done

if ((${#need[@]})); then
    echo "setup-libvirt: installing ${need[*]}" >&2
    # No init system starts services here (no systemd as PID 1): keep the packages' maintainer
    # scripts from starting a system-wide libvirtd; the lab starts its own daemons by pid.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 755 "$policy"
        made_policy=1
    fi
    ok=1
    $sudo apt-get update -qq || ok=0
    if [ "$ok" -eq 1 ]; then
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
            "${need[@]}" || ok=0
    fi
    [ "$made_policy" -eq 1 ] && $sudo rm -f "$policy"
    if [ "$ok" -eq 0 ]; then
        echo "setup-libvirt: apt-get could not install ${need[*]}" >&2
        exit 69
    fi
fi

for pkg in "${!probe[@]}"; do
    if [ ! -e "${probe[$pkg]}" ]; then
        echo "setup-libvirt: ${probe[$pkg]} (package $pkg) still missing after install" >&2
        exit 69
    fi
done

# /dev/kvm: QEMU runs as libvirt-qemu (group kvm) under the system libvirtd. Without access every
# guest falls back to TCG, and a guest start can take ~50 s on this machine.
if [ -c /dev/kvm ]; then
    if getent group kvm >/dev/null; then
        [ "$(stat -c %G /dev/kvm)" = kvm ] || $sudo chgrp kvm /dev/kvm
    fi
    mode=$(stat -c %a /dev/kvm)
    [ "$mode" = 660 ] || [ "$mode" = 666 ] || $sudo chmod 660 /dev/kvm
    echo "setup-libvirt: /dev/kvm $(stat -c '%A %U:%G' /dev/kvm)" >&2
else
    echo "setup-libvirt: no /dev/kvm: guests will run under TCG (slower, still migratable)" >&2
fi

echo "setup-libvirt: $(/usr/sbin/libvirtd --version), $(/usr/bin/qemu-system-x86_64 --version | head -n1)" >&2
