using System.Runtime.CompilerServices;

namespace UserspaceDr.Io.Xdp;

/// <summary>
/// One of an AF_XDP socket's four single-producer, single-consumer rings, mapped from the kernel: the indices run
/// freely and wrap at 2^32, an entry lives at index &amp; mask. libxdp's xsk.h has these operations as static inline
/// functions, which no foreign-function call can reach; this is their C# form, with the same caching of the other
/// side's index (read from shared memory only when the cached value says the ring is empty or full), an acquire
/// read of the other side's index before entries are read, and a release write of our index after they are written.
/// </summary>
internal unsafe struct XdpRing
{
    private readonly uint* _producer;
    private readonly uint* _consumer;
    private readonly uint* _flags;
    private readonly byte* _entries;
    private readonly uint _mask;
    private readonly uint _size;
    private uint _cachedProducer;
    private uint _cachedConsumer;

    internal XdpRing(byte* mapped, in Linux.Interop.XdpRingOffset offsets, uint size, bool producerSide)
    {
        _producer = (uint*)(mapped + offsets.Producer);
        _consumer = (uint*)(mapped + offsets.Consumer);
        _flags = (uint*)(mapped + offsets.Flags);
        _entries = mapped + offsets.Descriptors;
        _size = size;
        _mask = size - 1;
        _cachedProducer = Volatile.Read(ref *_producer);
        _cachedConsumer = Volatile.Read(ref *_consumer);
        if (producerSide)
        {
            // As xsk.h: a producer's cached consumer runs one ring ahead, so that free = cached consumer − producer.
            _cachedConsumer += size;
        }
    }

    /// <summary>The kernel asks for a syscall before it goes on with this ring (XDP_USE_NEED_WAKEUP).</summary>
    internal readonly bool NeedsWakeup => (Volatile.Read(ref *_flags) & Linux.Interop.XDP_RING_NEED_WAKEUP) != 0;

    internal readonly uint Size => _size;

    /// <summary>Producer side: how many of <paramref name="wanted"/> entries can be written now, from index <paramref name="first"/>.</summary>
    internal uint Reserve(uint wanted, out uint first)
    {
        uint free = _cachedConsumer - _cachedProducer;
        if (free < wanted)
        {
            _cachedConsumer = Volatile.Read(ref *_consumer) + _size;
            free = _cachedConsumer - _cachedProducer;
        }
        first = _cachedProducer;
        uint granted = Math.Min(free, wanted);
        _cachedProducer += granted;
        return granted;
    }

    /// <summary>Producer side: entries handed to the kernel that it has not taken yet.</summary>
    internal readonly uint Unconsumed => _cachedProducer - Volatile.Read(ref *_consumer);

    /// <summary>Producer side: hands the reserved entries to the kernel.</summary>
    internal readonly void Submit() => Volatile.Write(ref *_producer, _cachedProducer);

    /// <summary>Consumer side: entries wait to be read (one read of the producer index, nothing taken).</summary>
    internal readonly bool HasEntries => Volatile.Read(ref *_producer) != _cachedConsumer;

    /// <summary>Consumer side: how many entries (at most <paramref name="wanted"/>) are ready to read, from index <paramref name="first"/>.</summary>
    internal uint Peek(uint wanted, out uint first)
    {
        uint available = _cachedProducer - _cachedConsumer;
        if (available == 0)
        {
            _cachedProducer = Volatile.Read(ref *_producer);
            available = _cachedProducer - _cachedConsumer;
        }
        first = _cachedConsumer;
        return Math.Min(available, wanted);
    }

    /// <summary>Consumer side: gives <paramref name="count"/> read entries back to the kernel.</summary>
    internal void Release(uint count)
    {
        _cachedConsumer += count;
        Volatile.Write(ref *_consumer, _cachedConsumer);
    }

    /// <summary>The UMEM address at a fill or completion ring index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal readonly ref ulong Address(uint index) => ref ((ulong*)_entries)[index & _mask];

    /// <summary>The descriptor at an RX or TX ring index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal readonly ref Linux.Interop.XdpDescriptor Descriptor(uint index) => ref ((Linux.Interop.XdpDescriptor*)_entries)[index & _mask];
}
