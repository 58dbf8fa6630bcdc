using UserspaceDr.Core.Services;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// What the receive side takes in for a rule set: frames to a VIP (either family), frames from a NAT real server of
/// either family (its replies and ICMP errors), and ICMP to the balancer's own addresses. Built at control time; the kernel filters by it.
/// </summary>
public sealed record TrafficSelection(IReadOnlyList<uint> VirtualAddresses, IReadOnlyList<uint> NatServers, IReadOnlyList<uint> OwnAddresses)
{
    /// <summary>The IPv6 VIPs (and with them, Neighbor Solicitations).</summary>
    public IReadOnlyList<UInt128> Ipv6VirtualAddresses { get; init; } = [];

    /// <summary>The IPv6 NAT real servers: their replies and ICMPv6 errors.</summary>
    public IReadOnlyList<UInt128> Ipv6NatServers { get; init; } = [];

    /// <summary>
    /// The IPv4 GUE and GRE real servers (address, 17 with the GUE port or 47 with 0): a router's ICMP error about a
    /// packet udr encapsulated to one of them is udr's. The AF_XDP program needs them to take exactly those errors.
    /// </summary>
    public IReadOnlyList<(uint Address, byte Protocol, ushort Port)> TunnelServers { get; init; } = [];

    /// <summary>
    /// The selection for <paramref name="rules"/>; with <paramref name="standby"/> (IPVS's backup_only while a backup sync
    /// daemon runs) no service traffic at all: the kernel's socket filter keeps VIP frames and NAT replies from the
    /// workers, so a backup never forwards (a DR or TUN backup that forwards loops traffic), at no cost per frame.
    /// </summary>
    public static TrafficSelection From(RuleSet rules, IEnumerable<uint> ownAddresses, bool standby = false)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(ownAddresses);
        return new TrafficSelection(standby ? [] : rules.VirtualAddresses.ToArray(), standby ? [] : [.. RuleSetTraffic.NatServers(rules.Spec).Order()],
            [.. ownAddresses.Distinct().Order()])
        {
            Ipv6VirtualAddresses = standby ? [] : [.. rules.Ipv6VirtualAddresses.ToArray().Order()],
            Ipv6NatServers = standby ? [] : [.. RuleSetTraffic.Ipv6NatServers(rules.Spec).Order()],
            TunnelServers = standby ? [] : [.. RuleSetTraffic.TunnelServers(rules.Spec)],
        };
    }

    /// <summary>The AF_PACKET socket filter for this selection.</summary>
    public ClassicBpfProgram SocketFilter() => ServiceTrafficFilter.Build(VirtualAddresses, [], NatServers, OwnAddresses, Ipv6VirtualAddresses, Ipv6NatServers);

    public bool SameAs(TrafficSelection other) =>
        other is not null && VirtualAddresses.SequenceEqual(other.VirtualAddresses) && NatServers.SequenceEqual(other.NatServers) &&
        OwnAddresses.SequenceEqual(other.OwnAddresses) && Ipv6VirtualAddresses.SequenceEqual(other.Ipv6VirtualAddresses) &&
        Ipv6NatServers.SequenceEqual(other.Ipv6NatServers) && TunnelServers.SequenceEqual(other.TunnelServers);
}
