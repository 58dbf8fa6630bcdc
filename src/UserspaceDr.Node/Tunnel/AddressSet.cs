namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// An immutable set of IPv4 addresses (host order) for per-packet membership tests: a sorted array searched without
/// allocating. The sets here are small (a node's addresses, its VIPs).
/// </summary>
public sealed class AddressSet
{
    private readonly uint[] _sorted;

    public AddressSet(IEnumerable<uint> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        _sorted = [.. addresses.Distinct().Order()];
    }

    public static AddressSet Empty { get; } = new([]);

    public int Count => _sorted.Length;

    public IReadOnlyList<uint> Addresses => _sorted;

    public bool Contains(uint address) => Array.BinarySearch(_sorted, address) >= 0;

    /// <summary>True when both hold the same addresses.</summary>
    public bool SetEquals(AddressSet other) => other != null && _sorted.AsSpan().SequenceEqual(other._sorted);
}
