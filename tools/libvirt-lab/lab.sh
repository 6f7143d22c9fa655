#!/usr/bin/env bash
# dvms libvirt lab: N libvirt "hosts" on one machine, each a libvirtd in its own mount namespace
# (tmpfs /run/libvirt; /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt bound
# to per-host directories) and its own network namespace (a veth pair to a lab bridge, addresses
# 169.254.<100+id>.<host+1>/24 only), with its own host_uuid and a TCP listener (no TLS, no auth).
# Each host also has its own cgroups: a sub-cgroup dvmslab<K>/<host> of the lab's own in every
# hierarchy and a cgroup namespace rooted there, with the hierarchies mounted again inside its
# mount namespace; so each libvirtd puts its guests in <its root>/machine/, and a dvmsd run
# there (exec) sees only its own host's guests, as on a real hypervisor.
# Guests are 512-byte boot sectors (make-bootsector.sh) that spin or halt. `down` stops every
# process the lab started, by pid, and removes everything it made. The lab tool (dvms-lab) wraps
# these commands later.
#
# usage: lab.sh [--id K] COMMAND ...          (K in 0..9 keeps several labs apart; default 0)
#   up --hosts N                   start N hosts h00..h<N-1>
#   vm HOST NAME [--mode spin|halt|dirty|duty] [--duty P] [--mem MIB] [--vcpus N] [--no-migrate]
#                                  define and start a guest on HOST (--no-migrate: dvms policy);
#                                  a duty guest spins P % of each 50 ms (default 0) and has a
#                                  serial port: a unix socket per host (see serial, duty)
#   serial VM                      path (from the root namespaces) of VM's serial socket on the
#                                  host where it runs now (a migrated guest has a new one)
#   duty VM P                      set a duty guest's duty cycle to P % (0..100; needs python3)
#   uri HOST                       libvirt URI of HOST, reachable from the root namespaces
#   addr HOST                      HOST's address
#   exec HOST CMD...               run CMD inside HOST's mount and network namespaces
#   stop-daemon HOST | start-daemon HOST     stop / restart HOST's libvirtd (guests keep running)
#   block HOST [all|migration]     iptables in HOST's namespace: refuse new TCP connections to
#                                  every port, or only to QEMU's migration ports (49152-49215)
#   unblock HOST                   remove the lab's iptables rules in HOST's namespace
#   cpu-cap VM PERCENT             cap a guest's vCPUs at PERCENT of one core each (cgroup CPU
#                                  quota through libvirt; 100 or more: uncapped)
#   where VM                       the host VM runs on
#   status                         hosts, daemons, guests
#   down                           stop everything, remove everything
# Needs root, iproute2, iptables, util-linux (unshare, nsenter), libvirt (tools/setup-libvirt.sh).
set -euo pipefail

id=0
if [ "${1:-}" = "--id" ]; then
    id="$2"
    shift 2
fi
case "$id" in [0-9]) ;; *) echo "lab: --id must be 0..9" >&2; exit 64 ;; esac

dir="${DVMS_LIBVIRT_LAB_DIR:-/tmp/dvms-libvirt-lab-$id}"
net="169.254.$((100 + id))"
bridge="dvlbr$id"
here="$(cd "$(dirname "$0")" && pwd)"

