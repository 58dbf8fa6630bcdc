#!/usr/bin/env bash
# The lab bench: each of udr's forwarding methods against the kernel's own path on the same topology, same run.
#
#   DR   udr:    client ──▶ VIP:5201 ──(lb: udr -g, MAC rewrite)──▶ rs1              replies rs1 ──▶ client
#        kernel: client ──▶ 198.18.0.200 via lb ──(lb: kernel IP forwarding)──▶ rs1 (on its lo)
#   NAT  udr:    client ──▶ VIP:5211 ──(lb: udr -m, DNAT, eth0 → eth1)──▶ rs3 198.19.1.13:5201
#                replies rs3 ──▶ lb (its gateway) ──(udr: SNAT to VIP:5211, eth1 → eth0)──▶ client
#        kernel: client ──▶ 198.18.0.201 via lb ──(lb: nftables dnat + conntrack)──▶ rs4 198.19.1.14, and back
#   TUN  udr:    client ──▶ VIP:5221 ──(lb: udr -i, IP-in-IP)──▶ rs2 (udr node tunnel: decapsulates)  replies rs2 ──▶ client
#        kernel: client ──▶ 198.18.0.202 via lb ──(lb: kernel IP forwarding)──▶ rs2 (on its lo). This kernel has
#                no ipip module, so its own path to the same server is plain routing: the ratio includes the
#                encapsulation and rs2's user-space endpoint, which the kernel path does not pay.
#
# Each pair does the same job between the same hosts. Tests alternate between the paths (udr, kernel, udr, kernel,
# ...) so that the machine's noise hits both alike; the report is the ratio udr/kernel per mode and measure.
# Bounded: every load runs a fixed time (BENCH_SECONDS, default 5) or count. Namespaces udrbench-* are removed on
# every exit path.
#
# --metrics-cost adds what Prometheus scraping costs the data plane: DR's UDP 64 B delivery with nothing scraping udr's
# /metrics against the same while a loop scrapes it once a second (Prometheus' default is once per 15 s),
# alternating, ROUNDS times; the ratio scraped/unscraped is reported.
#
# The ratios are also drawn (gnuplot) as bench/lab-bench.svg, the chart README.md shows, from the table in
# bench/lab-bench.tsv (both rewritten by each run that measures all three modes; a partial run writes them under
# artifacts/lab-bench/ instead).
#
#   bench/lab-bench.sh [--workers N] [--rounds R] [--modes dr,nat,tun] [--metrics-cost] [--profile MODE]
# --profile MODE: after the table, the udr path's TCP upload of MODE once more, the whole machine sampled for 3 s of it
# (perf record -a; udr's JIT code named through DOTNET_PerfMapEnabled), and where the CPU went, by process and symbol.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrbench
# UDR names another build to measure (e.g. an older commit's publish, to compare two builds' ratios).
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
VIP=198.18.0.100
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
WORKERS=2
ROUNDS=2
MODES=dr,nat,tun
METRICS_COST=0
PROFILE=
METRICS=127.0.0.1:9477
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;; # "" for none (with --metrics-cost alone)
        --metrics-cost) METRICS_COST=1; shift ;;
        --profile) PROFILE=$2; shift 2 ;;
        *) echo "usage: $0 [--workers N] [--rounds R] [--modes dr,nat,tun] [--metrics-cost] [--profile MODE]" >&2; exit 2 ;;
    esac
done
for mode in ${MODES//,/ } $PROFILE; do
    case $mode in dr | nat | tun) ;; *) echo "lab bench: unknown mode '$mode' (dr, nat, tun)" >&2; exit 2 ;; esac
done
if [ -n "$PROFILE" ]; then
    command -v perf >/dev/null || { echo "lab bench: perf missing" >&2; exit 2; }
    # /tmp/perf-PID.map names JIT-compiled methods for every udr started below; W^X off, or the code runs from a
    # double mapping (memfd:doublemapper) the map does not cover.
    export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
