# Sourced by the libvirt end-to-end tests: the checks they make before starting a lab, and
# `check`, their one way to count an assertion.
# e2e_preflight NAME [NAMESPACES...]: skips the test loudly (exit 0) where the machine cannot run
# it (not root, no network namespaces, `unshare --NAMESPACE` refused, libvirt not installable);
# with CI=true a failed libvirt install fails the test (exit 1) instead.

e2e_skip() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! $e2e_name end-to-end test SKIPPED: $*" >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    exit 0
}

e2e_preflight() {
    e2e_name=$1
    shift
    [ "$(id -u)" -eq 0 ] || e2e_skip "needs root (namespaces, libvirtd)"
    if ! tools/setup-libvirt.sh; then
        if [ "${CI:-}" = true ]; then
            echo "$e2e_name e2e: tools/setup-libvirt.sh could not install libvirt/QEMU (CI=true: failing)" >&2
            exit 1
        fi
        e2e_skip "tools/setup-libvirt.sh could not install libvirt/QEMU"
    fi
    if ! ip netns add dvl-probe-$$ 2>/dev/null; then e2e_skip "cannot create network namespaces"; fi
    ip netns del dvl-probe-$$
    local flags=() ns what=""
    for ns in "$@"; do
        flags+=("--$ns")
        what="${what:+$what and }$ns"
    done
    unshare "${flags[@]}" --propagation private true 2>/dev/null ||
        e2e_skip "cannot create $what namespaces"
}

# check NAME COMMAND...: one assertion; counts it in the caller's `passed` or `failed`.
check() {
    local name="$1"
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok - $name"
    else
        failed=$((failed + 1))
        echo "not ok - $name"
    fi
}
