using System.Collections.Immutable;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Admin;

/// <summary>A real server as ipvsadm -L sees it: its settings, connection counts, counters and rates.</summary>
public sealed record RealServerState(RealServerSpec Spec)
{
    public int ActiveConnections { get; init; }
    public int InactiveConnections { get; init; }
    public int PersistentConnections { get; init; }
    public TrafficCounters Stats { get; init; }
    public TrafficRates Rates { get; init; }
}

/// <summary>A virtual service as ipvsadm -L sees it.</summary>
public sealed record VirtualServiceState(VirtualServiceSpec Spec)
{
    /// <summary>In the kernel's list order, newest first (what --nosort prints).</summary>
    public ImmutableArray<RealServerState> RealServers { get; init; } = [];
    public TrafficCounters Stats { get; init; }
    public TrafficRates Rates { get; init; }
}

/// <summary>Everything ipvsadm's listings print, read from the running daemon (or made from a rule set).</summary>
public sealed record IpvsState(ImmutableArray<VirtualServiceState> Services)
{
    /// <summary>What the kernel reports by default (conn_tab_bits 12).</summary>
    public const int DefaultConnectionTableSize = 4096;

    /// <summary>The "size=" of the header line.</summary>
    public int ConnectionTableSize { get; init; } = DefaultConnectionTableSize;

    /// <summary>A rule set with nothing counted yet; real servers in the kernel's order (newest first).</summary>
    public static IpvsState FromRules(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return new IpvsState([.. rules.Services.Select(service => new VirtualServiceState(service)
        {
            RealServers = [.. service.RealServers.Reverse().Select(server => new RealServerState(server))],
        })]);
    }
}

/// <summary>One connection entry (or persistence template) as /proc/net/ip_vs_conn and ipvsadm -L -c show it.</summary>
public sealed record IpvsConnection(
    ServiceProtocol Protocol,
    string State,
    InetAddress ClientAddress,
    ushort ClientPort,
    InetAddress VirtualAddress,
    ushort VirtualPort,
    InetAddress DestinationAddress,
    ushort DestinationPort,
    long ExpiresInSeconds);