fi
[ "$(id -u)" -eq 0 ] || { echo "lab bench: needs root" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "lab bench: iperf3 missing (./build.sh bench installs it)" >&2; exit 2; }
[ -x "$UDR" ] || { echo "lab bench: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# Where each path's load goes: address and iperf3 port (the CPS acceptor listens on the iperf3 port + 3000).
declare -A TARGET=(
    [dr-udr]=$VIP [dr-kernel]=198.18.0.200
    [nat-udr]=$VIP [nat-kernel]=198.18.0.201
    [tun-udr]=$VIP [tun-kernel]=198.18.0.202)
declare -A PORT=(
    [dr-udr]=5201 [dr-kernel]=5202
    [nat-udr]=5211 [nat-kernel]=5212
    [tun-udr]=5221 [tun-kernel]=5222)

# The kernel's paths. lb forwards (udr's nftables guard still keeps its kernel away from the VIP and from rs3's
# NAT replies, which is why the kernel's NAT goes to rs4). Redirects off: lb would tell the client to go direct.
in_host lb sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
in_host client sysctl -qw net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.eth0.accept_redirects=0
in_host rs1 ip addr add 198.18.0.200/32 dev lo
in_host rs2 ip addr add 198.18.0.202/32 dev lo
in_host lb ip route add 198.18.0.200/32 via 198.18.0.11
in_host lb ip route add 198.18.0.202/32 via 198.18.0.12
for kernel_target in 198.18.0.200 198.18.0.201 198.18.0.202; do in_host client ip route add "$kernel_target/32" via 198.18.0.2; done
in_host lb nft -f - <<NFT
table ip kbench {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr 198.18.0.201 dnat to 198.19.1.14
    }
}
NFT

cat > "$WORK/rules" <<RULES
-A -t $VIP:5201 -s rr
-a -t $VIP:5201 -r 198.18.0.11:5201 -g -w 1
-A -u $VIP:5201 -s rr
-a -u $VIP:5201 -r 198.18.0.11:5201 -g -w 1
-A -t $VIP:8201 -s rr
-a -t $VIP:8201 -r 198.18.0.11:8201 -g -w 1
-A -t $VIP:5211 -s rr
-a -t $VIP:5211 -r 198.19.1.13:5201 -m -w 1
-A -u $VIP:5211 -s rr
-a -u $VIP:5211 -r 198.19.1.13:5201 -m -w 1
-A -t $VIP:8211 -s rr
-a -t $VIP:8211 -r 198.19.1.13:8201 -m -w 1
-A -t $VIP:5221 -s rr
-a -t $VIP:5221 -r 198.18.0.12:5221 -i -w 1
-A -u $VIP:5221 -s rr
-a -u $VIP:5221 -r 198.18.0.12:5221 -i -w 1
-A -t $VIP:8221 -s rr
-a -t $VIP:8221 -r 198.18.0.12:8221 -i -w 1
-A -u $VIP:7201 -s rr
-a -u $VIP:7201 -r 198.18.0.11:7201 -g -w 1
-A -u $VIP:7211 -s rr
-a -u $VIP:7211 -r 198.19.1.13:7201 -m -w 1
-A -u $VIP:7221 -s rr
-a -u $VIP:7221 -r 198.18.0.12:7221 -i -w 1
RULES

