#!/usr/bin/env bash
# Enforces the crate boundaries of STYLE.md 3.2: the protocol core and the solver never pull an
# async runtime or libp2p; the simulator never compiles them either; the overlay knows no DVMS type.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deny() { # crate, regex of forbidden dependencies
    local found
    found=$(cargo tree --locked -p "$1" -e normal --prefix none --format '{p}' 2>/dev/null | grep -v "^$1 v" | grep -E "^($2) v" | sort -u || true)
    if [ -n "$found" ]; then
        echo "dependency rule broken: $1 depends on:" >&2
        echo "$found" >&2
        fail=1
    fi
}
deny dvms-core 'tokio|futures|libp2p|dvms-[a-z]+'
deny dvms-placement 'tokio|futures|libp2p|rayon|dvms-sim|dvms-overlay'
deny dvms-sim 'tokio|libp2p|dvms-overlay'
deny dvms-overlay 'dvms-core|dvms-placement'
deny dvms-libvirt 'tokio|futures|libp2p|dvms-[a-z]+'
deny dvms-host 'libp2p'
# dvmsd stays free of libvirt: it uses dvms-libvirt's protocol types only (no `virt`)
deny dvms-agent 'virt|virt-sys'
if grep -rnE 'std::(fs|net)::' agent/core/src agent/placement/src; then
    echo "dependency rule broken: the sans-IO crates use std::fs or std::net" >&2
    fail=1
fi
[ "$fail" -eq 0 ] && echo "dependency rules hold"
exit "$fail"