die() { echo "lab: $*" >&2; exit 1; }
host_index() { # h03 -> 3
    [[ "$1" =~ ^h([0-9]{2})$ ]] || die "bad host name $1 (h00, h01, ...)"
    local i=$((10#${BASH_REMATCH[1]}))
    [ -d "$dir/$1" ] || die "no host $1 in lab $id"
    echo "$i"
}
host_addr() { echo "$net.$(($(host_index "$1") + 1))"; }
holder_pid() { cat "$dir/$1/holder.pid"; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
in_host() { # HOST CMD... : run in the host's cgroups and its mount, network, cgroup namespaces
    local h="$1"
    shift
    # the process joins the host's cgroups first (so the namespace shows it at its root)
    sh -c 'while read -r f; do echo $$ >"$f"; done <"$1"; shift; exec "$@"' sh "$dir/$h/cgroups" \
        nsenter -t "$(holder_pid "$h")" -m -n -C -- "$@"
}

in_host_exec() { # HOST CMD...: as in_host, but CMD replaces this script (same pid)
    local h="$1"
    shift
    exec sh -c 'while read -r f; do echo $$ >"$f"; done <"$1"; shift; exec "$@"' sh "$dir/$h/cgroups" \
        nsenter -t "$(holder_pid "$h")" -m -n -C -- "$@"
}

# The cgroup hierarchies mounted under /sys/fs/cgroup: "mountpoint type options" lines.
cg_mounts() {
    awk '$2 ~ "^/sys/fs/cgroup/" && ($3 == "cgroup" || $3 == "cgroup2") {print $2, $3, $4}' /proc/self/mounts
}
# The cgroup path of this process in the hierarchy mounted at $1 (a v1 controller or unified).
cg_self() {
    local opts="$2" line
    if [ "$1" = cgroup2 ]; then
        awk -F: '$1 == "0" {print $3}' /proc/self/cgroup
        return
    fi
    while IFS=: read -r _ ctrls path; do
        local c
        for c in ${ctrls//,/ }; do
            if [[ ",$opts," == *",$c,"* ]]; then echo "$path"; return; fi
        done
    done </proc/self/cgroup
}
# Creates HOST's cgroups (one per hierarchy, under the lab's own) and lists their cgroup.procs.
make_cgroups() { # HOST
    local h="$1" mnt type opts base cg
    : >"$dir/$h/cgroups"
    : >"$dir/$h/cgroup-mounts"
    while read -r mnt type opts; do
        base="$(cg_self "$type" "$opts")"
        [ -n "$base" ] || continue
        cg="$mnt${base%/}/dvmslab$id/$h"
        mkdir -p "$cg"
        # The lab's guests compete with the machine's other work as ONE cgroup (of default
        # weight, like a single process): on a busy machine a guest then waits in the run
        # queue for most of its duty cycle, and that wait counts as demand. A larger weight
        # lets the guests get the CPU they ask for (they never ask for more than they use).
        [ -w "${cg%/*}/cpu.shares" ] && echo 8192 >"${cg%/*}/cpu.shares" 2>/dev/null || true
        [ -w "${cg%/*}/cpu.weight" ] && echo 800 >"${cg%/*}/cpu.weight" 2>/dev/null || true
        if [ -e "$cg/cpuset.cpus" ]; then # cpuset: a new cgroup has no CPU until given one
            local p="$mnt${base%/}/dvmslab$id"
            cat "$mnt${base%/}/cpuset.cpus" >"$p/cpuset.cpus"
            cat "$mnt${base%/}/cpuset.mems" >"$p/cpuset.mems"
            cat "$p/cpuset.cpus" >"$cg/cpuset.cpus"
            cat "$p/cpuset.mems" >"$cg/cpuset.mems"
        fi
        echo "$cg/cgroup.procs" >>"$dir/$h/cgroups"
        echo "$mnt${base%/}/dvmslab$id" >>"$dir/cgroup-roots"
        echo "$mnt $type $opts" >>"$dir/$h/cgroup-mounts"
    done < <(cg_mounts)
}

write_conf() { # HOST INDEX
    local h="$1" i="$2" d="$dir/$1"
    cp -a /etc/libvirt/. "$d/etc/"
    rm -f "$d/etc/qemu/networks/autostart/"* "$d/etc/qemu/"*.xml 2>/dev/null || true
    cat >"$d/etc/libvirtd.conf" <<EOF
# dvms libvirt lab host $h (generated by tools/libvirt-lab/lab.sh)
listen_tls = 0
listen_tcp = 1
listen_addr = "$net.$((i + 1))"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "$(cat /proc/sys/kernel/random/uuid)"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
EOF
    # QEMU runs as root without a security driver: the lab's guest disks live outside the
    # per-host directories; its stdio goes to a file (no virtlogd per host).
    cat >"$d/etc/qemu.conf" <<EOF
# dvms libvirt lab host $h (generated by tools/libvirt-lab/lab.sh)
security_driver = "none"
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
migration_address = "$net.$((i + 1))"
EOF
}

start_daemon() { # HOST
    local h="$1" d="$dir/$1"
    if alive "$(cat "$d/libvirtd.pid" 2>/dev/null || true)"; then return 0; fi
    rm -f "$d/libvirtd.pid"
    in_host "$h" /usr/sbin/libvirtd -d -l -p "$d/libvirtd.pid"
    local n=0
    until [ -s "$d/libvirtd.pid" ] && virsh -q -c "$(cat "$d/uri")" version >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$n" -lt 100 ] || die "libvirtd of $h did not answer within 20 s (see $d/log/libvirtd.log)"
        sleep 0.2
    done
}

stop_daemon() { # HOST
    local d="$dir/$1" pid
    pid="$(cat "$d/libvirtd.pid" 2>/dev/null || true)"
    if alive "$pid"; then
        kill "$pid"
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        alive "$pid" && kill -9 "$pid"
    fi
    rm -f "$d/libvirtd.pid"
}

cmd_up() {
    local hosts=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --hosts) hosts="$2"; shift 2 ;;
            *) die "up: unknown argument $1" ;;
        esac
    done
    [[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 1 ] && [ "$hosts" -le 50 ] || die "up: --hosts must be 1..50"
    [ -e "$dir/lab.env" ] && die "lab $id is already up ($dir); run down first"
    mkdir -p "$dir/images"
    echo "hosts=$hosts" >"$dir/lab.env"
    ip link add "$bridge" type bridge
    ip addr add "$net.254/24" dev "$bridge"
    ip link set "$bridge" up
    local i h
    for ((i = 0; i < hosts; i++)); do
        h=$(printf 'h%02d' "$i")
        local d="$dir/$h"
        mkdir -p "$d"/{etc,lib,cache,log}
        cp -a /var/lib/libvirt/. "$d/lib/"
        cp -a /var/cache/libvirt/. "$d/cache/"
        write_conf "$h" "$i"
        echo "qemu+tcp://$net.$((i + 1))/system" >"$d/uri"
        # network namespace with a veth pair to the lab bridge
        ip netns add "dvl$id-$h"
        ip link add "dvl${id}$h" type veth peer name eth0 netns "dvl$id-$h"
        ip link set "dvl${id}$h" master "$bridge" up
        ip -n "dvl$id-$h" addr add "$net.$((i + 1))/24" dev eth0
        ip -n "dvl$id-$h" link set eth0 up
        ip -n "dvl$id-$h" link set lo up
        make_cgroups "$h"
        # the namespace holder: a sleep that keeps the mount namespace alive across daemon
        # restarts; every process of the host is started inside its namespaces and cgroups
        sh -c 'while read -r f; do echo $$ >"$f"; done <"$1"; shift; exec "$@"' sh "$d/cgroups" \
        nsenter --net="/run/netns/dvl$id-$h" unshare --mount --cgroup --propagation private -- sh -c '
            set -e
            mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
            mount -t tmpfs -o mode=0755 tmpfs /run/libvirt
            # the cgroup hierarchies again, seen from this cgroup namespace (its root: the
            # host cgroup): libvirt places guests and dvmsd reads them there
            while read -r mnt type opts; do
                umount "$mnt"
                if [ "$type" = cgroup2 ]; then
                    mount -t cgroup2 cgroup2 "$mnt"
                else
                    mount -t cgroup -o "$(echo "$opts" | tr , "\n" | grep -Ev "^(rw|ro|relatime|noatime|nosuid|nodev|noexec)$" | paste -sd, -)" cgroup "$mnt"
                fi
            done <"$1/cgroup-mounts"
            mount --bind "$1/etc" /etc/libvirt
            mount --bind "$1/lib" /var/lib/libvirt
            mount --bind "$1/cache" /var/cache/libvirt
            mount --bind "$1/log" /var/log/libvirt
            exec sleep infinity' sh "$d" </dev/null >"$d/holder.log" 2>&1 &
        echo $! >"$d/holder.pid"
        local n=0
        until [ "$(readlink "/proc/$(holder_pid "$h")/ns/mnt" 2>/dev/null)" != "$(readlink /proc/self/ns/mnt)" ] &&
            [ "$(cat "/proc/$(holder_pid "$h")/comm" 2>/dev/null)" = sleep ]; do
            n=$((n + 1))
            [ "$n" -lt 100 ] || die "namespace holder of $h did not start (see $d/holder.log)"
            sleep 0.1
        done
        # QEMU gets a private mount namespace from libvirt, but stays in the host's network
        # namespace: that is how `down` finds every process of the host
        readlink "/proc/$(holder_pid "$h")/ns/net" >"$d/netns"
        start_daemon "$h"
        echo "lab: $h up at $(cat "$d/uri") (libvirtd pid $(cat "$d/libvirtd.pid"))" >&2
    done
}

cmd_vm() {
    local h="$1" name="$2" mode=spin mem=64 vcpus=1 policy="" duty=0 serial=""
    shift 2
    while [ $# -gt 0 ]; do
        case "$1" in
            --mode) mode="$2"; shift 2 ;;
            --duty) duty="$2"; shift 2 ;;
            --mem) mem="$2"; shift 2 ;;
            --vcpus) vcpus="$2"; shift 2 ;;
            --no-migrate) policy='<dvms:policy xmlns:dvms="http://dvms.invalid/xmlns/policy/1" migrate="never"/>'; shift ;;
            *) die "vm: unknown argument $1" ;;
        esac
    done
    host_index "$h" >/dev/null
    [[ "$name" =~ ^[A-Za-z0-9_-]{1,64}$ ]] || die "vm: bad name $name"
    [[ "$mem" =~ ^[0-9]+$ ]] && [ "$mem" -ge 16 ] && [ "$mem" -le 4096 ] || die "vm: --mem must be 16..4096"
    [[ "$vcpus" =~ ^[0-9]+$ ]] && [ "$vcpus" -ge 1 ] && [ "$vcpus" -le 8 ] || die "vm: --vcpus must be 1..8"
    local img="$dir/images/$name.img"
    if [ "$mode" = duty ]; then
        "$here/make-bootsector.sh" duty "$duty" "$img"
        # the path is the same string on every host, each its own file (its own /var/lib/libvirt)
        serial="<serial type='unix'><source mode='bind' path='$(serial_in_host "$name")'/><target port='0'/></serial>"
    else
        "$here/make-bootsector.sh" "$mode" "$img"
    fi
    local type=qemu
    [ -r /dev/kvm ] && [ -w /dev/kvm ] && type=kvm
    cat >"$dir/images/$name.xml" <<EOF
