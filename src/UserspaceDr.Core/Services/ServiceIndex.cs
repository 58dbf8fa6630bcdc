using System.Runtime.CompilerServices;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Services;

/// <summary>
/// One family's services by (protocol, address, port): an open-addressed table, power-of-two capacity, at most half
/// full, whose entries carry their own key, so a probe compares numbers and never reads the service object. Built once
/// with its rule set and never changed. <typeparamref name="TAddress"/> is the family's address type
/// (<see cref="AddressBits"/>).
/// </summary>
internal sealed class ServiceIndex<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    private readonly Entry[] _entries;
    private readonly int _mask;

    /// <param name="services">Address/port services (firewall-mark services are looked up by mark instead).</param>
    /// <param name="markedDestinations">Further addresses udr takes traffic for: the destinations of firewall-mark rules.</param>
    public ServiceIndex(IEnumerable<VirtualService> services, IEnumerable<InetAddress> markedDestinations)
    {
        var mine = new List<(VirtualService Service, TAddress Address)>();
        foreach (VirtualService service in services)
        {
            if (AddressBits.TryFrom(service.Address, out TAddress address))
            {
                mine.Add((service, address));
            }
        }
        int capacity = 16;
        while (capacity < mine.Count * 2)
        {
            capacity <<= 1;
        }
        _entries = new Entry[capacity];
        _mask = capacity - 1;
        foreach ((VirtualService service, TAddress address) in mine)
        {
            int slot = Slot((byte)service.Protocol, address, service.Port);
            while (_entries[slot].Service is not null)
            {
                slot = (slot + 1) & _mask;
            }
            _entries[slot] = new Entry(service, address, service.Port, (byte)service.Protocol,
                service.Destinations.Any(d => d.Method == ForwardingMethod.Tunnel));
        }
        var marked = new List<TAddress>();
        foreach (InetAddress destination in markedDestinations)
        {
            if (AddressBits.TryFrom(destination, out TAddress address))
            {
                marked.Add(address);
            }
        }
        Addresses = [.. mine.Select(m => m.Address).Concat(marked).Distinct().Order()];
    }

    /// <summary>This family's VIPs, sorted.</summary>
    public TAddress[] Addresses { get; }

    /// <summary>
    /// Whether udr takes traffic for <paramref name="address"/>; asked twice per frame (destination and source). A site's
    /// few VIPs are scanned (vectorized for IPv4); a larger set is searched. The generic binary search is a call through
    /// a comparer at every step: ~5% of a cached frame's samples (bench/README.md, issue 10 section). Not inlined, so
    /// that it does not take Classify's inlining budget from the span and header helpers of the hot path.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public bool IsVirtualAddress(TAddress address)
    {
        TAddress[] addresses = Addresses;
        return addresses.Length <= ScanLimit ? addresses.AsSpan().Contains(address) : Array.BinarySearch(addresses, address) >= 0;
    }

    /// <summary>
    /// Up to this many VIPs the scan (a few vector compares for IPv4) is taken. Measured with one VIP only; the bound is
    /// a judgment, not tuned.
    /// </summary>
    private const int ScanLimit = 32;

    /// <summary>The slot of the service for a packet to address:port (a persistent port-0 service matches any port); -1 for none.</summary>
    public int FindSlot(byte protocol, TAddress address, ushort port)
    {
        int exact = FindExactSlot(protocol, address, port);
        return exact >= 0 || port == 0 ? exact : FindExactSlot(protocol, address, 0);
    }

    public int FindExactSlot(byte protocol, TAddress address, ushort port)
    {
        Entry[] entries = _entries;
        int slot = Slot(protocol, address, port);
        while (true)
        {
            ref readonly Entry entry = ref entries[slot];
            if (entry.Service is null)
            {
                return -1;
            }
            if (entry.Port == port && entry.Address.Equals(address) && entry.Protocol == protocol)
            {
                return slot;
            }
            slot = (slot + 1) & _mask;
        }
    }

    public VirtualService ServiceAt(int slot) => _entries[slot].Service!;

    public bool SlotHasTunnel(int slot) => _entries[slot].HasTunnel;

    private int Slot(byte protocol, TAddress address, ushort port)
    {
        uint hash = (AddressBits.Fold(address) ^ ((uint)port << 16) ^ protocol) * 0x9E3779B1u;
        return (int)(hash >> 16) & _mask;
    }

    private readonly record struct Entry(VirtualService? Service, TAddress Address, ushort Port, byte Protocol, bool HasTunnel);
}
