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
/// oldest first; the running service reverses it into the kernel's newest-first list. A firewall-mark service (-f)
/// has a <see cref="FirewallMark"/>, the unspecified address of its family (-6: IPv6), port 0 and TCP as the nominal
/// protocol ipvsadm gives it.
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

    /// <summary>-f: the firewall mark that selects this service's packets; 0 for an address/port service.</summary>
    public uint FirewallMark { get; init; }

    public bool IsFirewallMark => FirewallMark != 0;

    public bool SameService(ServiceProtocol protocol, InetAddress address, ushort port, uint firewallMark = 0) =>
        FirewallMark == firewallMark && (firewallMark != 0 ? Address.Family == address.Family : Protocol == protocol && Address == address && Port == port);

    public bool SameService(VirtualServiceSpec other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return SameService(other.Protocol, other.Address, other.Port, other.FirewallMark);
    }

    /// <summary>How logs, `udr top` and keepalived's messages name a firewall-mark service: "FWM 1", "FWM 1 IPv6".</summary>
    public static string FirewallMarkName(uint mark, IpFamily family) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"FWM {mark}{(family == IpFamily.IPv6 ? " IPv6" : "")}");

    /// <summary>A firewall-mark service of <paramref name="family"/> as ipvsadm -A -f makes it.</summary>
    public static VirtualServiceSpec ForFirewallMark(uint mark, IpFamily family, string scheduler = "wlc") =>
        new(ServiceProtocol.Tcp, family == IpFamily.IPv4 ? InetAddress.FromIPv4(0) : InetAddress.FromIPv6(UInt128.Zero), 0, scheduler)
        {
            FirewallMark = mark,
            PersistenceNetmask = family == IpFamily.IPv4 ? 0xFFFF_FFFF : 128,
        };
}

/// <summary>A whole validated configuration: what `ipvsadm -S` prints and `ipvsadm -R` reads.</summary>
public sealed record RuleSetSpec(ImmutableArray<VirtualServiceSpec> Services)
{
    /// <summary>
    /// The mark rules (udr run --fwmark-rules) that select the packets of the firewall-mark services: not ipvsadm
    /// state, so -C and -R keep them; reloading the rules file replaces them.
    /// </summary>
    public FirewallMarkRules MarkRules { get; init; } = FirewallMarkRules.None;

    /// <summary>
    /// The destinations of the mark rules that mark traffic for this rule set's firewall-mark services, address by
    /// address, in order: what udr takes from the kernel for them, as it takes a VIP's traffic.
    /// </summary>
    /// <param name="interfaceName">Only rules whose -i admits frames arriving on it; null: every rule.</param>
    public IEnumerable<InetAddress> MarkedDestinations(string? interfaceName = null) =>
        Services.Where(s => s.IsFirewallMark).SelectMany(s => MarkRules.DestinationsOf(s.Address.Family, s.FirewallMark, interfaceName))
            .SelectMany(p => p.Addresses()).Distinct().Order();

    public static readonly RuleSetSpec Empty = new(ImmutableArray<VirtualServiceSpec>.Empty);
}