<domain type='$type'>
  <name>$name</name>
  <memory unit='MiB'>$mem</memory>
  <vcpu>$vcpus</vcpu>
  <metadata>$policy</metadata>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$img'/>
      <target dev='hda' bus='ide'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
    $serial
  </devices>
</domain>
EOF
    local uri
    uri="$(cat "$dir/$h/uri")"
    virsh -q -c "$uri" define "$dir/images/$name.xml" >/dev/null
    virsh -q -c "$uri" start "$name" >/dev/null
    echo "lab: $name ($mode, $mem MiB, $vcpus vCPU, $type) running on $h" >&2
}

serial_in_host() { echo "/var/lib/libvirt/qemu/dvms-serial-$1.sock"; }
cmd_serial() { # VM
    local h
    h="$(cmd_where "$1")"
    [[ "$h" =~ ^h[0-9]{2}$ ]] || die "serial: $1 runs on several hosts ($h)"
    echo "$dir/$h/lib/qemu/dvms-serial-$1.sock"
}
cmd_duty() { # VM P
    [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -le 100 ] || die "duty: P must be 0..100"
    local sock
    sock="$(cmd_serial "$1")"
    python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(bytes([int(sys.argv[2])])); s.close()' "$sock" "$2"
}

cmd_block() { # HOST [all|migration]: refuse new TCP connections (answered by a reset at once)
    case "${2:-all}" in
        all) in_host "$1" iptables -I INPUT -p tcp --syn -m comment --comment dvms-lab -j REJECT --reject-with tcp-reset ;;
        migration) in_host "$1" iptables -I INPUT -p tcp --syn --dport 49152:49215 -m comment --comment dvms-lab -j REJECT --reject-with tcp-reset ;;
        *) die "block: all or migration, not $2" ;;
    esac
}
cmd_unblock() { # HOST: delete every rule the lab added (the namespace is the lab's own)
    in_host "$1" iptables -F INPUT
}

