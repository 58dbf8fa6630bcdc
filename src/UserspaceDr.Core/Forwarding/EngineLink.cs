using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// One interface udr serves, as the engine needs it: its MAC (source of what leaves by it, and "frames for this
/// host" on what arrives by it), its MTU, and the balancer's own IPv4 and IPv6 addresses on it (sources of the ICMP
/// and ICMPv6 errors udr sends from it, about NAT replies; 0 when it has none). A frame's link is an index into
/// <see cref="EngineOptions.Links"/>; the receive path maps it to an ifindex.
/// </summary>
public readonly record struct EngineLink(MacAddress Mac, int Mtu = EngineLink.DefaultMtu, uint Address = 0, UInt128 Ipv6Address = default)
{
    public const int DefaultMtu = 1500;
}
