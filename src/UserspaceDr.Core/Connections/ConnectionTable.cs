using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Connections;

/// <summary>
/// One worker's connections of one family: an open-addressed, linearly probed array of <see cref="Connection{TAddress}"/> structs with a fixed
/// capacity. Single-threaded by design: a flow always lands on the same worker, so no locks are needed. Deletion
/// shifts later entries back (no tombstones), so probe chains stay short. Expiry is a clock sweep driven by the
/// worker (<see cref="Expire"/>), against the time the caller passes in, which keeps tests in control of time.
/// When full, <see cref="TryInsert"/> refuses: new flows are refused, existing ones are never evicted.
/// </summary>
public sealed class ConnectionTable<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    private const int CacheLine = 64;

    private readonly Connection<TAddress>[] _slots;
    private readonly int _mask;
    private readonly ulong _seed;
    private int _sweepCursor;

    public ConnectionTable(int capacity, ulong? seed = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        // At most two thirds full keeps linear probing short; a power of two makes the slot a mask.
        int slots = (int)BitOperations.RoundUpToPowerOf2((uint)(capacity + (capacity / 2) + 1));
        _slots = new Connection<TAddress>[slots];
        _mask = slots - 1;
        // A secret seed, as the kernel's jhash seed, so clients cannot aim flows at one probe chain.
        _seed = seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
    }

    public int Capacity { get; }
    public int Count { get; private set; }
    public int SlotCount => _slots.Length;

    /// <summary>
    /// Where the slots lie in memory and how many bytes they take, for a host that backs them with huge pages. The
    /// array lives on the large-object heap, which is never compacted, so the range stays put.
    /// </summary>
    public unsafe (nint Address, long Length) SlotMemory =>
        ((nint)Unsafe.AsPointer(ref _slots[0]), (long)_slots.Length * Unsafe.SizeOf<Connection<TAddress>>());

    /// <summary>The entry in <paramref name="slot"/> (valid until the next insert or removal).</summary>
    public ref Connection<TAddress> At(int slot) => ref _slots[slot];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint HashOf(in ConnectionKey<TAddress> key)
    {
        ulong a = AddressBits.IsIPv4<TAddress>()
            ? ((AddressBits.HashBits(key.ClientAddress) << 32) | AddressBits.HashBits(key.VirtualAddress)) ^ _seed
            : (AddressBits.HashBits(key.ClientAddress) * 0xD6E8FEB86659FD93UL) ^ AddressBits.HashBits(key.VirtualAddress) ^ _seed;
        ulong b = ((ulong)key.ClientPort << 32) | ((ulong)key.VirtualPort << 16) | ((ulong)key.Protocol << 2) | (key.Template ? 1UL : 0UL) | (key.ReplyLink ? 2UL : 0UL);
        ulong h = (a * 0x9E3779B97F4A7C15UL) ^ ((b + _seed) * 0xC2B2AE3D27D4EB4FUL);
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9UL;
        return (uint)(h >> 32);
    }

    /// <summary>
    /// Asks the CPU to start loading the slot where the probe for <paramref name="key"/> begins, so that a later
    /// <see cref="Find"/> for it does not wait on memory. A hint only: it reads nothing, changes nothing and cannot
    /// fault. A worker calls it for a frame a few places ahead in its batch, which overlaps the table's cache
    /// misses (with a million connections nearly every lookup misses) instead of taking them one after another.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(in ConnectionKey<TAddress> key)
    {
        if (Sse.IsSupported)
        {
            // The array lives on the large-object heap and is never moved; a stale address would only waste the hint.
            // Entries are not cache-line aligned (the array data starts 16 bytes into the object), so an entry spans
            // up to two lines (IPv4's 64 bytes) or three (IPv6's 112): ask for every one. The middle line of an IPv6
            // entry holds its hash, flags and ports, the first fields a lookup reads (a quarter of IPv6 entries
            // straddle three lines, and asking for the first and last byte alone left those lookups a full miss).
            byte* entry = (byte*)Unsafe.AsPointer(ref _slots[(int)HashOf(key) & _mask]);
            int size = Unsafe.SizeOf<Connection<TAddress>>(); // a constant per family: the loop unrolls
            for (int line = 0; line < size - 1; line += CacheLine)
            {
                Sse.Prefetch0(entry + line);
            }
            Sse.Prefetch0(entry + (size - 1));
        }
    }

    /// <summary>The slot holding <paramref name="key"/>, or -1.</summary>
    public int Find(in ConnectionKey<TAddress> key)
    {
        uint hash = HashOf(key);
        int slot = (int)hash & _mask;
        Connection<TAddress>[] slots = _slots;
        while (true)
        {
            ref Connection<TAddress> entry = ref slots[slot];
            if ((entry.Flags & ConnectionFlags.Used) == 0)
            {
                return -1;
            }
            if (entry.Hash == hash && entry.Matches(key))
            {
                return slot;
            }
            slot = (slot + 1) & _mask;
        }
    }

    /// <summary>
    /// Claims a slot for a key known to be absent and fills in the key; -1 when the table is at capacity.
    /// The caller fills in the rest of the entry.
    /// </summary>
    public int TryInsert(in ConnectionKey<TAddress> key)
    {
        if (Count >= Capacity)
        {
            return -1;
        }
        uint hash = HashOf(key);
        int slot = (int)hash & _mask;
        while ((_slots[slot].Flags & ConnectionFlags.Used) != 0)
        {
            slot = (slot + 1) & _mask;
        }
        ref Connection<TAddress> entry = ref _slots[slot];
        entry = default;
        entry.Flags = ConnectionFlags.Used | (key.Template ? ConnectionFlags.Template : ConnectionFlags.None) |
            (key.ReplyLink ? ConnectionFlags.ReplyLink : ConnectionFlags.None);
        entry.Hash = hash;
        entry.Protocol = key.Protocol;
        entry.ClientAddress = key.ClientAddress;
        entry.ClientPort = key.ClientPort;
        entry.VirtualAddress = key.VirtualAddress;
        entry.VirtualPort = key.VirtualPort;
        Count++;
        return slot;
    }

    /// <summary>
    /// drop_entry for a full table: removes up to <paramref name="count"/> half-open TCP connections (SYN_RECV: a SYN
    /// seen, the handshake not finished) and the persistence templates only such connections made (never assured,
    /// controlling nothing now), each time the one due to expire first among the <paramref name="scan"/> slots from the
    /// home slot of <paramref name="near"/> (a place the secret hash makes unpredictable to a sender). Under a SYN flood
    /// nearly every entry is half-open; taking the oldest of the ones seen leaves a real client's entry, half-open for
    /// one round trip only, to the last, and an established connection is never taken. Returns how many were removed.
    /// </summary>
    public int EvictHalfOpen(in ConnectionKey<TAddress> near, int count, int scan)
    {
        int home = (int)HashOf(near) & _mask;
        int removed = 0;
        while (removed < count)
        {
            int oldest = -1;
            long oldestExpiry = long.MaxValue;
            for (int visited = 0, slot = home; visited < scan; visited++, slot = (slot + 1) & _mask)
            {
                ref Connection<TAddress> entry = ref _slots[slot];
                if (entry.ExpiresAtMs < oldestExpiry && IsHalfOpen(entry))
                {
                    oldest = slot;
                    oldestExpiry = entry.ExpiresAtMs;
                }
            }
            if (oldest < 0)
            {
                break;
            }
            Remove(oldest);
            removed++;
        }
        return removed;
    }

    private static bool IsHalfOpen(in Connection<TAddress> entry) =>
        (entry.Flags & (ConnectionFlags.Used | ConnectionFlags.ReplyLink | ConnectionFlags.Template)) == ConnectionFlags.Used
            ? entry.Protocol == Packets.IpProtocol.Tcp && entry.State == TcpState.SynRecv
            : (entry.Flags & (ConnectionFlags.Used | ConnectionFlags.Template | ConnectionFlags.Assured)) == (ConnectionFlags.Used | ConnectionFlags.Template) &&
              entry.Protocol == Packets.IpProtocol.Tcp && entry.ControlCount == 0;

    /// <summary>
    /// Removes the entry in <paramref name="slot"/> and releases what it holds: its server's counters, for a
    /// controlled connection its template's control count (ip_vs_conn_expire + ip_vs_unbind_dest), and for a NAT
    /// connection its reply link.
    /// </summary>
    public void Remove(int slot)
    {
        ref Connection<TAddress> entry = ref _slots[slot];
        if (entry.IsReplyLink)
        {
            RemoveSlot(slot); // only ever removed with its connection
            return;
        }
        if (entry.Method == Services.ForwardingMethod.Masquerade && !entry.IsTemplate)
        {
            var link = new ConnectionKey<TAddress>(entry.Protocol, entry.ClientAddress, entry.ClientPort, entry.DestAddress, entry.DestPort, ReplyLink: true);
            int linkSlot = Find(link);
            // The link must point back at this very connection (another VIP may map to the same server port).
            if (linkSlot >= 0 && _slots[linkSlot].DestAddress.Equals(entry.VirtualAddress) && _slots[linkSlot].DestPort == entry.VirtualPort)
            {
                ConnectionKey<TAddress> key = entry.Key;
                RemoveSlot(linkSlot);
                slot = Find(key); // the backward shift may have moved this entry
            }
        }
        ref Connection<TAddress> removed = ref _slots[slot];
        if (removed.IsTemplate)
        {
            removed.Dest?.UnbindConnection(active: false, template: true);
        }
        else
        {
            removed.Dest?.UnbindConnection(active: !removed.IsInactive, template: false);
            if ((removed.Flags & ConnectionFlags.Controlled) != 0)
            {
                int template = Find(removed.ControllingTemplateKey);
                if (template >= 0)
                {
                    _slots[template].ControlCount--;
                }
            }
        }
        RemoveSlot(slot);
    }

    private void RemoveSlot(int hole)
    {
        Connection<TAddress>[] slots = _slots;
        int next = (hole + 1) & _mask;
        while ((slots[next].Flags & ConnectionFlags.Used) != 0)
        {
            int home = (int)slots[next].Hash & _mask;
            // Move the entry back when the hole lies on its probe path: between its home slot and where it sits.
            if (((next - home) & _mask) >= ((next - hole) & _mask))
            {
                slots[hole] = slots[next];
                hole = next;
            }
            next = (next + 1) & _mask;
        }
        slots[hole] = default;
        Count--;
    }

    /// <summary>
    /// Sweeps up to <paramref name="budget"/> slots from where the last sweep stopped, removing entries whose time
    /// has passed. A template that still controls connections is re-armed instead. Returns the number removed.
    /// </summary>
    public int Expire(long nowMs, int budget) => Expire(nowMs, budget, long.MaxValue);

    /// <summary>
    /// As <see cref="Expire(long, int)"/>; a half-open TCP connection (SYN_RECV) is also cut short to expire no later
    /// than <paramref name="synRecvDeadlineMs"/> (secure_tcp: entries armed before it turned on get its short timeout too).
    /// </summary>
    public int Expire(long nowMs, int budget, long synRecvDeadlineMs)
    {
        int removed = 0;
        Connection<TAddress>[] slots = _slots;
        int cursor = _sweepCursor;
        for (int visited = 0; visited < budget; visited++)
        {
            ref Connection<TAddress> entry = ref slots[cursor];
            if (entry.ExpiresAtMs > synRecvDeadlineMs && entry.State == TcpState.SynRecv && entry.Protocol == Packets.IpProtocol.Tcp &&
                (entry.Flags & (ConnectionFlags.Used | ConnectionFlags.Template | ConnectionFlags.ReplyLink)) == ConnectionFlags.Used)
            {
                entry.ExpiresAtMs = synRecvDeadlineMs;
            }
            if ((entry.Flags & ConnectionFlags.Used) != 0 && entry.ExpiresAtMs <= nowMs)
            {
                if (entry.IsTemplate && entry.ControlCount > 0)
                {
                    entry.ExpiresAtMs = nowMs + (Timeouts.TemplateRecheckSeconds * 1000L);
                }
                else
                {
                    Remove(cursor);
                    removed++;
                    // The backward shift may have moved an unvisited entry into this slot: look at it again.
                    continue;
                }
            }
            cursor = (cursor + 1) & _mask;
        }
        _sweepCursor = cursor;
        return removed;
    }

    /// <summary>Removes every entry (releasing counters), e.g. when the data plane stops.</summary>
    public void Clear()
    {
        for (int slot = 0; slot < _slots.Length; slot++)
        {
            while ((_slots[slot].Flags & ConnectionFlags.Used) != 0)
            {
                Remove(slot);
            }
        }
    }

    /// <summary>A copy of every connection and template (not the NAT reply links), for listings; not for the hot path.</summary>
    public List<Connection<TAddress>> Snapshot()
    {
        var list = new List<Connection<TAddress>>(Count);
        foreach (ref readonly Connection<TAddress> entry in _slots.AsSpan())
        {
            if ((entry.Flags & ConnectionFlags.Used) != 0 && !entry.IsReplyLink)
            {
                list.Add(entry);
            }
        }
        return list;
    }
}
