using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>An IPv4 address on an interface, as `ip -j addr` reports it.</summary>
public sealed record InterfaceAddress(uint Address, int PrefixLength, string Scope = "global")
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    /// <summary>True when <paramref name="other"/> is on this address's subnet (never for a /32).</summary>
    public bool Covers(uint other) => PrefixLength < 32 && (Address & Mask) == (other & Mask);

    public override string ToString() => $"{Ipv4Address.Format(Address)}/{PrefixLength}";
}

/// <summary>
/// An address of either family on an interface, as `ip -j addr` reports it (scope "global", "link" for fe80::/10, "host").
/// </summary>
public sealed record LinkAddress(InetAddress Address, int PrefixLength, string Scope = "global")
{
    /// <summary>True when <paramref name="other"/> is of this family and on this address's subnet (never for a host route).</summary>
    public bool Covers(InetAddress other) => other.Family == Address.Family && PrefixLength < Address.MaxPrefixLength &&
        other.Mask((uint)PrefixLength) == Address.Mask((uint)PrefixLength);

    public override string ToString() => $"{Address}/{PrefixLength}";
}

/// <summary>
/// A network interface with its flags, MTU, MAC and IPv4 addresses (`ip -j addr show`): the one model of a link that
/// the balancer's data plane, its preflight and the node module share. <see cref="LinkType"/> is its "link_type"
/// ("ether", "loopback", "ipip", "none" for a TUN device, …) when reported.
/// </summary>
public sealed record LinkInfo(string Name, int Index, IReadOnlyList<string> Flags, int Mtu, string OperState,
    IReadOnlyList<InterfaceAddress> Addresses, string? LinkType = null)
{
    /// <summary>The link's hardware address; <see cref="MacAddress.Zero"/> when it has none (loopback, TUN, IP-in-IP).</summary>
    public MacAddress Mac { get; init; } = MacAddress.Zero;

    /// <summary>The link's IPv6 addresses (its IPv4 ones are <see cref="Addresses"/>).</summary>
    public IReadOnlyList<LinkAddress> Ipv6Addresses { get; init; } = [];

    /// <summary>The XDP program attached to the link, if any (a link runs one: udr's AF_XDP backend needs it free).</summary>
    public XdpProgramInfo? Xdp { get; init; }

    public bool IsLoopback => Flags.Contains("LOOPBACK");

    public bool IsUp => Flags.Contains("UP");

    /// <summary>True when the interface speaks ARP (not loopback, no NOARP flag): where a VIP could leak.</summary>
    public bool AnswersArp => !IsLoopback && !Flags.Contains("NOARP");

    public InterfaceAddress? Find(uint address) => Addresses.FirstOrDefault(a => a.Address == address);

    /// <summary>True when <paramref name="address"/> is on a subnet of this interface (not counting /32s).</summary>
    public bool IsOnLink(uint address) => Addresses.Any(a => a.Covers(address));

    /// <summary>The address to speak ARP from towards <paramref name="neighbor"/>: one on the same subnet, else the first non-/32.</summary>
    public uint? SourceAddressFor(uint neighbor) =>
        (Addresses.FirstOrDefault(a => a.Covers(neighbor)) ?? Addresses.FirstOrDefault(a => a.PrefixLength < 32))?.Address;

    /// <summary>
    /// The address to speak to <paramref name="neighbor"/> from, of its family: for IPv4 as <see cref="SourceAddressFor(uint)"/>;
    /// for IPv6 one on the neighbour's prefix, else the link-local one (what neighbour discovery uses, RFC 4861 §7.2.2), else any.
    /// </summary>
    public InetAddress? SourceAddressFor(InetAddress neighbor)
    {
        if (neighbor.IsIPv4)
        {
            return SourceAddressFor(neighbor.IPv4) is uint source ? InetAddress.FromIPv4(source) : (InetAddress?)null;
        }
        return (Ipv6Addresses.FirstOrDefault(a => a.Covers(neighbor)) ?? Ipv6Addresses.FirstOrDefault(a => a.Scope == "link") ??
            (Ipv6Addresses.Count > 0 ? Ipv6Addresses[0] : null))?.Address;
    }

    /// <summary>The link's entry for <paramref name="address"/>, of either family; null when the link does not hold it.</summary>
    public LinkAddress? FindAddress(InetAddress address)
    {
        if (address.IsIPv4)
        {
            return Find(address.IPv4) is { } found ? new LinkAddress(address, found.PrefixLength, found.Scope) : null;
        }
        return Ipv6Addresses.FirstOrDefault(a => a.Address == address);
    }

    /// <summary>True when <paramref name="address"/> is one of this link's own, of either family.</summary>
    public bool Owns(InetAddress address) => FindAddress(address) is not null;
}

/// <summary>
/// A route as `ip -j route` reports it: the output device, the gateway (absent on a connected route), the preferred
/// source address, the route's own MTU metric (absent unless the route sets one) and its type ("unicast", "local",
/// "unreachable", …).
/// </summary>
/// <summary>An XDP program attached to a link: the kernel's program id and its name (udr's is "udr_steer").</summary>
public sealed record XdpProgramInfo(int Id, string? Name);

public sealed record RouteInfo(string? Device, InetAddress? Gateway, InetAddress? PreferredSource, int? Mtu, string Type = "unicast");

/// <summary>One offload feature as `ethtool -k` reports it: on/off, and "[fixed]" when it cannot be changed.</summary>
public readonly record struct OffloadState(bool On, bool Fixed);

/// <summary>GRO and LRO of an interface; null members were not reported.</summary>
public sealed record OffloadFeatures(OffloadState? Gro, OffloadState? Lro);
