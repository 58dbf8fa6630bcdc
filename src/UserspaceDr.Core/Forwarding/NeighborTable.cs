using System.Numerics;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Immutable IPv4 → <see cref="NextHop"/> snapshot of the addresses udr sends to (real servers). The resolver
/// publishes a new snapshot when an entry changes; workers read the current one once per batch. Lookups are a
/// masked probe.
/// </summary>
public sealed class NeighborTable
{
    public static readonly NeighborTable Empty = new(new Dictionary<uint, NextHop>());

    private readonly uint[] _addresses;
    private readonly NextHop[] _hops; // Mac 0 = empty slot (a zero MAC is never a valid neighbour)
    private readonly int _mask;

    /// <summary>Every address on link 0, with the default MTU (one interface, a flat segment).</summary>
    public NeighborTable(IReadOnlyDictionary<uint, MacAddress> entries)
        : this(ToHops(entries))
    {
    }

    public NeighborTable(IReadOnlyDictionary<uint, NextHop> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, entries.Count * 2));
        _addresses = new uint[size];
        _hops = new NextHop[size];
        _mask = size - 1;
        foreach ((uint address, NextHop hop) in entries)
        {
            if (hop.Mac == MacAddress.Zero)
            {
                continue;
            }
            int slot = Slot(address);
            while (_hops[slot].Mac != MacAddress.Zero && _addresses[slot] != address)
            {
                slot = (slot + 1) & _mask;
            }
            _addresses[slot] = address;
            _hops[slot] = hop;
        }
        Hops = new Dictionary<uint, NextHop>(entries);
    }

    public IReadOnlyDictionary<uint, NextHop> Hops { get; }

    public bool TryGet(uint address, out NextHop hop)
    {
        int slot = Slot(address);
        while (_hops[slot].Mac != MacAddress.Zero)
        {
            if (_addresses[slot] == address)
            {
                hop = _hops[slot];
                return true;
            }
            slot = (slot + 1) & _mask;
        }
        hop = default;
        return false;
    }

    private int Slot(uint address) => (int)((address * 0x9E3779B1u) >> 16) & _mask;

    public NeighborTable With(uint address, NextHop hop)
    {
        var copy = new Dictionary<uint, NextHop>(Hops) { [address] = hop };
        return new NeighborTable(copy);
    }

    /// <summary>Re-points an address at a new MAC, keeping its link, source and MTU (link 0 if it was unknown).</summary>
    public NeighborTable With(uint address, MacAddress mac) =>
        With(address, (Hops.TryGetValue(address, out NextHop hop) ? hop : new NextHop(mac)) with { Mac = mac });

    private static Dictionary<uint, NextHop> ToHops(IReadOnlyDictionary<uint, MacAddress> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return entries.ToDictionary(e => e.Key, e => new NextHop(e.Value));
    }
}
