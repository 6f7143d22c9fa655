#!/usr/bin/env bash
# CI check of the Debian package: builds it (packaging/build-deb.sh; cargo reuses an up-to-date
# build), then checks contents and modes, the control data, static binaries and their size,
# lintian (no errors), the unit (systemd-analyze verify, security exposure), and on this machine:
# dpkg -i, the user and keys, dvmsd --version and check-config from the installed paths, a bad
# config refused with exit 78 naming the key, the journald test, remove keeping config and keys,
# and purge leaving nothing behind.
#
# Usage: packaging/check-deb.sh [--no-build]
# Needs root for the install part: without root it is skipped with a message, except in CI
# (CI=true), where it fails. Installs what it needs with apt (lintian, file, man-db, systemd).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

MAX_DVMSD_BYTES=$((8 * 1024 * 1024))
MAX_EXPOSURE=3.0

fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
step() { echo "== check-deb: $* ($(($(date +%s) - start)) s)"; }

apt_install() { # installs the named Debian packages when missing
    local need=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
    ((${#need[@]})) || return 0
    [ "$(id -u)" -eq 0 ] || fail "missing ${need[*]} and not root"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

in_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }
# Tools the checks below use: lintian, file, man (man-db), systemd-analyze and systemd-journald
# (systemd), dpkg-deb (dpkg), objcopy (binutils, used by build-deb.sh).
apt_install lintian file man-db systemd dpkg binutils

step "build"
deb=$(packaging/build-deb.sh "$@" | tail -1)
[ -f "$deb" ] || fail "build-deb.sh made no package"
echo "$deb: $(stat -c %s "$deb") bytes"

step "dpkg-deb --info"
dpkg-deb --info "$deb"
for field in Package Version Architecture Maintainer Installed-Size Depends Description; do
    # (into a variable first: grep -q would close the pipe early, and pipefail see SIGPIPE)
    value=$(dpkg-deb --field "$deb" "$field")
    [ -n "$value" ] || fail "control field $field empty"
done
if grep -qi libvirt <<<"$(dpkg-deb --field "$deb" Depends)"; then
    fail "Depends names libvirt but nothing shipped links it"
fi

step "contents and modes"
# mode owner/group path, exactly as shipped (directories omitted).
expected="-rwxr-xr-x root/root ./usr/bin/dvmsd
-rwxr-xr-x root/root ./usr/bin/dvmsctl
-rw-r--r-- root/root ./etc/dvms/dvms.toml
-rw-r--r-- root/root ./lib/systemd/system/dvmsd.service
-rw-r--r-- root/root ./usr/share/man/man8/dvmsd.8.gz
-rw-r--r-- root/root ./usr/share/man/man8/dvmsctl.8.gz
-rw-r--r-- root/root ./usr/share/man/man5/dvms.toml.5.gz
-rw-r--r-- root/root ./usr/share/bash-completion/completions/dvmsd
-rw-r--r-- root/root ./usr/share/bash-completion/completions/dvmsctl
-rw-r--r-- root/root ./usr/share/doc/dvms/copyright
-rw-r--r-- root/root ./usr/share/lintian/overrides/dvms
-rw-r--r-- root/root ./usr/share/doc/dvms/changelog.gz"
actual=$(dpkg-deb --contents "$deb" | awk '$1 !~ /^d/ {print $1, $2, $6}')
if [ "$(sort <<<"$expected")" != "$(sort <<<"$actual")" ]; then
    diff <(sort <<<"$expected") <(sort <<<"$actual") >&2 || true
    fail "package contents differ from the expected list (< expected, > actual)"
fi
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -t | sed 's|^\./||' | grep -v '^$' | sort | tr '\n' ' ')" = \
  "conffiles control md5sums postinst postrm prerm " ] || fail "unexpected control files"
grep -qx /etc/dvms/dvms.toml <<<"$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" ||
    fail "/etc/dvms/dvms.toml is not a conffile"

step "static binaries, size"
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
for bin in dvmsd dvmsctl; do
    desc=$(file -b "$x/usr/bin/$bin")
    echo "$bin: $desc"
    grep -qE 'statically linked|static-pie linked' <<<"$desc" || fail "$bin is not statically linked"
    grep -q 'stripped' <<<"$desc" && ! grep -q 'not stripped' <<<"$desc" || fail "$bin is not stripped"
done
size=$(stat -c %s "$x/usr/bin/dvmsd")
echo "dvmsd: $size bytes ($(awk "BEGIN {printf \"%.2f\", $size / 1048576}") MiB), limit $MAX_DVMSD_BYTES"
[ "$size" -le "$MAX_DVMSD_BYTES" ] || fail "dvmsd is larger than 8 MiB"
for page in "$x"/usr/share/man/man*/*.gz; do
    # man's own warnings (groff) on every page
    warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "man warnings in $(basename "$page"): $warnings"
done

step "unit: systemd-analyze security --offline"
exposure_out=$(systemd-analyze security --offline=true "$x/lib/systemd/system/dvmsd.service" 2>&1 | tail -1)
echo "$exposure_out"
exposure=$(sed -n 's/.*Overall exposure level for dvmsd.service: \([0-9.]*\).*/\1/p' <<<"$exposure_out")
[ -n "$exposure" ] || fail "no exposure figure"
awk "BEGIN {exit !($exposure <= $MAX_EXPOSURE)}" || fail "exposure $exposure > $MAX_EXPOSURE"

step "lintian"
# lintian exits non-zero on errors only with --fail-on error.
lintian --fail-on error --tag-display-limit 0 --display-info "$deb" || fail "lintian reports errors"

if [ "$(id -u)" -ne 0 ]; then
    in_ci && fail "not root: CI must run the install, journald and purge checks"
    echo "check-deb: not root: install, journald and purge checks SKIPPED"
    echo "check-deb: static checks passed in $(($(date +%s) - start)) s"
    exit 0
fi
if dpkg -s dvms >/dev/null 2>&1; then
    fail "a dvms package is already installed here: purge it first (dpkg --purge dvms)"
fi

# What the package may leave behind, listed before install and compared after purge: every path
# named *dvms* (outside the work trees), systemd's unit directories and enablement state, the
# user and the group. (/var/cache/man is man-db's cache of formatted pages, which systemd-analyze
# verify fills by checking the Documentation= pages; man-db expires it.)
snapshot() {
    {
        find / -xdev \( -path /work -o -path /root -o -path /home -o -path /tmp -o -path /var/tmp \
            -o -path /proc -o -path /sys -o -path /var/cache/man \) -prune -o -name '*dvms*' -print
        find /run -xdev -name '*dvms*' -print
        find /etc/systemd /lib/systemd/system /var/lib/systemd -xdev -print
    } 2>/dev/null | LC_ALL=C sort
    getent passwd dvms || true
    getent group dvms || true
}
snapshot >"$x.before"
trap 'rm -rf "$x" "$x.before" "$x.after"; dpkg --purge dvms >/dev/null 2>&1 || true' EXIT

step "dpkg -i"
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
getent passwd dvms >/dev/null || fail "no dvms user"
if getent group libvirt >/dev/null; then
    grep -qw libvirt <<<"$(id -nG dvms)" || fail "dvms is not in group libvirt"
fi
for key in /var/lib/dvms/overlay-identity.key /etc/dvms/cluster.key; do
    [ "$(stat -c '%a %U' "$key")" = "600 dvms" ] || fail "$key is $(stat -c '%a %U' "$key"), not 600 dvms"
done
[ -L /etc/systemd/system/multi-user.target.wants/dvmsd.service ] || fail "dvmsd.service not enabled"
/usr/bin/dvmsd --version
/usr/bin/dvmsctl --version
/usr/bin/dvmsd check-config || fail "check-config refuses the shipped config"
runuser -u dvms -- /usr/bin/dvmsd check-config --config /etc/dvms/dvms.toml ||
    fail "check-config fails as the dvms user (what ExecStartPre= runs)"

step "systemd-analyze verify"
verify=$(systemd-analyze verify /lib/systemd/system/dvmsd.service 2>&1) || true
[ -z "$verify" ] || fail "systemd-analyze verify: $verify"

step "keys survive a reinstall"
sums=$(md5sum /var/lib/dvms/overlay-identity.key /etc/dvms/cluster.key)
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
[ "$sums" = "$(md5sum /var/lib/dvms/overlay-identity.key /etc/dvms/cluster.key)" ] ||
    fail "a reinstall changed a key"

step "a bad /etc/dvms/dvms.toml"
cp /etc/dvms/dvms.toml "$x.good"
bad_check() { # dotted key (table.key), its bad TOML value
    local table=${1%.*} key=${1##*.}
    # The shipped file has every [table] header uncommented: put the line right under it.
    sed -i "/^\[$table\]\$/a $key = $2" /etc/dvms/dvms.toml
    grep -qx "$key = $2" /etc/dvms/dvms.toml || fail "could not add $1 to the shipped config"
    set +e
    msg=$(/usr/bin/dvmsd check-config 2>&1)
    rc=$?
    set -e
    cp "$x.good" /etc/dvms/dvms.toml
    echo "  $1: exit $rc: $msg"
    [ "$rc" = 78 ] || fail "check-config exited $rc, not 78, on a bad $1"
    grep -q "$1" <<<"$msg" || fail "check-config's message does not name $1"
}
bad_check monitor.period '"often"'
bad_check overlay.site '-1'
bad_check node.colour '"blue"'
rm -f "$x.good"

step "journald test"
packaging/journald-test.sh /usr/bin/dvmsd

step "dpkg --remove keeps config and keys"
dpkg --remove dvms >/dev/null
[ ! -e /usr/bin/dvmsd ] || fail "/usr/bin/dvmsd still there after remove"
for f in /etc/dvms/dvms.toml /etc/dvms/cluster.key /var/lib/dvms/overlay-identity.key; do
    [ -e "$f" ] || fail "$f removed by dpkg --remove"
done

step "dpkg --purge leaves nothing behind"
dpkg --purge dvms >/dev/null
snapshot >"$x.after"
if ! diff "$x.before" "$x.after" >"$x.diff"; then
    cat "$x.diff" >&2
    fail "purge left files behind or removed some (< before install, > after purge)"
fi
echo "check-deb: all checks passed in $(($(date +%s) - start)) s"
