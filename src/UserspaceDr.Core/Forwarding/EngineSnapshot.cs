using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Everything an engine reads that the control side changes: the rule set, the neighbour table, the timeouts, and
/// what is derived from them. Immutable and published whole (RCU by immutability): a worker reads the current one
/// once per batch, so it never sees half of a change and never waits for one.
/// </summary>
public sealed class EngineSnapshot
{
    public static readonly EngineSnapshot Empty = new(RuleSet.Empty, NeighborTable.Empty, Timeouts.Default);

    public EngineSnapshot(RuleSet rules, NeighborTable neighbors, Timeouts timeouts)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(neighbors);
        ArgumentNullException.ThrowIfNull(timeouts);
        Rules = rules;
        Neighbors = neighbors;
        Timeouts = timeouts;
        SmallestTunnelPayloadMtu = FindSmallestTunnelPayloadMtu(rules, neighbors);
    }

    public RuleSet Rules { get; }

    /// <summary>Real servers' next hops (MAC, link, MTU, source address).</summary>
    public NeighborTable Neighbors { get; }

    /// <summary>Timeouts in force (ipvsadm --set).</summary>
    public Timeouts Timeouts { get; }

    /// <summary>
    /// The largest inner packet every tunnel server's path takes without fragmentation (its MTU less the outer
    /// header, IPv4's or IPv6's, and the GUE or GRE header); <see cref="int.MaxValue"/> when no tunnel server has a known path MTU. A receive path that does not
    /// know the segment size a GSO super-frame's sender meant cuts it to this.
    /// </summary>
    public int SmallestTunnelPayloadMtu { get; }

    public EngineSnapshot WithRules(RuleSet rules) => new(rules, Neighbors, Timeouts);
    public EngineSnapshot WithNeighbors(NeighborTable neighbors) => new(Rules, neighbors, Timeouts);
    public EngineSnapshot WithTimeouts(Timeouts timeouts) => new(Rules, Neighbors, timeouts);

    private static int FindSmallestTunnelPayloadMtu(RuleSet rules, NeighborTable neighbors)
    {
        int smallest = int.MaxValue;
        if (!rules.HasTunnel)
        {
            return smallest;
        }
        foreach (VirtualService service in rules.Services)
        {
            foreach (RealServer server in service.Destinations)
            {
                if (server.Method != ForwardingMethod.Tunnel)
                {
                    continue;
                }
                // The outer header is the server's family's: 20 bytes of IPv4, or 40 of IPv6.
                if (server.Address.IsIPv4 ? neighbors.TryGet(server.Address.IPv4, out NextHop hop) : neighbors.TryGet(server.Address.IPv6, out hop))
                {
                    if (hop.Mtu > 0)
                    {
                        smallest = Math.Min(smallest, hop.Mtu - (server.Address.IsIPv4 ? Ipv4Header.MinLength : Ipv6Header.Length) - server.Tunnel.HeaderLength);
                    }
                }
            }
        }
        return smallest;
    }
}
