using System.Numerics;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Immutable address → <see cref="NextHop"/> snapshot of the addresses udr sends to (real servers), IPv4 and IPv6. The
/// resolver publishes a new snapshot when an entry changes; workers read the current one once per batch. Lookups are
/// a masked probe.
/// </summary>
public sealed class NeighborTable
{
    public static readonly NeighborTable Empty = new(new Dictionary<uint, NextHop>());

    private readonly HopMap<uint> _ipv4;
    private readonly HopMap<UInt128> _ipv6;

    /// <summary>Every address on link 0, with the default MTU (one interface, a flat segment).</summary>
    public NeighborTable(IReadOnlyDictionary<uint, MacAddress> entries)
        : this(ToHops(entries))
    {
    }

    public NeighborTable(IReadOnlyDictionary<uint, NextHop> entries, IReadOnlyDictionary<UInt128, NextHop>? ipv6Entries = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        _ipv4 = new HopMap<uint>(entries);
        _ipv6 = new HopMap<UInt128>(ipv6Entries ?? new Dictionary<UInt128, NextHop>());
        Hops = new Dictionary<uint, NextHop>(entries);
        Ipv6Hops = new Dictionary<UInt128, NextHop>(ipv6Entries ?? new Dictionary<UInt128, NextHop>());
    }

    public IReadOnlyDictionary<uint, NextHop> Hops { get; }

    public IReadOnlyDictionary<UInt128, NextHop> Ipv6Hops { get; }

    public bool TryGet(uint address, out NextHop hop) => _ipv4.TryGet(address, out hop);

    public bool TryGet(UInt128 address, out NextHop hop) => _ipv6.TryGet(address, out hop);

    public NeighborTable With(uint address, NextHop hop) => new(new Dictionary<uint, NextHop>(Hops) { [address] = hop }, Ipv6Hops);

    public NeighborTable With(UInt128 address, NextHop hop) => new(Hops, new Dictionary<UInt128, NextHop>(Ipv6Hops) { [address] = hop });

    /// <summary>Re-points an address at a new MAC, keeping its link, source and MTU (link 0 if it was unknown).</summary>
    public NeighborTable With(uint address, MacAddress mac) =>
        With(address, (Hops.TryGetValue(address, out NextHop hop) ? hop : new NextHop(mac)) with { Mac = mac });

    private static Dictionary<uint, NextHop> ToHops(IReadOnlyDictionary<uint, MacAddress> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return entries.ToDictionary(e => e.Key, e => new NextHop(e.Value));
    }

    /// <summary>One family's open-addressed probe table; a zero MAC marks an empty slot (it is never a valid neighbour).</summary>
    private sealed class HopMap<TAddress>
        where TAddress : unmanaged, IEquatable<TAddress>
    {
        private readonly TAddress[] _addresses;
        private readonly NextHop[] _hops;
        private readonly int _mask;

        public HopMap(IReadOnlyDictionary<TAddress, NextHop> entries)
        {
            int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, entries.Count * 2));
            _addresses = new TAddress[size];
            _hops = new NextHop[size];
            _mask = size - 1;
            foreach ((TAddress address, NextHop hop) in entries)
            {
                if (hop.Mac == MacAddress.Zero)
                {
                    continue;
                }
                int slot = Slot(address);
                while (_hops[slot].Mac != MacAddress.Zero && !_addresses[slot].Equals(address))
                {
                    slot = (slot + 1) & _mask;
                }
                _addresses[slot] = address;
                _hops[slot] = hop;
            }
        }

        public bool TryGet(TAddress address, out NextHop hop)
        {
            int slot = Slot(address);
            while (_hops[slot].Mac != MacAddress.Zero)
            {
                if (_addresses[slot].Equals(address))
                {
                    hop = _hops[slot];
                    return true;
                }
                slot = (slot + 1) & _mask;
            }
            hop = default;
            return false;
        }

        private int Slot(TAddress address) => (int)((AddressBits.Fold(address) * 0x9E3779B1u) >> 16) & _mask;
    }
}
