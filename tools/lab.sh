#!/usr/bin/env bash
# The one network lab of UserspaceDr: tests, demo and bench all build on it.
#
#   tools/lab.sh up   PREFIX            create the lab (fails, and cleans up, if any part cannot be made)
#   tools/lab.sh up   PREFIX --bare-servers
#                                       the same, but rs1/rs2 stay as a fresh host is: no VIP on lo, default
#                                       sysctls (for testing `udr node setup`, which makes them real servers);
#                                       rs3/rs4 are the same either way (NAT servers need no VIP)
#   tools/lab.sh up   PREFIX --pair     two balancers for failover: lb and lb2, neither holding the VIP or the NAT
#                                       servers' gateway (keepalived's VRRP moves both between them)
#   tools/lab.sh up   PREFIX --ecmp     three balancers behind a router (scale-out): lb, lb2, lb3 on the public
#                                       segment, none holding the VIP; the client on a segment of its own behind rt,
#                                       which routes the VIP by ECMP to whichever balancers announce it (BGP)
#   tools/lab.sh down PREFIX            remove everything named PREFIX-*; never fails, also when partly created
#   tools/lab.sh exec PREFIX HOST cmd…  run a command inside a host (HOST = client|lb|lb2|lb3|rt|rs1|rs2|rs3|rs4|sw)
#
# Topology: two L2 segments, both bridges in PREFIX-sw (one port per host link, named after the host).
#
#   public segment, br0 (DR and TUN need client, balancer and real servers on one link):
#   PREFIX-client eth0 198.18.0.1/24  ─┐
#   PREFIX-lb     eth0 198.18.0.2/24  ─┤   port "lb"
#                      + VIP /32       │   VIP 198.18.0.100: the balancer owns it (its kernel answers ARP/ping
#   PREFIX-rs1    eth0 198.18.0.11/24 ─┤   for it, as in LVS); rs1/rs2 hold it on lo with ARP hidden
#   PREFIX-rs2    eth0 198.18.0.12/24 ─┘   (DR and TUN real servers; for TUN run `udr node tunnel` in them).
#
#   private segment, br1 (NAT: the real servers reach the client only through the balancer):
#   PREFIX-lb     eth1 198.19.1.1/24  ─┐   port "lbp"
#   PREFIX-rs3    eth0 198.19.1.13/24 ─┤   NAT real servers: default route via 198.19.1.1, no VIP; they answer
#   PREFIX-rs4    eth0 198.19.1.14/24 ─┘   from their own address and udr rewrites the replies.
#
#   With --pair, a second balancer and no fixed owner of the shared addresses (LVS's two-director setup):
#   PREFIX-lb     eth0 198.18.0.2/24, eth1 198.19.1.2/24    neither holds the VIP nor 198.19.1.1: keepalived's VRRP
#   PREFIX-lb2    eth0 198.18.0.3/24, eth1 198.19.1.3/24    instance puts both on the master (ports "lb2", "lb2p").
#
#   With --ecmp, a router between the client and the balancers (the scale-out of issue 15):
#   PREFIX-client eth0 198.18.2.1/24 (and .2, .3, .4: several clients) on br2, default via 198.18.2.254
#   PREFIX-rt     eth0 198.18.2.254/24 on br2, eth1 198.18.0.254/24 on br0 (port "rt"): forwards, hashes multipath
#                 routes by layer 4 (fib_multipath_hash_policy=1); its BIRD learns the VIP from the balancers by BGP
#   PREFIX-lb, lb2, lb3  eth0 198.18.0.2, .3, .4/24: none holds the VIP; each one's BIRD announces it while its udr can
#                 serve it (udr run --announce)
#   rs1, rs2      as always, with their default route via 198.18.0.254, so their answers reach the client via rt
#
#   The balancer's kernel does not forward (net.ipv4.ip_forward=0 in PREFIX-lb): udr alone moves packets between
#   the segments, so a test that expects the kernel to stay quiet means it.
#
# Rules that protect the machine: everything lives in namespaces named PREFIX-*; the root namespace's
# interfaces, routes and sysctls are never touched (links are created from inside PREFIX-sw and moved
# straight into their host namespace); addresses come only from 198.18.0.0/15.
set -euo pipefail

readonly HOSTS=(client lb rs1 rs2 rs3 rs4)
readonly VIP=198.18.0.100
readonly LB_PRIVATE=198.19.1.1
# --pair: each balancer's own private address (the gateway 198.19.1.1 is then VRRP's).
declare -A PAIR_PRIVATE=([lb]=198.19.1.2/24 [lb2]=198.19.1.3/24)
# Each host's eth0: its address and the bridge it hangs on (lb2 only with --pair).
declare -A ADDRESS=([client]=198.18.0.1/24 [lb]=198.18.0.2/24 [lb2]=198.18.0.3/24 [lb3]=198.18.0.4/24 [rs1]=198.18.0.11/24
                    [rs2]=198.18.0.12/24 [rs3]=198.19.1.13/24 [rs4]=198.19.1.14/24 [rt]=198.18.2.254/24)
