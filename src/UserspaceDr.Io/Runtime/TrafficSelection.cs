using UserspaceDr.Core.Services;
using UserspaceDr.Io.AfPacket;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// What the receive side takes in for a rule set: frames to a VIP, frames from a NAT real server (its replies and
/// ICMP errors), and ICMP to the balancer's own addresses. Built at control time; the kernel filters by it.
/// </summary>
public sealed record TrafficSelection(IReadOnlyList<uint> VirtualAddresses, IReadOnlyList<uint> NatServers, IReadOnlyList<uint> OwnAddresses)
{
    public static TrafficSelection From(RuleSet rules, IEnumerable<uint> ownAddresses)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(ownAddresses);
        return new TrafficSelection(rules.VirtualAddresses.ToArray(), [.. RuleSetTraffic.NatServers(rules.Spec).Order()],
            [.. ownAddresses.Distinct().Order()]);
    }

    /// <summary>The AF_PACKET socket filter for this selection.</summary>
    public ClassicBpfProgram SocketFilter() => ServiceTrafficFilter.Build(VirtualAddresses, [], NatServers, OwnAddresses);

    public bool SameAs(TrafficSelection other) =>
        other is not null && VirtualAddresses.SequenceEqual(other.VirtualAddresses) && NatServers.SequenceEqual(other.NatServers) &&
        OwnAddresses.SequenceEqual(other.OwnAddresses);
}