# iperf3 servers bound to the address the client talks to (a UDP reply must leave from the address the client sent
# to; a server bound to 0.0.0.0 would answer from the host's own address, and the client's connected socket ignores
# that). NAT servers are bound to their own address: NAT delivers to it.
iperf() { local host=$1 bind=$2 port=$3; in_host "$host" iperf3 -s -D -B "$bind" -p "$port" --logfile "$WORK/iperf3-$host-$port.log"; }
iperf rs1 "$VIP" 5201
iperf rs1 198.18.0.200 5202
iperf rs3 198.19.1.13 5201
iperf rs4 198.19.1.14 5212
iperf rs2 "$VIP" 5221
iperf rs2 198.18.0.202 5222
# UDP echoes for the round-trip latency, on each path's iperf3 port + 2000 (NAT: rs3's on 7201, rs4's on 7212).
echo_on() { local host=$1 bind=$2 port=$3; in_host "$host" python3 "$ROOT/tools/lab/udp_echo.py" "$host" "$bind" "$port" > /dev/null & }
echo_on rs1 "$VIP" 7201
echo_on rs1 198.18.0.200 7202
echo_on rs3 198.19.1.13 7201
echo_on rs4 198.19.1.14 7212
echo_on rs2 "$VIP" 7221
echo_on rs2 198.18.0.202 7222
# A TCP server that accepts and closes at once, for connections per second (bounded by the client's count).
in_host rs1 python3 "$ROOT/tools/lab/acceptor.py" 8201 8202 &
in_host rs2 python3 "$ROOT/tools/lab/acceptor.py" 8221 8222 &
in_host rs3 python3 "$ROOT/tools/lab/acceptor.py" 8201 &
in_host rs4 python3 "$ROOT/tools/lab/acceptor.py" 8212 &
# rs2's IP-in-IP endpoint (user space where the kernel has no ipip module). TUNNEL_ARGS: more `udr node tunnel`
# options (e.g. TUNNEL_ARGS="--queues 2").
# shellcheck disable=SC2086
in_host rs2 "$UDR" node tunnel --vip "$VIP" --stats-interval 1 ${TUNNEL_ARGS:-} > "$WORK/tunnel.log" 2>&1 &

# UDR_ARGS: more `udr run` options for the measured udr (e.g. UDR_ARGS="--coalesce-usecs 100").
# shellcheck disable=SC2086
udr_start "$WORK/rules" --workers "$WORKERS" --interface eth1 --metrics "$METRICS" ${UDR_ARGS:-}
sleep 0.5

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# IPERF_ARGS: more iperf3 options for the TCP upload (e.g. "-P 4": four streams).
# shellcheck disable=SC2086
tcp_gbps() { in_host client iperf3 -c "$1" -p "$2" -t "$SECONDS_PER_RUN" ${IPERF_ARGS:-} -J | json "round(d['end']['sum_received']['bits_per_second']/1e9, 3)"; }
udp_kpps() { in_host client iperf3 -c "$1" -p "$2" -u -b 0 -l 64 -t "$SECONDS_PER_RUN" -J |
    json "round(d['end']['sum']['packets']*(100-d['end']['sum']['lost_percent'])/100/d['end']['sum']['seconds']/1e3, 1)"; }
cps() { in_host client python3 "$ROOT/tools/lab/connector.py" "$1" $(($2 + 3000)) "$SECONDS_PER_RUN"; }
# Median round trip of one UDP request at a time, in microseconds (lower is better: the ratio reads the other way).
lat() { in_host client python3 "$ROOT/tools/lab/client.py" rtt "$1" $(($2 + 2000)) 2000 | json "d['median_us']"; }

declare -A total
printf '%-6s %-4s %-26s %12s %12s\n' round mode measure udr kernel
for round in $(seq 1 "$ROUNDS"); do
    for mode in ${MODES//,/ }; do
        for measure in tcp udp cps lat; do
            case $measure in tcp) fn=tcp_gbps; label="TCP upload (Gbit/s)" ;; udp) fn=udp_kpps; label="UDP 64 B delivered (kpps)" ;;
                cps) fn=cps; label="TCP connections/s" ;; lat) fn=lat; label="UDP round trip (median µs)" ;; esac
            u=$($fn "${TARGET[$mode-udr]}" "${PORT[$mode-udr]}"); k=$($fn "${TARGET[$mode-kernel]}" "${PORT[$mode-kernel]}")
            total[$mode-$measure-udr]=$(python3 -c "print(${total[$mode-$measure-udr]:-0} + $u)")
            total[$mode-$measure-kernel]=$(python3 -c "print(${total[$mode-$measure-kernel]:-0} + $k)")
            printf '%-6s %-4s %-26s %12s %12s\n' "$round" "$mode" "$label" "$u" "$k"
        done
    done