declare -A BRIDGE=([client]=br0 [lb]=br0 [lb2]=br0 [lb3]=br0 [rs1]=br0 [rs2]=br0 [rs3]=br1 [rs4]=br1 [rt]=br2)
# --ecmp: the client's own segment behind the router, and the router's leg on the public segment.
readonly ECMP_CLIENT=198.18.2.1/24 ECMP_CLIENT_GATEWAY=198.18.2.254 ECMP_ROUTER_PUBLIC=198.18.0.254/24 ECMP_GATEWAY=198.18.0.254

usage() {
    echo "usage: $0 up PREFIX [--bare-servers | --pair | --ecmp] | down PREFIX | exec PREFIX HOST cmd..." >    echo "usage: $0 up PREFIX [--bare-servers | --pair] | down PREFIX | exec PREFIX HOST cmd..." >&22
    exit 2
}

# Namespace names are PREFIX-client at most (17 chars with a 10-char prefix); interface names never carry
# the prefix, so the 15-char IFNAMSIZ limit is not a concern. Lowercase letters and digits only, so that a
# prefix can never reach outside its own names (no dashes, dots, globs or slashes).
validate_prefix() {
    [[ "${1:-}" =~ ^[a-z][a-z0-9]{0,9}$ ]] || {
        echo "lab: invalid PREFIX '${1:-}' (1-10 chars: a lowercase letter, then lowercase letters or digits)" >&2
        exit 2
    }
}

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

