#!/usr/bin/env bash
# How many flows a router moves when a balancer joins or leaves an ECMP group (issue 15, item 3): Linux's plain
# multipath route (what BIRD's `merge paths on` installs) against a resilient nexthop group (`ip nexthop ... type
# resilient`), both hashed by layer 4 (net.ipv4.fib_multipath_hash_policy=1). One namespace, no traffic: the route
# each of FLOWS TCP flows (source ports 10000 on, to VIP:7000) takes is asked of the kernel (`ip route get`, batched)
# before and after each change. Join: three next hops become four, the share of all flows that moved. Leave: four
# become three (the first or the third leaving), the share of the survivors' flows that moved (the leaver's must).
#
#   bench/ecmp-rehash.sh [FLOWS]        (root; default 20000 flows)
# Bounded: one namespace, udrrehash, removed on every exit path.
set -euo pipefail
FLOWS=${1:-20000}
NS=udrrehash
VIP=198.18.0.100
[ "$(id -u)" -eq 0 ] || { echo "ecmp rehash: needs root" >&2; exit 2; }
WORK=$(mktemp -d)
cleanup() { ip netns delete "$NS" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
in_ns() { ip netns exec "$NS" "$@"; }
ip netns add "$NS"
in_ns sysctl -qw net.ipv4.fib_multipath_hash_policy=1
in_ns ip link set lo up
in_ns ip link add d0 type veth peer name d0p
in_ns ip addr add 198.18.0.254/24 dev d0
in_ns ip link set d0 up
in_ns ip link set d0p up
in_ns ip addr add 198.18.2.1/32 dev lo
for i in 2 3 4 5; do in_ns ip nexthop add id "$i" via "198.18.0.$i" dev d0; done
seq 10000 $((10000 + FLOWS - 1)) | awk -v vip=$VIP '{ printf "route get %s from 198.18.2.1 ipproto tcp sport %d dport 7000\n", vip, $1 }' > "$WORK/batch"

# snapshot NAME: the next hop of every flow, one per line, in flow order.
snapshot() { in_ns ip -batch "$WORK/batch" | awk '/ via / { for (i = 1; i <= NF; i++) if ($i == "via") print $(i + 1) }' > "$WORK/$1"; }
# moved BEFORE AFTER [SURVIVORS...]: the share of flows (of those on a survivor in BEFORE, when given) whose next hop changed.
moved() {
    local before=$1 after=$2; shift 2
    paste "$WORK/$before" "$WORK/$after" | awk -v survivors="$*" '
        BEGIN { n = split(survivors, s, " "); for (i = 1; i <= n; i++) keep[s[i]] = 1 }
        n == 0 || ($1 in keep) { total++; if ($1 != $2) changed++ }
        END { printf "%.3f", changed / total }'
}
plain() { local args=() hop; for hop in "$@"; do args+=(nexthop via "198.18.0.$hop" dev d0); done; in_ns ip route replace "$VIP/32" "${args[@]}"; }
resilient() { in_ns ip nexthop replace id 10 group "$(IFS=/; echo "$*")" type resilient buckets 512 idle_timer 0; }

plain 2 3 4; snapshot plain3
plain 2 3 4 5; snapshot plain4
plain 3 4 5; snapshot plain4first
plain 2 3 5; snapshot plain4third
in_ns ip route del "$VIP/32"
in_ns ip nexthop add id 10 group 2/3/4 type resilient buckets 512 idle_timer 0
in_ns ip route add "$VIP/32" nhid 10
snapshot res3
resilient 2 3 4 5; snapshot res4
resilient 3 4 5; snapshot res4first
resilient 2 3 4 5; snapshot res4again
resilient 2 3 5; snapshot res4third

printf '%-32s %8s %18s %18s\n' "$FLOWS flows, layer-4 hash" "join" "leave (1st of 4)" "leave (3rd of 4)"
printf '%-32s %8s %18s %18s\n' "plain multipath (BIRD's)" "$(moved plain3 plain4)" \
    "$(moved plain4 plain4first 198.18.0.3 198.18.0.4 198.18.0.5)" "$(moved plain4 plain4third 198.18.0.2 198.18.0.3 198.18.0.5)"
printf '%-32s %8s %18s %18s\n' "resilient group (512 buckets)" "$(moved res3 res4)" \
    "$(moved res4 res4first 198.18.0.3 198.18.0.4 198.18.0.5)" "$(moved res4again res4third 198.18.0.2 198.18.0.3 198.18.0.5)"
echo "join: share of all flows that moved when a fourth next hop came to three; leave: share of the three survivors' flows that moved when one of four went"
