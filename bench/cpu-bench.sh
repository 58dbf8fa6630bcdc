#!/usr/bin/env bash
# CPU per frame (issue 16, goal 1): udr with one worker against the C baseline (bench/cforward/cforward.c: a TPACKET_V3
# ring, the MAC rewrite and TTL patch, sendmmsg from the ring), in the same namespace lab, under the same load, in
# alternating runs. The load is tcpreplay on the client: FLOWS UDP flows to VIP:5353 (random sources in
# 198.19.128.0/17, one datagram each per pass, 52-byte frames), looped at PPS for SECONDS; both forwarders first take
# one pass unmeasured, so udr's table holds every flow (the established path, as the C forwarder has no table). CPU is
# the forwarder's whole process (user + sys ticks from /proc/PID/stat, every thread); frames are what rs1 and rs2
# received. The report: ticks per million frames for each, and udr/C.
#
#   bench/cpu-bench.sh [--rounds R] [--seconds S] [--pps P] [--trace] [--profile] [--coalesce USECS] [--xdp] [--c-tx-ring]
# --coalesce adds a subject, udr with --coalesce-usecs USECS (0: coalescing off; udr's default is adaptive up to
# 100 µs), in the same rounds. --xdp adds udr --backend xdp (AF_XDP: udr's XDP program is attached to the balancer's
# veth for that subject's runs only). --c-tx-ring adds the C forwarder transmitting through a PACKET_TX_RING
# (CFORWARD_TX_RING=1) instead of sendmmsg.
# --trace also counts each forwarder's system calls for 3 s of every measured load (perf trace -s; the counting
# itself costs CPU, so the ticks of a traced run are not comparable) and prints the frames per poll, per sleep (the
# coalescing wait: clock_nanosleep) and per sendmmsg.
# --profile samples each forwarder for 3 s of every measured load (perf record, udr's JIT code named through
# DOTNET_PerfMapEnabled) and prints where its CPU went, by symbol, kernel and user space together.
# UDR_ARGS: more `udr run` options for the subject udr (e.g. UDR_ARGS="--busy-poll-usecs 50").
# Bounded: each load runs SECONDS at PPS; the namespaces udrcpu-* are removed on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrcpu
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
VIP=198.18.0.100
PORT=5353
FLOWS=10000
ROUNDS=3
SECONDS_RUN=10
PPS=50000
TRACE=0
PROFILE=0
COALESCE=
XDP=0
C_TX_RING=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --seconds) SECONDS_RUN=$2; shift 2 ;;
        --pps) PPS=$2; shift 2 ;;
        --trace) TRACE=1; shift ;;
        --profile) PROFILE=1; shift ;;
        --coalesce) COALESCE=$2; shift 2 ;;
        --xdp) XDP=1; shift ;;
        --c-tx-ring) C_TX_RING=1; shift ;;
        *) echo "usage: $0 [--rounds R] [--seconds S] [--pps P] [--trace] [--profile] [--coalesce USECS] [--xdp] [--c-tx-ring]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "cpu bench: needs root" >&2; exit 2; }
