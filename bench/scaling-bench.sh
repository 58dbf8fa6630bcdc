#!/usr/bin/env bash
# Many cores (issue 16, goal 5): how the forwarding rate grows with workers, udr against the C baseline
# (bench/cforward/cforward.c with as many threads in one PACKET_FANOUT_HASH group) and the kernel's own forwarding, in
# the same lab, under the same load, in one run. The load: LOADERS tcpreplay processes on the client, each at top speed
# over FLOWS UDP flows (random sources in 198.19.128.0/17, so the fanout spreads them), for SECONDS; the rate is what
# rs1 and rs2 received per second. udr runs DR rr over rs1 and rs2 with --workers W; the C forwarder does the same
# job with W threads; the kernel routes 198.18.0.200 to rs1 (lb's IP forwarding, all its cores). The report: Mpps for
# each at each worker count, and udr/C.
#
#   bench/scaling-bench.sh [--workers "1 2 4 8"] [--seconds S] [--loaders L]
# PIN=1: udr's W workers pinned to the last W CPUs (udr run --cpus), away from the loaders the scheduler puts first.
# UDR_ARGS: more `udr run` options for udr (e.g. UDR_ARGS="--busy-poll-usecs 50").
# Bounded: each load runs SECONDS; the namespaces udrscale-* are removed on every exit path. On this project's 2-vCPU
# machines only 1 and 2 workers mean anything; the point is a 16-core machine (the issue's device).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrscale
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
VIP=198.18.0.100
KERNEL_TARGET=198.18.0.200
PORT=5353
FLOWS=10000
WORKER_COUNTS="1 2"
SECONDS_RUN=5
LOADERS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKER_COUNTS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        --loaders) LOADERS=$2; shift 2 ;;
        *) echo "usage: $0 [--workers \"1 2 4 8\"] [--seconds S] [--loaders L]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "scaling bench: needs root" >&2; exit 2; }
for tool in tcpreplay cc nft; do command -v $tool >/dev/null || { echo "scaling bench: $tool missing" >&2; exit 2; }; done
[ -x "$UDR" ] || { echo "scaling bench: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# shellcheck source=bench/cforward/cforward-session.sh
. bench/cforward/cforward-session.sh
python3 tools/lab/flood.py "$WORK/vip.pcap" "$FLOWS" udp 198.19.128.0/17 "$VIP" "$PORT" "$CLIENT_MAC" "$LB_MAC" >/dev/null
python3 tools/lab/flood.py "$WORK/kernel.pcap" "$FLOWS" udp 198.19.128.0/17 "$KERNEL_TARGET" "$PORT" "$CLIENT_MAC" "$LB_MAC" >/dev/null
# The kernel's path: lb routes 198.18.0.200 to rs1, which holds it on lo (as bench/lab-bench.sh's DR kernel path).
in_host rs1 ip addr add "$KERNEL_TARGET/32" dev lo
in_host lb ip route add "$KERNEL_TARGET/32" via 198.18.0.11
in_host lb sysctl -qw net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0

received() { echo $(( $(in_host rs1 cat /sys/class/net/eth0/statistics/rx_packets) + $(in_host rs2 cat /sys/class/net/eth0/statistics/rx_packets) )); }
# load PCAP: LOADERS tcpreplays at top speed for SECONDS (looping, stopped by timeout); sets MPPS.
load() {
    local pcap=$1 r0 pids=() i
    r0=$(received)
    for i in $(seq 1 "$LOADERS"); do
        ip netns exec "$PREFIX-client" timeout -s INT "$SECONDS_RUN" tcpreplay -q -i eth0 --topspeed --loop=0 "$pcap" >/dev/null 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    sleep 0.3
    MPPS=$(python3 -c "print(round(($(received) - $r0) / $SECONDS_RUN / 1e6, 3))")
}

run_udr() {
    local cpus=()
    if [ "${PIN:-0}" = 1 ]; then
        local last=$(( $(nproc) - 1 ))
        cpus=(--cpus "$(( last - $1 + 1 ))-$last")
    fi
    udr_start "$WORK/rules" --workers "$1" "${cpus[@]}" ${UDR_ARGS:-}
    load "$WORK/vip.pcap"
    udr_stop > /dev/null
}

run_c() {
    cforward_start $((SECONDS_RUN + 3)) "$1"
    load "$WORK/vip.pcap"
    cforward_stop
}

run_kernel() {
    in_host lb sysctl -qw net.ipv4.ip_forward=1
    load "$WORK/kernel.pcap"
    in_host lb sysctl -qw net.ipv4.ip_forward=0
}

printf '%-8s %12s %12s %12s %8s\n' workers "udr Mpps" "C Mpps" "kernel Mpps" "udr/C"
for workers in $WORKER_COUNTS; do
    run_udr "$workers"; u=$MPPS
    run_c "$workers"; c=$MPPS
    run_kernel; k=$MPPS
    printf '%-8s %12s %12s %12s %8s\n' "$workers" "$u" "$c" "$k" "$(python3 -c "print(round($u / max($c, 1e-9), 2))")"
done
echo "($LOADERS tcpreplay loaders at top speed, $SECONDS_RUN s per measure, $FLOWS UDP flows of 52-byte frames; the kernel forwards on all cores)"
exit 0