done
echo
echo "udr/kernel ratio (mean of $ROUNDS rounds, $SECONDS_PER_RUN s each, udr --workers $WORKERS):"
CHART_DIR=bench
[ "$MODES" = dr,nat,tun ] || { CHART_DIR=artifacts/lab-bench; mkdir -p "$CHART_DIR"; }
printf 'mode\ttcp\tudp\tcps\tlat\n' > "$CHART_DIR/lab-bench.tsv"
for mode in ${MODES//,/ }; do
    row=${mode^^}
    for measure in tcp udp cps lat; do
        python3 -c "u=${total[$mode-$measure-udr]}; k=${total[$mode-$measure-kernel]}; print(f'  {\"$mode\":4} {\"$measure\":4} udr {u/$ROUNDS:10.2f}  kernel {k/$ROUNDS:10.2f}  ratio {u/k:5.2f}')"
        # The chart reads higher as better throughout: the round trip's ratio is turned over (kernel/udr).
        row+=$(python3 -c "u=${total[$mode-$measure-udr]}; k=${total[$mode-$measure-kernel]}; print(f'\t{(k/u if \"$measure\" == \"lat\" else u/k):.3f}')")
    done
    printf '%s\n' "$row" >> "$CHART_DIR/lab-bench.tsv"
done
if [ -n "$MODES" ]; then
    bench/lab-bench-chart.sh "$CHART_DIR/lab-bench.tsv" "$CHART_DIR/lab-bench.svg" \
        "bench/lab-bench.sh: $ROUNDS rounds of $SECONDS_PER_RUN s, udr --workers $WORKERS, $(date -u +%Y-%m-%d)"
fi
if [ "$METRICS_COST" -eq 1 ]; then
    # A scraper bounded in time (the run's length plus a second), a scrape a second; it counts what it fetched and
    # adds up the time each took.
    scraper() {
        in_host lb sh -c "end=\$((\$(date +%s) + $SECONDS_PER_RUN + 1)); n=0
            while [ \$(date +%s) -lt \$end ]; do
                curl -sf -o /dev/null -w '%{time_total} %{size_download}\\n' http://$METRICS/metrics >> $WORK/scrape-times && n=\$((n + 1)); sleep 1
            done
            echo \$n > $WORK/scrapes"
    }
    echo
    printf '%-6s %-34s %12s %12s %8s\n' round "DR UDP 64 B delivered (kpps)" unscraped scraped scrapes
    plain_total=0 scraped_total=0
    for round in $(seq 1 "$ROUNDS"); do
        plain=$(udp_kpps "${TARGET[dr-udr]}" "${PORT[dr-udr]}")
        scraper & scraper_pid=$!
        scraped=$(udp_kpps "${TARGET[dr-udr]}" "${PORT[dr-udr]}")
        wait "$scraper_pid"
        printf '%-6s %-34s %12s %12s %8s\n' "$round" "" "$plain" "$scraped" "$(cat "$WORK/scrapes")"
        plain_total=$(python3 -c "print($plain_total + $plain)"); scraped_total=$(python3 -c "print($scraped_total + $scraped)")
    done
    python3 -c "print(f'  scraped/unscraped {$scraped_total/$plain_total:5.3f} (mean of $ROUNDS rounds, $SECONDS_PER_RUN s each)')"
    python3 -c "import statistics as s; r=[l.split() for l in open('$WORK/scrape-times')]; t=[float(a) * 1000 for a, _ in r]
print(f'  one scrape: median {s.median(t):.1f} ms, max {max(t):.1f} ms, {int(r[-1][1])} bytes ({len(t)} scrapes)')"
fi
if [ -n "$PROFILE" ]; then
    echo
    echo "where the CPU went during $PROFILE's udr TCP upload (3 s of the whole machine), by process:"
    perf record -q -a -g -F 999 -o "$WORK/perf.data" -- sleep 3 > /dev/null 2>&1 &
    sampler=$!
    tcp_gbps "${TARGET[$PROFILE-udr]}" "${PORT[$PROFILE-udr]}" > /dev/null
    wait "$sampler" || true
    # (|| true: head closing the pipe early must not end the run under pipefail)
    perf report -i "$WORK/perf.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -12 || true
    echo "by process and symbol:"
    perf report -i "$WORK/perf.data" --no-children --sort comm,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 || true
fi
case ",$MODES,$PROFILE," in *,tun,*) printf 'tunnel endpoint %s\n' "$(grep '^counters:' "$WORK/tunnel.log" | tail -1)" ;; esac
printf 'udr '; udr_stop
