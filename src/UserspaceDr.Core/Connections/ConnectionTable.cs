using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
/// <remarks>
/// The slots live in native memory, not in a managed array: aligned to a cache line (to 2 MiB once they span a huge
/// page), an IPv4 entry is exactly one line, so a cold lookup waits on one line where a managed array's 16-byte offset
/// made every entry straddle two; and the collector never scans them (an entry holds no reference: see
/// <see cref="ServerHandles"/>). The memory comes zeroed from calloc, which maps fresh pages for a large block without
/// touching them, so a host can still advise them into huge pages before the first frame (<see cref="SlotMemory"/>).
/// It is freed with the table (finalizer), and the collector is told of its size.
/// </remarks>
public sealed unsafe class ConnectionTable<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    private const int CacheLine = 64;
    /// <summary>
    /// How many slots from the home slot <see cref="Prefetch"/> asks for. Linear probing reads on from the home slot
    /// until the key or an empty slot. With a million connections in 2^21 slots (a simulation of this table) 24% of
    /// the keys lie past their home slot and 10% past the next one, and a lookup for an absent key (every new
    /// connection, whose insert then probes the same run) reads 2.3 slots on average: a prefetch of the home slot
    /// alone left those frames a full miss. Two slots (two lines for IPv4) measured best for established frames and
    /// nearly best for new ones (bench/README.md: 1, 2 and 3 side by side).
    /// </summary>
    private const int PrefetchSlots = 2;
    private const long HugePage = 2 << 20;

    private readonly void* _allocation;
    private readonly long _allocatedBytes;
    private readonly Connection<TAddress>* _slots;
    private readonly int _slotCount;
    private readonly int _mask;
    private readonly ulong _seed;
    private int _sweepCursor;

    public ConnectionTable(int capacity, ulong? seed = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        Capacity = capacity;
        // At most two thirds full keeps linear probing short; a power of two makes the slot a mask.
        _slotCount = (int)BitOperations.RoundUpToPowerOf2((uint)(capacity + (capacity / 2) + 1));
        _mask = _slotCount - 1;
        long bytes = (long)_slotCount * sizeof(Connection<TAddress>);
        long alignment = bytes >= HugePage ? HugePage : CacheLine;
        _allocatedBytes = bytes + alignment;
        _allocation = NativeMemory.AllocZeroed((nuint)_allocatedBytes);
        _slots = (Connection<TAddress>*)(((nint)_allocation + (nint)alignment - 1) & ~((nint)alignment - 1));
        GC.AddMemoryPressure(_allocatedBytes);
        // A secret seed, as the kernel's jhash seed, so clients cannot aim flows at one probe chain.
        _seed = seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8));
    }

    ~ConnectionTable()
    {
        // A constructor that threw (a bad capacity, no memory) leaves nothing allocated, and an exception here would
        // end the process.
        if (_allocation != null)
        {
            NativeMemory.Free(_allocation);
            GC.RemoveMemoryPressure(_allocatedBytes);
        }
    }

    public int Capacity { get; }
    public int Count { get; private set; }
    public int SlotCount => _slotCount;

    /// <summary>Where the slots lie in memory and how many bytes they take, for a host that backs them with huge pages.</summary>
    public (nint Address, long Length) SlotMemory => ((nint)_slots, (long)_slotCount * sizeof(Connection<TAddress>));

    /// <summary>The entry in <paramref name="slot"/> (valid until the next insert or removal).</summary>
    public ref Connection<TAddress> At(int slot)
    {
        // The one bounds check left: every slot inside this class comes masked.
        if ((uint)slot >= (uint)_slotCount)
        {
            ThrowSlotOutOfRange(slot);
        }
        return ref _slots[slot];
    }

    [DoesNotReturn]
    private static void ThrowSlotOutOfRange(int slot) => throw new ArgumentOutOfRangeException(nameof(slot), slot, "No such slot.");

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
    /// Asks the CPU to start loading the slots where the probe for <paramref name="key"/> begins, so that a later
    /// <see cref="Find"/> for it does not wait on memory. A hint only: it reads nothing, changes nothing and cannot
    /// fault. A worker calls it for a frame a few places ahead in its batch, which overlaps the table's cache
    /// misses (with a million connections nearly every lookup misses) instead of taking them one after another.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Prefetch(in ConnectionKey<TAddress> key)
    {
        if (Sse.IsSupported)
        {
            // An IPv4 entry is one cache line (the slots are line-aligned); an IPv6 entry (112 bytes) spans two or
            // three, and a lookup reads its first line (addresses) and its last (hash, ports, flags): ask for every
            // line of the first PrefetchSlots entries. (The last slot's successor is slot 0, not the next address: a
            // probe that wraps, one home slot in millions, is left to miss; a hint past the end cannot fault.)
            byte* entry = (byte*)(_slots + ((int)HashOf(key) & _mask));
            int size = sizeof(Connection<TAddress>) * PrefetchSlots; // a constant per family: the loop unrolls
            for (int line = 0; line < size; line += CacheLine)
            {
                Sse.Prefetch0(entry + line);
            }
            if (size % CacheLine != 0)
            {
                Sse.Prefetch0(entry + (size - 1));
            }
        }
    }

    /// <summary>The slot holding <paramref name="key"/>, or -1.</summary>
    public int Find(in ConnectionKey<TAddress> key)
    {
        uint hash = HashOf(key);
        int slot = (int)hash & _mask;
        Connection<TAddress>* slots = _slots;
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
        Connection<TAddress>* slots = _slots;
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
        Connection<TAddress>* slots = _slots;
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
        for (int slot = 0; slot < _slotCount; slot++)
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
        foreach (ref readonly Connection<TAddress> entry in new ReadOnlySpan<Connection<TAddress>>(_slots, _slotCount))
        {
            if ((entry.Flags & ConnectionFlags.Used) != 0 && !entry.IsReplyLink)
            {
                list.Add(entry);
            }
        }
        return list;
    }
}
