using System.Numerics;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Remembers where the first fragment of each datagram went, so that every later fragment (which carries no
/// ports) goes to the same real server. IPVS gets this for free because the kernel reassembles first; udr keeps
/// the frames as they are. A bounded set-associative cache: each datagram may sit in one of 8 slots; a new one
/// takes an expired or else the oldest slot. Entries live as long as the kernel keeps fragments (ipfrag_time, 30 s).
/// A datagram is known by source, destination, identification (16 bits in IPv4, 32 in IPv6's Fragment header) and
/// protocol; <typeparamref name="TAddress"/> is the family's address type.
/// </summary>
public sealed class FragmentTable<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    public const int LifetimeMs = 30_000;
    private const int Ways = 8;

    private struct Entry
    {
        public RealServer? Dest;
        public long ExpiresAtMs;
        public TAddress Source;
        public TAddress Destination;
        public TAddress DestAddress;
        public ulong Hop;
        public uint Identification;
        public byte Protocol;
        public ForwardingMethod Method;
    }

    private readonly Entry[] _entries;
    private readonly int _mask;

    public FragmentTable(int capacity = 4096)
    {
        int size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity, Ways));
        _entries = new Entry[size];
        _mask = size - 1;
    }

    private int Home(TAddress source, TAddress destination, uint identification, byte protocol) =>
        (int)(((AddressBits.Fold(source) * 0x9E3779B1u) ^ (AddressBits.Fold(destination) * 0x85EBCA77u) ^ ((identification << 8) ^ (identification >> 24) ^ protocol)) * 0xC2B2AE3Du >> 8) & _mask & ~(Ways - 1);

    /// <param name="hop">For a NAT reply's fragments: where the client is (ClientHop: MAC and link); 0 otherwise.</param>
    public void Remember(TAddress source, TAddress destination, uint identification, byte protocol, RealServer dest, TAddress destAddress, ForwardingMethod method,
        long nowMs, ulong hop = 0)
    {
        int home = Home(source, destination, identification, protocol);
        int victim = home;
        for (int way = 0; way < Ways; way++)
        {
            ref Entry entry = ref _entries[home + way];
            if (entry.Dest is null || entry.ExpiresAtMs <= nowMs ||
                (entry.Source.Equals(source) && entry.Destination.Equals(destination) && entry.Identification == identification && entry.Protocol == protocol))
            {
                victim = home + way;
                break;
            }
            if (entry.ExpiresAtMs < _entries[victim].ExpiresAtMs)
            {
                victim = home + way;
            }
        }
        _entries[victim] = new Entry
        {
            Dest = dest, ExpiresAtMs = nowMs + LifetimeMs, Source = source, Destination = destination,
            Identification = identification, Protocol = protocol, DestAddress = destAddress, Method = method, Hop = hop,
        };
    }

    public bool TryFind(TAddress source, TAddress destination, uint identification, byte protocol, long nowMs,
        out RealServer? dest, out TAddress destAddress, out ForwardingMethod method, out ulong hop)
    {
        int home = Home(source, destination, identification, protocol);
        for (int way = 0; way < Ways; way++)
        {
            ref Entry entry = ref _entries[home + way];
            if (entry.Dest is not null && entry.ExpiresAtMs > nowMs && entry.Source.Equals(source) && entry.Destination.Equals(destination) &&
                entry.Identification == identification && entry.Protocol == protocol)
            {
                dest = entry.Dest;
                destAddress = entry.DestAddress;
                method = entry.Method;
                hop = entry.Hop;
                return true;
            }
        }
        dest = null;
        destAddress = default;
        method = default;
        hop = 0;
        return false;
    }
}
