#!/usr/bin/env bash
# The health checkers' cost: `udr run --config` with N real servers, each checked by TCP_CHECK every second
# (delay_loop 1, a real connect to a real listener each time), against the same daemon and the same servers with no
# checkers, alternating (baseline, checked, baseline, checked) so that the machine's noise hits both alike. Reports
# each run's CPU (user + sys of the udr process, from /proc) as a share of one core, and the checkers' share: the
# difference. Everything runs in one namespace (udrchk), removed on every exit path; every run is bounded in time.
#
#   bench/checker-bench.sh [--servers N] [--seconds S] [--rounds R]      (defaults 1000, 20, 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
UDR="$ROOT/artifacts/udr/udr"
NS=udrchk
SERVERS=1000
SECONDS_PER_RUN=20
ROUNDS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) SERVERS=$2; shift 2 ;;
        --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "usage: $0 [--servers N] [--seconds S] [--rounds R]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "checker bench: needs root" >&2; exit 2; }
[ -x "$UDR" ] || { echo "checker bench: $UDR missing (./build.sh build)" >&2; exit 2; }
[ "$SERVERS" -ge 1 ] && [ "$SERVERS" -le 20000 ] || { echo "checker bench: --servers from 1 to 20000" >&2; exit 2; }

DIR=$(mktemp -d /tmp/udr-checker-bench.XXXXXX)
LISTENER=""
DAEMON=""
cleanup() {
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null || true
    [ -n "$LISTENER" ] && kill "$LISTENER" 2>/dev/null && wait "$LISTENER" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.18.200.1/32 dev lo          # the real servers: one address, ports 20000 and up
ip -n "$NS" link add udr0 type veth peer name udr1    # the balancer's interface (udr needs an Ethernet link)
ip -n "$NS" link set udr0 up
ip -n "$NS" link set udr1 up
ip -n "$NS" addr add 198.18.201.1/24 dev udr0

# The real servers: one process listening on SERVERS ports, accepting and closing each connection.
ulimit -n "$(ulimit -Hn)"  # 1000 listening sockets and their connections
ip netns exec "$NS" python3 -u - "$SERVERS" >"$DIR/listener.log" 2>&1 <<'PY' &
import selectors, socket, sys
count = int(sys.argv[1])
selector = selectors.DefaultSelector()
for port in range(20000, 20000 + count):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('198.18.200.1', port)); s.listen(128); s.setblocking(False)
    selector.register(s, selectors.EVENT_READ)
print('listening', flush=True)
while True:
    for key, _ in selector.select():
        try:
            key.fileobj.accept()[0].close()
        except OSError:
            pass
PY
LISTENER=$!
for _ in $(seq 100); do grep -q listening "$DIR/listener.log" && break; sleep 0.1; done
grep -q listening "$DIR/listener.log" || { echo "checker bench: the listener did not start" >&2; cat "$DIR/listener.log" >&2; exit 1; }

# keepalived.conf: one NAT service (NAT keeps each server's own port), SERVERS real servers, with or without a check.
write_config() { # FILE WITH_CHECKS
    {
        echo "virtual_server 198.18.201.100 80 {"
        echo "    delay_loop 1"
        echo "    lb_algo rr"
        echo "    lb_kind NAT"
        for i in $(seq 0 $((SERVERS - 1))); do
            if [ "$2" = yes ]; then
                echo "    real_server 198.18.200.1 $((20000 + i)) {"
                echo "        TCP_CHECK {"
                echo "            connect_timeout 1"
                echo "        }"
                echo "    }"
            else
                echo "    real_server 198.18.200.1 $((20000 + i)) {"
                echo "    }"
            fi
        done
        echo "}"
    } >"$1"
}
write_config "$DIR/baseline.conf" no
write_config "$DIR/checked.conf" yes

cpu_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

# One run: start the daemon, let it settle (the first checks are spread over warmup = delay_loop), measure its CPU
# over SECONDS_PER_RUN, count the servers its checkers hold up, stop it.
run() { # NAME CONFIG
    ip netns exec "$NS" "$UDR" run --interface udr0 --config "$2" --workers 1 --control "$DIR/udr.sock" >"$DIR/$1.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 300); do grep -q "udr serving" "$DIR/$1.log" && break; sleep 0.1; done
    grep -q "udr serving" "$DIR/$1.log" || { echo "checker bench: udr did not start" >&2; cat "$DIR/$1.log" >&2; exit 1; }
    sleep 3
    local before after up
    read -r user0 sys0 < <(cpu_ticks "$DAEMON")
    sleep "$SECONDS_PER_RUN"
    read -r user1 sys1 < <(cpu_ticks "$DAEMON")
    up=$("$UDR" checks --control "$DIR/udr.sock" 2>/dev/null | grep -c ' up ' || true)
    kill "$DAEMON"; wait "$DAEMON" 2>/dev/null || true
    DAEMON=""
    local hz
    hz=$(getconf CLK_TCK)
    awk -v u=$((user1 - user0)) -v k=$((sys1 - sys0)) -v hz="$hz" -v s="$SECONDS_PER_RUN" -v name="$1" -v up="$up" -v n="$SERVERS" \
        'BEGIN { printf "%-9s cpu %6.2f%% of one core (user %.2f%%, sys %.2f%%) over %d s; checkers up: %d of %d\n",
                 name, 100 * (u + k) / hz / s, 100 * u / hz / s, 100 * k / hz / s, s, up, (name == "checked" ? n : 0) }' | tee -a "$DIR/results"
}

echo "checker bench: $SERVERS real servers, TCP_CHECK every 1 s (checked) or none (baseline), $SECONDS_PER_RUN s per run, $ROUNDS round(s), $(nproc) CPU(s)"
for round in $(seq "$ROUNDS"); do
    run baseline "$DIR/baseline.conf"
    run checked "$DIR/checked.conf"
done
awk '/^baseline/ { b += $3; nb++ } /^checked/ { c += $3; nc++ }
     END { printf "mean: baseline %.2f%%, checked %.2f%%: the checkers cost %.2f%% of one core for %d checks/s\n", b / nb, c / nc, c / nc - b / nb, '"$SERVERS"' }' "$DIR/results"
