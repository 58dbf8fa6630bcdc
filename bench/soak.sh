#!/usr/bin/env bash
# The soak (issue 13): mixed DR, NAT and IP-in-IP traffic for DURATION seconds (default 600) while the rules change
# every second (a weight edit through udr adm), the rules file is reloaded (SIGHUP) every 10 s and a NAT real server
# flaps (removed and added back, as a health checker does, every 5 s). Every download is checked against the
# servers' files; udr's resident memory and descriptors are sampled every 10 s. Not part of the test suite.
#
#   bench/soak.sh [DURATION]      (root; namespaces udrsoak-* removed on every exit path)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrsoak
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
DURATION=${1:-600}
VIP=198.18.0.100
[ "$(id -u)" -eq 0 ] || { echo "soak: needs root" >&2; exit 2; }
[ -x "$UDR" ] || { echo "soak: $UDR missing (./build.sh build)" >&2; exit 2; }
# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# Each server's own 1 MiB file: a download's hash says it arrived intact, whoever sent it.
for host in rs1 rs2 rs3 rs4; do
    mkdir -p "$WORK/$host"
    head -c 1048576 /dev/urandom > "$WORK/$host/f.bin"
    sha256sum "$WORK/$host/f.bin" | cut -d' ' -f1 >> "$WORK/hashes"
done
serve() { local host=$1 bind=$2; in_host "$host" python3 -m http.server 80 --bind "$bind" --directory "$WORK/$host" > /dev/null 2>&1 & }
serve rs1 "$VIP"
serve rs2 "$VIP"
serve rs3 198.19.1.13
serve rs4 198.19.1.14
# http.server looks its address up in DNS before it listens; the NAT servers' lookups wait for a resolver they cannot reach.
for host in rs1 rs2 rs3 rs4; do
    for _ in $(seq 1 300); do in_host "$host" ss -ltn 'sport = :80' | grep -q LISTEN && break; sleep 0.1; done
done
in_host rs2 "$UDR" node tunnel --vip "$VIP" > "$WORK/tunnel.log" 2>&1 &

# DR to rs1 and IP-in-IP to rs2 in one service; NAT to rs3 and rs4 in another.
cat > "$WORK/rules" <<RULES
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r 198.18.0.11:80 -g -w 1
-a -t $VIP:80 -r 198.18.0.12:80 -i -w 1
-A -t $VIP:8080 -s wlc
-a -t $VIP:8080 -r 198.19.1.13:80 -m -w 1
-a -t $VIP:8080 -r 198.19.1.14:80 -m -w 1
RULES
udr_start "$WORK/rules" --workers 2 --interface eth1
adm() { in_host lb "$UDR" adm --control "$WORK/udr.sock" "$@"; }
sample() { echo "$(awk '/VmRSS/ { print $2 }' "/proc/$UDR_PID/status") $(ls "/proc/$UDR_PID/fd" | wc -l)"; }
sleep 2

in_host client python3 tools/lab/client.py soak "$DURATION" "$WORK/hashes" 80 8080 > "$WORK/client.json" &
CLIENT=$!
start=$(date +%s)
echo "second rss_kib fds"
for second in $(seq 1 "$DURATION"); do
    sleep 1
    adm -e -t "$VIP:80" -r 198.18.0.11:80 -g -w $((1 + second % 3)) > /dev/null
    if [ $((second % 10)) -eq 5 ]; then adm -d -t "$VIP:8080" -r 198.19.1.14:80 > /dev/null; fi
    if [ $((second % 10)) -eq 0 ]; then
        adm -a -t "$VIP:8080" -r 198.19.1.14:80 -m -w 1 > /dev/null
        kill -HUP "$UDR_PID" # the file as written: the rules above, weights back to 1
        echo "$second $(sample)"
    fi
    [ $(($(date +%s) - start)) -lt "$DURATION" ] || break
done
wait "$CLIENT"
echo "downloads per port: $(cat "$WORK/client.json")"
adm -L -n --stats
printf 'udr '; udr_stop
grep -c "rules applied" "$WORK/udr.log" | sed 's/^/reloads and edits applied: /'
