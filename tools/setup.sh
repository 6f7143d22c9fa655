#!/usr/bin/env bash
# Installs what building dvms needs beyond the Rust toolchain, on Debian 12.
# Idempotent: installs only what is missing. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v git >/dev/null 2>&1 || need+=(git)
# dvms-libvirt links libvirt (the `virt` crate's build finds it with pkg-config)
[ -e /usr/include/libvirt/libvirt.h ] || need+=(libvirt-dev)

if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found: install the Rust toolchain (rustup, stable) first" >&2
    exit 69
fi
