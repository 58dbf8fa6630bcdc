using UserspaceDr.Core.Packets;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// An immutable set of addresses of either family for per-packet membership tests: a sorted array per family, searched
/// without allocating. The sets here are small (a node's addresses, its VIPs).
/// </summary>
public sealed class AddressSet
{
    private readonly uint[] _ipv4;
    private readonly UInt128[] _ipv6;

    /// <summary>IPv4 addresses, host order.</summary>
    public AddressSet(IEnumerable<uint> addresses)
        : this(addresses.Select(InetAddress.FromIPv4))
    {
    }

    public AddressSet(IEnumerable<InetAddress> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        InetAddress[] all = [.. addresses];
        _ipv4 = [.. all.Where(a => a.IsIPv4).Select(a => a.IPv4).Distinct().Order()];
        _ipv6 = [.. all.Where(a => a.IsIPv6).Select(a => a.IPv6).Distinct().Order()];
    }

    public static AddressSet Empty { get; } = new(Array.Empty<InetAddress>());

    public int Count => _ipv4.Length + _ipv6.Length;

    /// <summary>The IPv4 addresses (host order), sorted.</summary>
    public IReadOnlyList<uint> Addresses => _ipv4;

    /// <summary>The IPv6 addresses, sorted.</summary>
    public IReadOnlyList<UInt128> Ipv6Addresses => _ipv6;

    public bool Contains(uint address) => Array.BinarySearch(_ipv4, address) >= 0;

    public bool Contains(UInt128 address) => Array.BinarySearch(_ipv6, address) >= 0;

    /// <summary>True when both hold the same addresses.</summary>
    public bool SetEquals(AddressSet other) =>
        other != null && _ipv4.AsSpan().SequenceEqual(other._ipv4) && _ipv6.AsSpan().SequenceEqual(other._ipv6);
}
