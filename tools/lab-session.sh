# Sourced by the scripts that drive a whole lab session (tools/demo.sh, bench/lab-bench.sh): one lab named
# $PREFIX, one udr in its balancer, a scratch folder $WORK, and a cleanup that removes all of it on every exit path.
# Callers set PREFIX and UDR before sourcing; the repository root must be the current directory.

WORK=$(mktemp -d "/tmp/udr-$PREFIX.XXXXXX")
UDR_PID=

lab_session_cleanup() {
    set +e
    [ -n "$UDR_PID" ] && kill -TERM "$UDR_PID" 2>/dev/null && wait "$UDR_PID" 2>/dev/null
    tools/lab.sh down "$PREFIX"
    rm -rf "$WORK"
}
trap lab_session_cleanup EXIT INT TERM

in_host() { local host=$1; shift; ip netns exec "$PREFIX-$host" "$@"; }

# lab_session_up: a fresh lab (a leftover one of the same name is removed first).
lab_session_up() {
    tools/lab.sh down "$PREFIX"
    tools/lab.sh up "$PREFIX" >/dev/null
}

# udr_start RULES_FILE [udr run options...]: start udr on the balancer's eth0 and wait until it serves.
udr_start() {
    local rules=$1; shift
    # Its own control socket: a udr already running on this host keeps /run/udr/udr.sock.
    ip netns exec "$PREFIX-lb" "$UDR" run --interface eth0 --rules "$rules" --control "$WORK/udr.sock" "$@" > "$WORK/udr.log" 2>&1 &
    UDR_PID=$!
    for _ in $(seq 1 100); do grep -q "udr serving" "$WORK/udr.log" && return 0; sleep 0.1; done
    cat "$WORK/udr.log" >&2
    echo "udr did not start" >&2
    return 1
}

# udr_stop: SIGTERM, wait, and print udr's closing totals line. Call it directly, not in $(...): a subshell
# cannot wait for udr, and would read the log before udr wrote its totals.
udr_stop() {
    kill -TERM "$UDR_PID"
    wait "$UDR_PID" || true
    UDR_PID=
    grep -o 'totals: .*' "$WORK/udr.log" || true
}