lab_down() {
    local prefix=$1 ns
    for ns in "$prefix-client" "$prefix-lb" "$prefix-lb2" "$prefix-lb3" "$prefix-rt" "$prefix-rs1" "$prefix-rs2" "$prefix-rs3" "$prefix-rs4" "$prefix-sw"; do
        [ -e "/var/run/netns/$ns" ] || continue
        # Processes left running inside a lab host were started by the lab's users; end them by pid so the
        # namespace really goes away (a namespace lives on while a process is still in it).
        local pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -TERM $pids 2>/dev/null || true
            sleep 0.2
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            # shellcheck disable=SC2086
            [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        fi
        # Deleting a namespace destroys its veth ends, and with them their peers in PREFIX-sw.
        ip netns delete "$ns" 2>/dev/null || true
    done
    return 0
}

lab_up() {
    local prefix=$1 bare=${2:-0} pair=${3:-0} ecmp=${4:-0} host ns bridge
    for host in "${HOSTS[@]}" lb2 lb3 rt sw; do
        if [ -e "/var/run/netns/$prefix-$host" ]; then
            echo "lab: namespace $prefix-$host already exists (run: $0 down $prefix)" >&2
            exit 1
        fi
    done
    # Any failure from here on (set -e exits, also from inside in_ns) or an interrupt removes whatever was already
    # made: the EXIT trap runs on every way out and cleans up unless the lab was completed.
    LAB_UP_PREFIX=$prefix
    LAB_UP_COMPLETE=0
    trap '[ "$LAB_UP_COMPLETE" = 1 ] || { echo "lab: up failed, removing $LAB_UP_PREFIX-*" >&2; lab_down "$LAB_UP_PREFIX"; }' EXIT
    trap 'exit 130' INT TERM

    ip netns add "$prefix-sw"
    in_ns "$prefix-sw" ip link set lo up
    # STP off (the default) means ports forward at once; IPv6 off keeps the segments quiet (no router
    # solicitations, MLD or DAD), so tests can count frames exactly.
    in_ns "$prefix-sw" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # A plain L2 switch: where br_netfilter is loaded (as on most container hosts), bridged IPv4 goes through
    # iptables and frames with a bad header are dropped on the switch, before any host sees them.
    if in_ns "$prefix-sw" sysctl -n net.bridge.bridge-nf-call-iptables >/dev/null 2>&1; then
        in_ns "$prefix-sw" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
            net.bridge.bridge-nf-call-arptables=0
    fi
    for bridge in br0 br1 br2; do
        in_ns "$prefix-sw" ip link add "$bridge" type bridge
        in_ns "$prefix-sw" ip link set "$bridge" up
    done

    local hosts=("${HOSTS[@]}")
    [ "$pair" = 0 ] || hosts+=(lb2)
    if [ "$ecmp" = 1 ]; then
        hosts+=(lb2 lb3 rt)
        ADDRESS[client]=$ECMP_CLIENT BRIDGE[client]=br2
    fi
    for host in "${hosts[@]}"; do
        ns="$prefix-$host"
        ip netns add "$ns"
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        in_ns "$ns" ip link set lo up
        # Created inside PREFIX-sw; the host end goes straight into its namespace as eth0.
        in_ns "$prefix-sw" ip link add "$host" type veth peer name eth0 netns "$ns"
        in_ns "$prefix-sw" ip link set "$host" master "${BRIDGE[$host]}" up
        in_ns "$ns" ip addr add "${ADDRESS[$host]}" dev eth0
        in_ns "$ns" ip link set eth0 up
    done

    if [ "$ecmp" = 1 ]; then
        # The router: the client's gateway, a leg on the public segment, layer-4 multipath hashing. The balancers'
        # kernels neither hold the VIP nor forward; the real servers answer through the router.
        in_ns "$prefix-sw" ip link add rtp type veth peer name eth1 netns "$prefix-rt"
        in_ns "$prefix-sw" ip link set rtp master br0 up
        in_ns "$prefix-rt" ip addr add "$ECMP_ROUTER_PUBLIC" dev eth1
        in_ns "$prefix-rt" ip link set eth1 up
        in_ns "$prefix-rt" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
        in_ns "$prefix-client" ip route add default via "$ECMP_CLIENT_GATEWAY" dev eth0
        for host in 2 3 4; do
            in_ns "$prefix-client" ip addr add "198.18.2.$host/24" dev eth0
        done
        for host in lb lb2 lb3; do
            in_ns "$prefix-$host" sysctl -qw net.ipv4.ip_forward=0
        done
        for host in rs1 rs2; do
            in_ns "$prefix-$host" ip route add default via "$ECMP_GATEWAY" dev eth0
        done
    elif [ "$pair" = 0 ]; then
        # The balancer owns the VIP: its kernel answers ARP and ping for it, exactly as with LVS.
        in_ns "$prefix-lb" ip addr add "$VIP/32" dev eth0
        balancer_private_leg "$prefix" lb lbp "$LB_PRIVATE/24"
    else
        # Two balancers, the second beside the first on both segments; the shared addresses are keepalived's.
        balancer_private_leg "$prefix" lb lbp "${PAIR_PRIVATE[lb]}"
        balancer_private_leg "$prefix" lb2 lb2p "${PAIR_PRIVATE[lb2]}"
    fi

    # NAT real servers: everything beyond their segment goes through the balancer.
    for host in rs3 rs4; do
        in_ns "$prefix-$host" ip route add default via "$LB_PRIVATE" dev eth0
    done

    # Real servers accept traffic for the VIP but must never answer ARP for it (LVS-DR's ARP problem).
    # With --bare-servers they are left as fresh hosts, for `udr node setup` to prepare.
    local servers=(rs1 rs2)
    [ "$bare" = 0 ] || servers=()
    for host in "${servers[@]}"; do
        ns="$prefix-$host"
        in_ns "$ns" ip addr add "$VIP/32" dev lo
        in_ns "$ns" sysctl -qw \
            net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
            net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
            net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.lo.rp_filter=0
    done
    LAB_UP_COMPLETE=1
}

# balancer_private_leg PREFIX HOST PORT ADDRESS: a balancer's eth1 on the private segment. Its kernel must not route
# between the two segments (udr does NAT).
balancer_private_leg() {
    local prefix=$1 host=$2 port=$3 address=$4
    in_ns "$prefix-sw" ip link add "$port" type veth peer name eth1 netns "$prefix-$host"
    in_ns "$prefix-sw" ip link set "$port" master br1 up
    in_ns "$prefix-$host" ip addr add "$address" dev eth1
    in_ns "$prefix-$host" ip link set eth1 up
    in_ns "$prefix-$host" sysctl -qw net.ipv4.ip_forward=0
}

cmd=${1:-}
case "$cmd" in
    up)
        [ $# -eq 2 ] || { [ $# -eq 3 ] && { [ "$3" = --bare-servers ] || [ "$3" = --pair ] || [ "$3" = --ecmp ]; }; } || usage
        validate_prefix "$2"
        lab_up "$2" "$([ "${3:-}" = --bare-servers ] && echo 1 || echo 0)" "$([ "${3:-}" = --pair ] && echo 1 || echo 0)" \
            "$([ "${3:-}" = --ecmp ] && echo 1 || echo 0)"
        ;;
    down)
        [ $# -eq 2 ] || usage
        validate_prefix "$2"
        lab_down "$2"
        ;;
    exec)
        [ $# -ge 4 ] || usage
        validate_prefix "$2"
        case "$3" in
            client | lb | lb2 | lb3 | rt | rs1 | rs2 | rs3 | rs4 | sw) ;;
            *) echo "lab: unknown host '$3' (client|lb|lb2|lb3|rt|rs1|rs2|rs3|rs4|sw)" >&2; exit 2 ;;
        esac
        ns="$2-$3"
        shift 3
        # SIGINT and SIGQUIT back to their defaults: a runner started in the background by a non-interactive shell
        # ignores both, its children inherit that, and .NET programs then never see SIGINT.
        exec env --default-signal=INT,QUIT ip netns exec "$ns" "$@"
        ;;
    *) usage ;;
esac
