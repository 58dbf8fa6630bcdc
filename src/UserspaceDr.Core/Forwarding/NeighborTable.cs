using System.Numerics;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Immutable IPv4 → MAC snapshot of the next hops udr sends to (real servers, gateways). The resolver publishes a
/// new snapshot when an entry changes; workers read the current one once per batch. Lookups are a masked probe.
/// </summary>
public sealed class NeighborTable
{
    public static readonly NeighborTable Empty = new(new Dictionary<uint, MacAddress>());

    private readonly uint[] _addresses;
    private readonly ulong[] _macs; // 0 = empty slot (a zero MAC is never a valid neighbour)
    private readonly int _mask;

    public NeighborTable(IReadOnlyDictionary<uint, MacAddress> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(8, entries.Count * 2));
        _addresses = new uint[size];
        _macs = new ulong[size];
        _mask = size - 1;
        foreach ((uint address, MacAddress mac) in entries)
        {
            if (mac == MacAddress.Zero)
            {
                continue;
            }
            int slot = Slot(address);
            while (_macs[slot] != 0 && _addresses[slot] != address)
            {
                slot = (slot + 1) & _mask;
            }
            _addresses[slot] = address;
            _macs[slot] = mac.Value;
        }
        Entries = new Dictionary<uint, MacAddress>(entries);
    }

    public IReadOnlyDictionary<uint, MacAddress> Entries { get; }

    public bool TryGet(uint address, out MacAddress mac)
    {
        int slot = Slot(address);
        while (_macs[slot] != 0)
        {
            if (_addresses[slot] == address)
            {
                mac = new MacAddress(_macs[slot]);
                return true;
            }
            slot = (slot + 1) & _mask;
        }
        mac = MacAddress.Zero;
        return false;
    }

    private int Slot(uint address) => (int)((address * 0x9E3779B1u) >> 16) & _mask;

    public NeighborTable With(uint address, MacAddress mac)
    {
        var copy = new Dictionary<uint, MacAddress>(Entries) { [address] = mac };
        return new NeighborTable(copy);
    }
}
