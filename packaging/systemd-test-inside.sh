# The part of packaging/systemd-test.sh that runs inside the container, as root, under systemd
# (appended to a line setting VM). Writes /dvms-test/result.log and /dvms-test/status.
set -u
exec >/dvms-test/result.log 2>&1
fail() { echo "FAIL: $*"; echo FAIL >/dvms-test/status; exit 1; }
step() { echo; echo "== $*"; }
wait_for() { # seconds, command...
    local n=$(($1 * 5))
    shift
    for _ in $(seq "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

step "PID 1: $(cat /proc/1/comm), $(systemctl --version | head -1)"
step "dpkg -i"
DEBIAN_FRONTEND=noninteractive dpkg -i /dvms-test/dvms.deb || fail "dpkg -i"
systemctl is-enabled dvmsd || fail "not enabled"
systemctl is-active dvmsd && fail "started on first install (it should wait for the operator)"

step "configure: observe actuator, loopback overlay, the fake host root with $VM"
# The shipped file has every [table] header uncommented: each key goes right under its header.
under() { # table, line
    sed -i "/^\[$1\]\$/a $2" /etc/dvms/dvms.toml
}
under node 'name = "ct-node"'
under overlay 'listen = "/ip4/127.0.0.1/tcp/0"'
grep -v '^\[' /dvms-test/monitor.toml | grep . | while IFS= read -r line; do
    under monitor "$line"
done
grep -v '^#' /etc/dvms/dvms.toml | grep .
cp /etc/dvms/dvms.toml /root/good.toml
dvmsd check-config || fail "check-config refuses the test config"

step "systemctl start dvmsd (Type=notify: returns once READY=1 arrived)"
if ! systemctl start dvmsd; then
    journalctl -u dvmsd --no-pager | tail -30
    fail "start"
fi
systemctl show dvmsd -p Type -p ActiveState -p SubState -p MainPID -p NRestarts -p User
[ "$(systemctl show dvmsd -p ActiveState --value)" = active ] || fail "not active"
ls -la /run/dvms /var/lib/dvms

step "dvmsctl status against the running agent"
wait_for 20 dvmsctl status || true
dvmsctl status || fail "dvmsctl status"

step "journalctl -u dvmsd F_VM=$VM"
wait_for 30 sh -c "journalctl -u dvmsd -q --no-pager F_VM=$VM | grep -q ." ||
    fail "no entry with F_VM=$VM"
journalctl -u dvmsd -q --no-pager -o verbose "F_VM=$VM" | head -40
[ -z "$(journalctl -u dvmsd -q --no-pager F_VM=vm-ct-9999)" ] || fail "F_VM=vm-ct-9999 found entries"
step "journalctl -u dvmsd (first lines)"
journalctl -u dvmsd -q --no-pager | head -20

step "systemd-analyze security dvmsd (online, the running unit)"
systemd-analyze security dvmsd --no-pager | tail -2

step "the hardened agent keeps running (no denied call killed it) for 5 s"
sleep 5
[ "$(systemctl show dvmsd -p ActiveState --value)" = active ] || fail "agent stopped"
[ "$(systemctl show dvmsd -p NRestarts --value)" = 0 ] || fail "agent restarted"

step "a bad config: start fails with 78 in ExecStartPre=, the unit ends failed (start limit)"
printf '[monitor]\nperiod = "often"\n' >/etc/dvms/dvms.toml
systemctl restart dvmsd && fail "restart succeeded with a bad config"
wait_for 40 sh -c '[ "$(systemctl show dvmsd -p ActiveState --value)" = failed ]' ||
    fail "still $(systemctl show dvmsd -p ActiveState --value) 40 s after a bad config: restart loop"
systemctl show dvmsd -p ActiveState -p Result -p ExecMainStatus -p NRestarts
sleep 6
[ "$(systemctl show dvmsd -p ActiveState --value)" = failed ] || fail "restarted after failing"
[ "$(systemctl show dvmsd -p NRestarts --value)" -le 2 ] || fail "more than 2 restarts on a bad config"
journalctl -u dvmsd -q --no-pager | grep "monitor.period" | tail -3
journalctl -u dvmsd -q --no-pager | grep "monitor.period" >/dev/null || fail "the journal does not name the key"
cp /root/good.toml /etc/dvms/dvms.toml
systemctl reset-failed dvmsd
systemctl start dvmsd || fail "start after fixing the config"

step "stop, dpkg --purge"
systemctl stop dvmsd
dpkg --purge dvms || fail "purge"
ls /etc/dvms /var/lib/dvms 2>&1
getent passwd dvms && fail "user left"
echo PASS >/dvms-test/status
