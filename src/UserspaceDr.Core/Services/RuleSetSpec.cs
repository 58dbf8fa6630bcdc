using System.Collections.Immutable;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Services;

/// <summary>A real server as configured (-a/-e). Weight 0 = quiesced; thresholds 0 = unset.</summary>
public sealed record RealServerSpec(
    InetAddress Address,
    ushort Port,
    ForwardingMethod Method = ForwardingMethod.Route,
    int Weight = 1,
    int UpperThreshold = 0,
    int LowerThreshold = 0)
{
    /// <summary>A tunnel server's encapsulation (--tun-type and its options); IP-in-IP by default, as in ipvsadm.</summary>
    public TunnelEncapsulation Tunnel { get; init; }
}

/// <summary>
/// A virtual service as configured (-A/-E). <see cref="RealServers"/> is in the order the servers were added,
/// oldest first; the running service reverses it into the kernel's newest-first list.
/// </summary>
public sealed record VirtualServiceSpec(
    ServiceProtocol Protocol,
    InetAddress Address,
    ushort Port,
    string Scheduler = "wlc",
    SchedulerFlags Flags = SchedulerFlags.None,
    int PersistenceTimeout = 0,
    uint PersistenceNetmask = 0xFFFF_FFFF,
    bool OnePacket = false)
{
    public ImmutableArray<RealServerSpec> RealServers { get; init; } = [];

    public bool SameService(ServiceProtocol protocol, InetAddress address, ushort port) =>
        Protocol == protocol && Address == address && Port == port;
}

/// <summary>A whole validated configuration: what `ipvsadm -S` prints and `ipvsadm -R` reads.</summary>
public sealed record RuleSetSpec(ImmutableArray<VirtualServiceSpec> Services)
{
    public static readonly RuleSetSpec Empty = new(ImmutableArray<VirtualServiceSpec>.Empty);
}
