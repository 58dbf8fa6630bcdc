# Sourced by the benches that run the C baseline beside udr (bench/cpu-bench.sh, bench/scaling-bench.sh), after
# tools/lab-session.sh and with VIP and PORT set: reads the lab hosts' MACs (CLIENT_MAC, LB_MAC, RS1_MAC, RS2_MAC),
# writes udr's rules for the same job ($WORK/rules: rr over rs1 and rs2, direct routing), builds
# bench/cforward/cforward.c into $WORK, starts and stops it in the balancer with the guard udr would install, and ends
# it on every exit path with the lab.

mac() { in_host "$1" cat /sys/class/net/eth0/address; }
CLIENT_MAC=$(mac client) LB_MAC=$(mac lb) RS1_MAC=$(mac rs1) RS2_MAC=$(mac rs2)
cat > "$WORK/rules" <<RULES
-A -u $VIP:$PORT -s rr
-a -u $VIP:$PORT -r 198.18.0.11:$PORT -g -w 1
-a -u $VIP:$PORT -r 198.18.0.12:$PORT -g -w 1
RULES

cc -O2 -Wall -Wextra -pthread -o "$WORK/cforward" bench/cforward/cforward.c
C_PID=
trap '[ -n "$C_PID" ] && kill -TERM "$C_PID" 2>/dev/null; lab_session_cleanup' EXIT INT TERM

# cforward_start SECONDS [THREADS]: the forwarder in the balancer, bounded to SECONDS; sets C_PID.
cforward_start() {
    # What udr's nftables guard does for it: the balancer's kernel never sees the VIP's traffic.
    in_host lb nft -f - <<NFT
table netdev udr_cforward_guard {
    chain ingress {
        type filter hook ingress device "eth0" priority 0;
        ip daddr $VIP udp dport $PORT drop
    }
}
NFT
    ip netns exec "$PREFIX-lb" "$WORK/cforward" eth0 "$VIP" "$PORT" "$RS1_MAC" "$RS2_MAC" "$1" "${2:-1}" > "$WORK/cforward.log" 2>&1 &
    C_PID=$!
    sleep 0.5
}

cforward_stop() {
    kill -TERM "$C_PID" 2>/dev/null; wait "$C_PID" 2>/dev/null || true
    C_PID=
    in_host lb nft delete table netdev udr_cforward_guard
}
