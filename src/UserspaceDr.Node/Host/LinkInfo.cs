using UserspaceDr.Core.Packets;

namespace UserspaceDr.Node.Host;

/// <summary>An IPv4 address on an interface, as `ip -j addr` reports it.</summary>
public sealed record InterfaceAddress(uint Address, int PrefixLength, string Scope = "global")
{
    public uint Mask => PrefixLength == 0 ? 0 : uint.MaxValue << (32 - PrefixLength);

    /// <summary>True when <paramref name="other"/> is on this address's subnet (never for a /32).</summary>
    public bool Covers(uint other) => PrefixLength < 32 && (Address & Mask) == (other & Mask);

    public override string ToString() => $"{Ipv4Address.Format(Address)}/{PrefixLength}";
}

/// <summary>
/// A network interface with its flags, MTU and IPv4 addresses (`ip -j addr show`); <see cref="LinkType"/> is its
/// "link_type" ("ether", "loopback", "ipip", "none" for a TUN device, …) when reported.
/// </summary>
public sealed record LinkInfo(string Name, int Index, IReadOnlyList<string> Flags, int Mtu, string OperState,
    IReadOnlyList<InterfaceAddress> Addresses, string? LinkType = null)
{
    public bool IsLoopback => Flags.Contains("LOOPBACK");

    public bool IsUp => Flags.Contains("UP");

    /// <summary>True when the interface speaks ARP (not loopback, no NOARP flag): where a VIP could leak.</summary>
    public bool AnswersArp => !IsLoopback && !Flags.Contains("NOARP");

    public InterfaceAddress? Find(uint address) => Addresses.FirstOrDefault(a => a.Address == address);

    public bool IsOnLink(uint address) => Addresses.Any(a => a.Covers(address));
}

/// <summary>A route as `ip -j route` reports it; <see cref="Mtu"/> is the route's own MTU metric when set.</summary>
public sealed record RouteInfo(string? Device, uint? Gateway, uint? PreferredSource, int? Mtu);

/// <summary>One offload feature as `ethtool -k` reports it: on/off, and "[fixed]" when it cannot be changed.</summary>
public readonly record struct OffloadState(bool On, bool Fixed);

/// <summary>GRO and LRO of an interface; null members were not reported.</summary>
public sealed record OffloadFeatures(OffloadState? Gro, OffloadState? Lro);
