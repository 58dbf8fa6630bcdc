#!/usr/bin/env bash
# ./build.sh demo: bring up the namespace lab, run udr in front of real HTTP servers, and show it balancing with
# all three forwarding methods in one service.
#
#   client 198.18.0.1 ──▶ VIP 198.18.0.100:80 on lb (udr, DR, wrr 3:1) ──▶ rs1 198.18.0.11 / rs2 198.18.0.12
#                                                                        (replies go straight to the client)
#   then one service, rr:  -g rs1 (DR) · -i rs2 (IP-in-IP, rs2 runs `udr node tunnel`) · -m rs3 198.19.1.13
#                          (NAT, on the private segment behind lb's eth1; its replies come back through udr)
#
# Everything lives in namespaces named udrdemo-*; all of it (udr, servers, namespaces) is removed on exit, also on
# failure or Ctrl-C. Set DEMO_HOLD=1 to keep the lab up until Ctrl-C and try it yourself (commands are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PREFIX=udrdemo
# UDR names another udr to run (e.g. an installed one: UDR=/usr/sbin/udr).
UDR="${UDR:-$ROOT/artifacts/udr/udr}"
VIP=198.18.0.100

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (network namespaces, raw sockets)" >&2; exit 2; }
[ -x "$UDR" ] || { echo "demo: $UDR missing (run ./build.sh build)" >&2; exit 2; }

# shellcheck source=tools/lab-session.sh
. tools/lab-session.sh
lab_session_up

# Real servers: an HTTP server bound to the VIP (so replies leave from the VIP), answering with its name.
for rs in rs1 rs2; do
    mkdir -p "$WORK/$rs"
    echo "$rs" > "$WORK/$rs/index.html"
    head -c 10485760 /dev/zero | tr '\0' 'u' > "$WORK/$rs/10MiB"
    (cd "$WORK/$rs" && exec ip netns exec "$PREFIX-$rs" python3 -m http.server 80 --bind "$VIP" >/dev/null 2>&1) &
done

cat > "$WORK/rules" <<RULES
-A -t $VIP:80 -s wrr
-a -t $VIP:80 -r 198.18.0.11:80 -g -w 3
-a -t $VIP:80 -r 198.18.0.12:80 -g -w 1
RULES
echo "== rules (ipvsadm save syntax)"; cat "$WORK/rules"

udr_start "$WORK/rules" --workers 2
for _ in $(seq 1 50); do in_host client curl -s -m 1 "http://$VIP/" >/dev/null && break; sleep 0.1; done
echo "== udr log"; cat "$WORK/udr.log"

echo "== 40 fresh connections to http://$VIP/ (wrr 3:1)"
for _ in $(seq 1 40); do in_host client curl -s -m 2 "http://$VIP/" || echo "(request failed)"; done | sort | uniq -c

echo "== 10 MiB download through the VIP"
expected=$(sha256sum "$WORK/rs1/10MiB" | cut -d' ' -f1)
got=$(in_host client curl -s -m 30 "http://$VIP/10MiB" | sha256sum | cut -d' ' -f1)
[ "$got" = "$expected" ] && echo "intact (sha256 $got)" || { echo "CORRUPT: $got != $expected"; exit 1; }

echo "== ipvsadm's view, from the running daemon (udr adm -L -n --stats, then -L -n -c | head)"
"$UDR" adm --control "$WORK/udr.sock" -L -n --stats
"$UDR" adm --control "$WORK/udr.sock" -L -n -c | head -5

echo "== the balancer's kernel stays out of the way (nftables netdev ingress, installed by udr)"
in_host lb nft list ruleset
echo "== udr exit"; udr_stop

echo
echo "== one service, three forwarding methods: DR to rs1, IP-in-IP to rs2, NAT to rs3 (private segment, eth1)"
mkdir -p "$WORK/rs3"
echo rs3 > "$WORK/rs3/index.html"
(cd "$WORK/rs3" && exec ip netns exec "$PREFIX-rs3" python3 -m http.server 80 --bind 198.19.1.13 >/dev/null 2>&1) &
in_host rs2 "$UDR" node tunnel --vip "$VIP" > "$WORK/tunnel.log" 2>&1 &
# Both must be up before the first request: a SYN to a port nobody listens on yet is answered with RST.
for _ in $(seq 1 100); do
    in_host rs3 ss -Hltn 'sport = :80' | grep -q . && grep -q '^ready:' "$WORK/tunnel.log" && break
    sleep 0.1
done
cat > "$WORK/rules" <<RULES
-A -t $VIP:80 -s rr
-a -t $VIP:80 -r 198.18.0.11:80 -g -w 1
-a -t $VIP:80 -r 198.18.0.12:80 -i -w 1
-a -t $VIP:80 -r 198.19.1.13:80 -m -w 1
RULES
cat "$WORK/rules"
udr_start "$WORK/rules" --workers 2 --interface eth1
for _ in $(seq 1 50); do in_host client curl -s -m 1 "http://$VIP/" >/dev/null && break; sleep 0.1; done
echo "== 30 fresh connections (rr over the three)"
for _ in $(seq 1 30); do in_host client curl -s -m 2 "http://$VIP/" || echo "(request failed)"; done | sort | uniq -c
"$UDR" adm --control "$WORK/udr.sock" -L -n --stats

if [ "${DEMO_HOLD:-0}" = 1 ]; then
    echo "== lab is up. Try:  ip netns exec $PREFIX-client curl http://$VIP/"
    echo "                    $UDR adm --control $WORK/udr.sock -L -n      (Ctrl-C ends the demo)"
    wait "$UDR_PID"
fi
echo "== udr exit"; udr_stop
echo "== rs2's tunnel endpoint"; cat "$WORK/tunnel.log"