cmd_where() { # VM: the host(s) where VM runs, through libvirt
    local d found=""
    for d in "$dir"/h*/; do
        if [ "$(virsh -q -c "$(cat "$d/uri")" domstate "$1" 2>/dev/null | head -n1)" = running ]; then
            found="$found $(basename "$d")"
        fi
    done
    [ -n "$found" ] || die "$1 runs nowhere"
    echo $found
}

cmd_cpu_cap() { # VM PERCENT
    local vm="$1" pct="$2" h quota
    [[ "$pct" =~ ^[0-9]+$ ]] && [ "$pct" -ge 1 ] || die "cpu-cap: PERCENT must be a whole number >= 1"
    h="$(cmd_where "$vm")"
    [[ "$h" =~ ^h[0-9]{2}$ ]] || die "cpu-cap: $vm runs on several hosts ($h)"
    quota=-1
    [ "$pct" -lt 100 ] && quota=$((pct * 1000))
    virsh -q -c "$(cat "$dir/$h/uri")" schedinfo "$vm" --live --set vcpu_period=100000 >/dev/null
    virsh -q -c "$(cat "$dir/$h/uri")" schedinfo "$vm" --live --set "vcpu_quota=$quota" >/dev/null
}

cmd_status() {
    [ -e "$dir/lab.env" ] || { echo "lab $id is down"; return 0; }
    local d h
    for d in "$dir"/h*/; do
        h="$(basename "$d")"
        local pid
        pid="$(cat "$d/libvirtd.pid" 2>/dev/null || true)"
        if alive "$pid"; then
            echo "$h $(cat "$d/uri") libvirtd=$pid"
            virsh -q -c "$(cat "$d/uri")" list --all | sed 's/^/    /'
        else
            echo "$h $(cat "$d/uri") libvirtd=stopped"
        fi
    done
}