for tool in tcpreplay cc nft $([ "$TRACE$PROFILE" != 00 ] && echo perf); do command -v $tool >/dev/null || { echo "cpu bench: $tool missing" >&2; exit 2; }; done
[ -x "$UDR" ] || { echo "cpu bench: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# shellcheck source=bench/cforward/cforward-session.sh
. bench/cforward/cforward-session.sh
python3 tools/lab/flood.py "$WORK/flows.pcap" "$FLOWS" udp 198.19.128.0/17 "$VIP" "$PORT" "$CLIENT_MAC" "$LB_MAC" >/dev/null
LOOPS=$((PPS * SECONDS_RUN / FLOWS))
HZ=$(getconf CLK_TCK)

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
received() { echo $(( $(in_host rs1 cat /sys/class/net/eth0/statistics/rx_packets) + $(in_host rs2 cat /sys/class/net/eth0/statistics/rx_packets) )); }
replay() { in_host client tcpreplay -q -i eth0 --pps="$PPS" --loop="$1" "$WORK/flows.pcap" >/dev/null 2>&1; }
# measure PID: one warm-up pass, then the measured load; sets FRAMES and USED (ticks). No subshells here: the session's
# cleanup must know every process started.
measure() {
    local pid=$1 t0 r0
    replay 1
    sleep 0.5
    t0=$(ticks "$pid"); r0=$(received)
    local tracer=""
    if [ "$TRACE" -eq 1 ]; then
        timeout -s INT 3 perf trace -s -p "$pid" > "$WORK/trace" 2>&1 &
        tracer=$!
    fi
    local sampler=""
    if [ "$PROFILE" -eq 1 ]; then
        perf record -q -F 1999 -g -p "$pid" -o "$WORK/perf.data" -- sleep 3 > /dev/null 2>&1 &
        sampler=$!
    fi
    replay "$LOOPS"
    sleep 0.5
    FRAMES=$(( $(received) - r0 )); USED=$(( $(ticks "$pid") - t0 ))
    if [ -n "$tracer" ]; then
        wait "$tracer" || true
        # Every thread's summary; the frames in those 3 s are PPS * 3.
        awk -v frames=$((PPS * 3)) '$1 == "poll" || $1 == "ppoll" || $1 == "clock_nanosleep" || $1 == "sendmmsg" || $1 == "sendto" || $1 == "send" { n[$1] += $2 }
            END { for (s in n) printf "    %-15s %8d calls, %6.2f frames per call\n", s, n[s], frames / n[s] }' "$WORK/trace" >&2
    fi
    if [ -n "$sampler" ]; then
        wait "$sampler" || true
        perf report -i "$WORK/perf.data" --no-children -g none --sort dso,sym --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >&2 || true
    fi
}

run_udr() {
    udr_start "$WORK/rules" --workers 1 ${UDR_ARGS:-}
    measure "$UDR_PID"
    udr_stop > /dev/null
}

run_udr-coalesced() {
    udr_start "$WORK/rules" --workers 1 --coalesce-usecs "$COALESCE"
    measure "$UDR_PID"
    udr_stop > /dev/null
}

run_udr-xdp() {
    udr_start "$WORK/rules" --workers 1 --backend xdp
    measure "$UDR_PID"
    udr_stop > /dev/null
}

run_c() {
    cforward_start $((SECONDS_RUN * 4))
    measure "$C_PID"
    cforward_stop
}

run_c-txring() {
    CFORWARD_TX_RING=1 cforward_start $((SECONDS_RUN * 4))
    measure "$C_PID"
    cforward_stop
}
# perf-PID.map in /tmp names the JIT-compiled methods; with W^X on, code runs from a double mapping (memfd:doublemapper)
# that the map does not cover, so it is turned off for a profiled run.
[ "$PROFILE" -eq 1 ] && export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0

printf '%-6s %-8s %10s %8s %16s\n' round subject frames ticks "ticks/1M frames"
sum_udr=0 sum_c=0 sum_coalesced=0 sum_xdp=0 sum_c_txring=0
SUBJECTS="udr c"
[ -n "$COALESCE" ] && SUBJECTS="udr udr-coalesced c"
[ "$XDP" -eq 1 ] && SUBJECTS="$SUBJECTS udr-xdp"
[ "$C_TX_RING" -eq 1 ] && SUBJECTS="$SUBJECTS c-txring"
for round in $(seq 1 "$ROUNDS"); do
    for subject in $SUBJECTS; do
        "run_$subject"
        per=$(python3 -c "print(round($USED * 1e6 / max($FRAMES, 1), 1))")
        printf '%-6s %-8s %10s %8s %16s\n' "$round" "$subject" "$FRAMES" "$USED" "$per"
        case $subject in
            udr) sum_udr=$(python3 -c "print($sum_udr + $per)") ;;
            udr-coalesced) sum_coalesced=$(python3 -c "print($sum_coalesced + $per)") ;;
            udr-xdp) sum_xdp=$(python3 -c "print($sum_xdp + $per)") ;;
            c) sum_c=$(python3 -c "print($sum_c + $per)") ;;
            c-txring) sum_c_txring=$(python3 -c "print($sum_c_txring + $per)") ;;
        esac
    done
done
python3 -c "print(f'udr/C CPU per frame: {$sum_udr/$sum_c:.2f} (mean of $ROUNDS rounds; {$PPS} pps for {$SECONDS_RUN} s, {$FLOWS} flows, ticks of 1/$HZ s)')"
[ -n "$COALESCE" ] && python3 -c "print(f'udr --coalesce-usecs $COALESCE / C: {$sum_coalesced/$sum_c:.2f}')"
[ "$XDP" -eq 1 ] && python3 -c "print(f'udr --backend xdp / C: {$sum_xdp/$sum_c:.2f}; xdp / afpacket: {$sum_xdp/$sum_udr:.2f}')"
[ "$C_TX_RING" -eq 1 ] && python3 -c "print(f'C with PACKET_TX_RING / C with sendmmsg: {$sum_c_txring/$sum_c:.2f}')"
exit 0
