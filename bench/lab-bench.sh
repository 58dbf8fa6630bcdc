#!/usr/bin/env bash
# The lab bench: udr's direct routing against the kernel's own forwarding path, same topology, same run.
#
#   udr path:    client ──▶ VIP 198.18.0.100 ──(lb: udr DR, MAC rewrite)──▶ rs1   (replies rs1 ──▶ client)
#   kernel path: client ──▶ 198.18.0.200 via lb ──(lb: kernel IP forwarding)──▶ rs1 (replies rs1 ──▶ client)
#
# Both paths do the same work on the balancer: take a frame for an address the real server holds on lo, decrement
# TTL, rewrite the MACs, send it to rs1. Tests alternate between the paths (udr, kernel, udr, kernel, ...) so that
# the machine's noise hits both alike; the report is the ratio udr/kernel per measure. Bounded: every load runs a
# fixed time (BENCH_SECONDS, default 5) or count. Namespaces udrbench-* are removed on every exit path.
#
#   bench/lab-bench.sh [--workers N] [--rounds R]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrbench
UDR="$ROOT/artifacts/udr/udr"
VIP=198.18.0.100
KERNEL_VIP=198.18.0.200
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
WORKERS=2
ROUNDS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "usage: $0 [--workers N] [--rounds R]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "lab bench: needs root" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "lab bench: iperf3 missing (./build.sh bench installs it)" >&2; exit 2; }
[ -x "$UDR" ] || { echo "lab bench: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# The kernel path: lb routes KERNEL_VIP to rs1, which holds it on lo (ARP already hidden there by the lab).
in_host rs1 ip addr add "$KERNEL_VIP/32" dev lo
in_host lb sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
in_host lb ip route add "$KERNEL_VIP/32" via 198.18.0.11
in_host client ip route add "$KERNEL_VIP/32" via 198.18.0.2
in_host client sysctl -qw net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0

cat > "$WORK/rules" <<RULES
-A -t $VIP:5201 -s rr
-a -t $VIP:5201 -r 198.18.0.11:5201 -g -w 1
-A -u $VIP:5201 -s rr
-a -u $VIP:5201 -r 198.18.0.11:5201 -g -w 1
-A -t $VIP:8080 -s rr
-a -t $VIP:8080 -r 198.18.0.11:8080 -g -w 1
RULES

# One iperf3 server per path, each bound to its address: a UDP reply must leave from the address the client sent to
# (a server bound to 0.0.0.0 would answer from rs1's own address, and the client's connected socket ignores that).
in_host rs1 iperf3 -s -D -B "$VIP" -p 5201 --logfile "$WORK/iperf3-udr.log"
in_host rs1 iperf3 -s -D -B "$KERNEL_VIP" -p 5202 --logfile "$WORK/iperf3-kernel.log"
# A TCP server that accepts and closes at once, for connections per second (bounded by the client's count).
cat > "$WORK/acceptor.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 8080)); s.listen(1024)
while True:
    c, _ = s.accept(); c.close()
PY
cat > "$WORK/connector.py" <<'PY'
import socket, sys, time
target, seconds = sys.argv[1], float(sys.argv[2])
n, deadline = 0, time.monotonic() + seconds
start = time.monotonic()
while time.monotonic() < deadline and n < 200000:
    c = socket.create_connection((target, 8080), timeout=2)
    c.recv(1)
    c.close(); n += 1
print(f"{n / (time.monotonic() - start):.0f}")
PY
in_host rs1 python3 "$WORK/acceptor.py" &

udr_start "$WORK/rules" --workers "$WORKERS"
sleep 0.5

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
port_of() { [ "$1" = "$VIP" ] && echo 5201 || echo 5202; }
tcp_gbps() { in_host client iperf3 -c "$1" -p "$(port_of "$1")" -t "$SECONDS_PER_RUN" -J | json "round(d['end']['sum_received']['bits_per_second']/1e9, 3)"; }
udp_kpps() { in_host client iperf3 -c "$1" -p "$(port_of "$1")" -u -b 0 -l 64 -t "$SECONDS_PER_RUN" -J |
    json "round(d['end']['sum']['packets']*(100-d['end']['sum']['lost_percent'])/100/d['end']['sum']['seconds']/1e3, 1)"; }
cps() { in_host client python3 "$WORK/connector.py" "$1" "$SECONDS_PER_RUN"; }

declare -A total
for measure in tcp udp cps; do total[$measure-udr]=0; total[$measure-kernel]=0; done
printf '%-6s %-26s %12s %12s\n' round measure udr kernel
for round in $(seq 1 "$ROUNDS"); do
    for measure in tcp udp cps; do
        case $measure in tcp) fn=tcp_gbps; label="TCP upload (Gbit/s)" ;; udp) fn=udp_kpps; label="UDP 64 B delivered (kpps)" ;; cps) fn=cps; label="TCP connections/s" ;; esac
        u=$($fn "$VIP"); k=$($fn "$KERNEL_VIP")
        total[$measure-udr]=$(python3 -c "print(${total[$measure-udr]} + $u)")
        total[$measure-kernel]=$(python3 -c "print(${total[$measure-kernel]} + $k)")
        printf '%-6s %-26s %12s %12s\n' "$round" "$label" "$u" "$k"
    done
done
echo
echo "udr/kernel ratio (mean of $ROUNDS rounds, $SECONDS_PER_RUN s each, udr --workers $WORKERS):"
for measure in tcp udp cps; do
    python3 -c "u=${total[$measure-udr]}; k=${total[$measure-kernel]}; print(f'  {\"$measure\":4} udr {u/$ROUNDS:10.2f}  kernel {k/$ROUNDS:10.2f}  ratio {u/k:5.2f}')"
done
printf 'udr '; udr_stop
