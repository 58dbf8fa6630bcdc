#!/usr/bin/env bash
# Memory as configured (issue 13): the daemon's resident memory with a million established connections, against the
# bound it should stay within: the connection tables (allocated at start, their pages filled as connections come)
# plus the daemon's fixed part. A million DR connections are made by tcpreplay from the lab's client (a SYN and an
# ACK each, tools/lab/flood.py established, sources in 198.19.0.0/16 that nothing routes back to).
#
#   bench/memory-bench.sh [CONNECTIONS]     (root; default 1000000; namespaces udrmem-* removed on every exit)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrmem
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
CONNECTIONS=${1:-1000000}
VIP=198.18.0.100
[ "$(id -u)" -eq 0 ] || { echo "memory bench: needs root" >&2; exit 2; }
command -v tcpreplay >/dev/null || { echo "memory bench: tcpreplay missing (apt-get install tcpreplay)" >&2; exit 2; }
[ -x "$UDR" ] || { echo "memory bench: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

cat > "$WORK/rules" <<RULES
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r 198.18.0.11:80 -g -w 1
-a -t $VIP:80 -r 198.18.0.12:80 -g -w 1
RULES
rss() { awk '/VmRSS/ { print $2 }' "/proc/$UDR_PID/status"; }
# How much of it is in transparent huge pages (the tables are advised MADV_HUGEPAGE: src/UserspaceDr.Linux/Host/HugePages.cs).
huge() { awk '/AnonHugePages/ { print $2 }' "/proc/$UDR_PID/smaps_rollup"; }
udr_start "$WORK/rules" --workers 2
sleep 3 # past start-up (JIT, the first housekeeping sweeps)
before=$(rss)
lb_mac=$(in_host lb cat /sys/class/net/eth0/address)
client_mac=$(in_host client cat /sys/class/net/eth0/address)
python3 tools/lab/flood.py "$WORK/established.pcap" "$CONNECTIONS" established 198.19.0.0/16 "$VIP" 80 "$client_mac" "$lb_mac"
in_host client tcpreplay -i eth0 --pps=100000 "$WORK/established.pcap" | grep -E "Actual|Rated"
sleep 1
after=$(rss)
listing=$(in_host lb "$UDR" adm --control "$WORK/udr.sock" -L -n)
active=$(echo "$listing" | awk '/->/ { sum += $5 } END { print sum }')
inactive=$(echo "$listing" | awk '/->/ { sum += $6 } END { print sum }')
# Each worker's table: capacity = max-connections / workers, slots = the next power of two above 1.5 × capacity,
# 64 bytes each (Connection), allocated at start; the kernel backs a page once it is written.
table_mib=$(python3 -c "c=(1<<20)//2; s=1<<((c+c//2+1)-1).bit_length(); print(2*s*64/2**20)")
echo "connections: $active active, $inactive inactive (of $CONNECTIONS made)"
echo "resident: $((before / 1024)) MiB at start, $((after / 1024)) MiB with them: +$(((after - before) / 1024)) MiB"
echo "bound: the tables, $table_mib MiB (2 workers × slots × 64 B), plus the fixed part at start"
echo "in transparent huge pages: $(($(huge) / 1024)) MiB"
[ "$CONNECTIONS" -gt 100 ] || in_host lb "$UDR" adm --control "$WORK/udr.sock" -L -c -n
printf 'udr '; udr_stop