cmd_down() {
    [ -d "$dir" ] || { echo "lab: lab $id is not up" >&2; return 0; }
    local d h pid ns p
    for d in "$dir"/h*/; do
        [ -d "$d" ] || continue
        h="$(basename "$d")"
        # guests first, through libvirt (which then removes their cgroups), then the daemon
        local uri dom
        uri="$(cat "$d/uri" 2>/dev/null || true)"
        if [ -n "$uri" ] && alive "$(cat "$d/libvirtd.pid" 2>/dev/null || true)"; then
            for dom in $(timeout 10 virsh -q -c "$uri" list --name 2>/dev/null || true); do
                timeout 10 virsh -q -c "$uri" destroy "$dom" >/dev/null 2>&1 || true
            done
        fi
        stop_daemon "$h"
        # every process left in the host's network namespace: its QEMUs, then the holder
        ns="$(cat "$d/netns" 2>/dev/null || true)"
        if [ -n "$ns" ]; then
            local left n
            for n in 1 2 3 4 5 6 7 8 9 10; do
                left=0
                for p in /proc/[0-9]*; do
                    pid="${p#/proc/}"
                    [ "$pid" = "$$" ] && continue
                    if [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ]; then
                        kill -9 "$pid" 2>/dev/null || true
                        left=1
                    fi
                done
                [ "$left" -eq 0 ] && break
                sleep 0.2
            done
        fi
        pid="$(cat "$d/holder.pid" 2>/dev/null || true)"
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
        ip link del "dvl${id}$h" 2>/dev/null || true
        ip netns del "dvl$id-$h" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    # the hosts' cgroups (their guests' left over too), emptied by the kills above
    local root
    if [ -e "$dir/cgroup-roots" ]; then
        for root in $(sort -u "$dir/cgroup-roots"); do
            [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done
    fi
    # QEMU's cgroups (cgroupfs layout without systemd) are removed by libvirt when it stops a
    # guest; killed guests leave theirs, so remove the empty ones named after the lab's guests.
    local img name cg
    for img in "$dir"/images/*.xml; do
        [ -e "$img" ] || continue
        name="$(basename "$img" .xml)"
        while read -r cg; do
            find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
        done < <(find /sys/fs/cgroup -maxdepth 4 -type d -name "qemu-*-$name.libvirt-qemu" 2>/dev/null)
    done
    rm -rf "$dir"
    echo "lab: lab $id down" >&2
}

command="${1:-}"
[ -n "$command" ] || die "usage: lab.sh [--id K] up|vm|uri|addr|exec|stop-daemon|start-daemon|block|unblock|cpu-cap|where|serial|duty|status|down"
shift
case "$command" in
    up) cmd_up "$@" ;;
    vm) [ $# -ge 2 ] || die "usage: vm HOST NAME [options]"; cmd_vm "$@" ;;
    uri) host_index "$1" >/dev/null; cat "$dir/$1/uri" ;;
    addr) host_addr "$1" ;;
    exec) h="$1"; shift; host_index "$h" >/dev/null; in_host_exec "$h" "$@" ;;
    stop-daemon) host_index "$1" >/dev/null; stop_daemon "$1" ;;
    start-daemon) host_index "$1" >/dev/null; start_daemon "$1" ;;
    block) host_index "$1" >/dev/null; cmd_block "$@" ;;
    unblock) host_index "$1" >/dev/null; cmd_unblock "$1" ;;
    cpu-cap) [ $# -eq 2 ] || die "usage: cpu-cap VM PERCENT"; cmd_cpu_cap "$@" ;;
    where) [ $# -eq 1 ] || die "usage: where VM"; cmd_where "$1" ;;
    serial) [ $# -eq 1 ] || die "usage: serial VM"; cmd_serial "$1" ;;
    duty) [ $# -eq 2 ] || die "usage: duty VM P"; cmd_duty "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    *) die "unknown command $command" ;;
esac
