using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// What the receive side needs to know of a rule set: which addresses to take in, which servers to resolve, and how to
/// steer.
/// </summary>
public static class RuleSetTraffic
{
    /// <summary>
    /// Every address the services take traffic for, in order: the VIPs, and the destinations of the mark rules of the
    /// firewall-mark services (as <see cref="RuleSet.VirtualAddresses"/> holds them once built).
    /// </summary>
    /// <param name="interfaceName">Only what arrives on it (a mark rule's -i may name another); null: on any.</param>
    public static IEnumerable<InetAddress> Destinations(RuleSetSpec rules, string? interfaceName = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.Where(s => !s.IsFirewallMark).Select(s => s.Address).Concat(rules.MarkedDestinations(interfaceName)).Distinct().Order();
    }

    /// <summary>
    /// The IPv4 GUE and GRE real servers as a quoted packet to them shows: address, protocol (17 for GUE, 47 for GRE)
    /// and destination port (GUE's; 0 for GRE), distinct, in order.
    /// </summary>
    public static IEnumerable<(uint Address, byte Protocol, ushort Port)> TunnelServers(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.SelectMany(s => s.RealServers)
            .Where(r => r.Method == ForwardingMethod.Tunnel && r.Address.IsIPv4 && r.Tunnel.Type != TunnelType.Ipip)
            .Select(r => r.Tunnel.Type == TunnelType.Gue ? (r.Address.IPv4, IpProtocol.Udp, r.Tunnel.Port) : (r.Address.IPv4, (byte)47, (ushort)0))
            .Distinct().Order();
    }

    /// <summary>The IPv4 addresses of NAT (-m) real servers: their replies come back through udr.</summary>
    public static IEnumerable<uint> NatServers(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.SelectMany(s => s.RealServers).Where(r => r.Method == ForwardingMethod.Masquerade && r.Address.IsIPv4)
            .Select(r => r.Address.IPv4).Distinct();
    }

    /// <summary>The IPv6 addresses of NAT real servers.</summary>
    public static IEnumerable<UInt128> Ipv6NatServers(RuleSetSpec rules) => Ipv6NatServerPorts(rules).Select(t => t.Address).Distinct();

    /// <summary>As <see cref="NatServerPorts"/>, for IPv6 NAT real servers.</summary>
    public static IEnumerable<(UInt128 Address, ServiceProtocol Protocol, ushort Port)> Ipv6NatServerPorts(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.SelectMany(s => s.RealServers.Where(r => r.Method == ForwardingMethod.Masquerade && r.Address.IsIPv6)
                .Select(r => (Address: r.Address.IPv6, s.Protocol, r.Port)))
            .Distinct().OrderBy(t => t.Address).ThenBy(t => t.Protocol).ThenBy(t => t.Port);
    }

    /// <summary>
    /// Where NAT replies come from: each NAT real server's address, protocol and port (0: the service's every port,
    /// a port-0 service), distinct, in order.
    /// </summary>
    public static IEnumerable<(uint Address, ServiceProtocol Protocol, ushort Port)> NatServerPorts(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.SelectMany(s => s.RealServers.Where(r => r.Method == ForwardingMethod.Masquerade && r.Address.IsIPv4)
                .Select(r => (Address: r.Address.IPv4, s.Protocol, r.Port)))
            .Distinct().OrderBy(t => t.Address).ThenBy(t => t.Protocol).ThenBy(t => t.Port);
    }

    /// <summary>
    /// Every real server address of either family, whatever its method: udr sends to each, and needs a route and a MAC
    /// for it.
    /// </summary>
    public static IEnumerable<InetAddress> RealServers(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return rules.Services.SelectMany(s => s.RealServers).Select(r => r.Address).Distinct();
    }

    /// <summary>
    /// The IPv6 client bits the fanout steering hashes: the shortest persistence prefix of an IPv6 service (128 without
    /// persistence), so that one IPv6 persistence group lands on one worker.
    /// </summary>
    public static int Ipv6ClientPrefix(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        int prefix = 128;
        foreach (VirtualServiceSpec service in rules.Services)
        {
            if (service.PersistenceTimeout != 0 && service.Address.IsIPv6)
            {
                prefix = Math.Min(prefix, (int)Math.Min(service.PersistenceNetmask, 128u));
            }
        }
        return prefix;
    }

    /// <summary>
    /// The client bits the fanout steering hashes: the widest persistence netmask in force (AND of all of them), so
    /// that one persistence group (client &amp; netmask) always lands on one worker and shares one template.
    /// </summary>
    public static uint ClientMask(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        uint mask = uint.MaxValue;
        foreach (VirtualServiceSpec service in rules.Services)
        {
            if (service.PersistenceTimeout != 0 && service.Address.IsIPv4)
            {
                mask &= service.PersistenceNetmask;
            }
        }
        return mask;
    }
}
