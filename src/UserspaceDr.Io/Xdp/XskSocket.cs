using System.ComponentModel;
using System.Runtime.InteropServices;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux;

namespace UserspaceDr.Io.Xdp;

/// <summary>Geometry of an AF_XDP socket and its UMEM.</summary>
/// <param name="InterfaceName">The interface the socket receives from and sends on.</param>
/// <param name="Queue">Its receive queue (the steering program redirects a frame to the socket of the queue it came in on).</param>
public sealed record XskSocketOptions(string InterfaceName, int Queue = 0)
{
    /// <summary>UMEM chunks (frames); a power of two.</summary>
    public int FrameCount { get; init; } = 4096;

    /// <summary>Bytes per chunk: 2048 or 4096 (the page size) in aligned mode.</summary>
    public int FrameSize { get; init; } = 4096;

    /// <summary>Entries of each ring; a power of two.</summary>
    public int RingSize { get; init; } = 2048;
}

/// <summary>
/// An AF_XDP socket with its own UMEM: frames the steering program redirects arrive in the RX ring, already in UMEM
/// chunks udr can change in place and send on through the TX ring, with no copy in user space (the kernel copies once
/// in copy mode, as on veth, and not at all in zero-copy mode). Each chunk is the kernel's or udr's at any time: the
/// kernel owns those in the fill ring (empty, for RX), the RX ring, the TX ring and the completion ring; udr owns the
/// rest, kept on a free stack. A received frame stays udr's until it is transmitted (then its chunk comes back through
/// the completion ring) or released. Every received frame has <see cref="Headroom"/> bytes before it in its chunk
/// (XDP_PACKET_HEADROOM), room for the encapsulation headers the engine prepends.
/// </summary>
/// <remarks>One thread uses a socket: the rings are single-producer, single-consumer, and so is the free stack.</remarks>
public sealed unsafe class XskSocket : IDisposable
{
    /// <summary>XDP_PACKET_HEADROOM: where the kernel puts a received frame in its chunk, and udr a frame of its own.</summary>
    public const int Headroom = 256;

    /// <summary>The largest UMEM chunk udr uses (aligned chunks are at most a page).</summary>
    public const int LargestChunk = 4096;

    /// <summary>Transmit kicks per flush at most: a full ring of 2,048 at 32 per kick, and no more if the kernel makes no progress.</summary>
    private const int MaxKicksPerFlush = 64;

    private readonly SafeDescriptorHandle _socket;
    private readonly int _fd;
    private readonly byte* _umem;
    private readonly nuint _umemLength;
    private readonly ulong _chunkMask;
    private readonly int _frameSize;
    private readonly ulong[] _free;
    private int _freeCount;
    private readonly List<(nint Address, nuint Length)> _mappings = [];
    private XdpRing _fill;
    private XdpRing _completion;
    private XdpRing _rx;
    private XdpRing _tx;
    private uint _txPending;
    private bool _disposed;

    public XskSocket(XskSocketOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.FrameSize is not (2048 or 4096) || !IsPowerOfTwo(options.FrameCount) || !IsPowerOfTwo(options.RingSize)
            || options.RingSize > options.FrameCount)
        {
            throw new ArgumentException($"AF_XDP geometry: frame size 2048 or 4096, frame count and ring size powers of two, ring size ≤ frame count " +
                $"(got {options.FrameSize}, {options.FrameCount}, {options.RingSize})", nameof(options));
        }
        InterfaceName = options.InterfaceName;
        Queue = options.Queue;
        int interfaceIndex = PacketSocket.InterfaceIndex(options.InterfaceName);
        _frameSize = options.FrameSize;
        _chunkMask = ~(ulong)(options.FrameSize - 1);
        _umemLength = (nuint)options.FrameCount * (nuint)options.FrameSize;
        _umem = (byte*)NativeMemory.AlignedAlloc(_umemLength, 4096);
        NativeMemory.Clear(_umem, _umemLength);
        _free = new ulong[options.FrameCount];
        for (int i = options.FrameCount - 1; i >= 0; i--)
        {
            _free[_freeCount++] = (ulong)i * (ulong)options.FrameSize;
        }

        _socket = Interop.Socket(Interop.AF_XDP, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, 0);
        try
        {
            if (_socket.IsInvalid)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "socket(AF_XDP) failed (needs CAP_NET_RAW and a kernel with CONFIG_XDP_SOCKETS)");
            }
            _fd = _socket.Fd;
            var registration = new Interop.XdpUmemReg { Address = (ulong)_umem, Length = _umemLength, ChunkSize = (uint)options.FrameSize };
            SetOption(Interop.XDP_UMEM_REG, &registration, (uint)sizeof(Interop.XdpUmemReg), "XDP_UMEM_REG");
            int ringSize = options.RingSize;
            SetOption(Interop.XDP_UMEM_FILL_RING, &ringSize, sizeof(int), "XDP_UMEM_FILL_RING");
            SetOption(Interop.XDP_UMEM_COMPLETION_RING, &ringSize, sizeof(int), "XDP_UMEM_COMPLETION_RING");
            SetOption(Interop.XDP_RX_RING, &ringSize, sizeof(int), "XDP_RX_RING");
            SetOption(Interop.XDP_TX_RING, &ringSize, sizeof(int), "XDP_TX_RING");
            Interop.XdpMmapOffsets offsets;
            uint length = (uint)sizeof(Interop.XdpMmapOffsets);
            if (Interop.GetSockOpt(_socket, Interop.SOL_XDP, Interop.XDP_MMAP_OFFSETS, &offsets, &length) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "getsockopt XDP_MMAP_OFFSETS failed");
            }
            uint size = (uint)ringSize;
            _fill = new XdpRing(Map(offsets.Fill, size, sizeof(ulong), Interop.XDP_UMEM_PGOFF_FILL_RING), offsets.Fill, size, producerSide: true);
            _completion = new XdpRing(Map(offsets.Completion, size, sizeof(ulong), Interop.XDP_UMEM_PGOFF_COMPLETION_RING), offsets.Completion, size, producerSide: false);
            _rx = new XdpRing(Map(offsets.Rx, size, sizeof(Interop.XdpDescriptor), Interop.XDP_PGOFF_RX_RING), offsets.Rx, size, producerSide: false);
            _tx = new XdpRing(Map(offsets.Tx, size, sizeof(Interop.XdpDescriptor), Interop.XDP_PGOFF_TX_RING), offsets.Tx, size, producerSide: true);

            // The fill ring full before the first frame can arrive; bind then lets frames in.
            Refill();
            var address = new Interop.SockAddrXdp
            {
                Family = Interop.AF_XDP,
                Flags = Interop.XDP_USE_NEED_WAKEUP,
                InterfaceIndex = (uint)interfaceIndex,
                QueueId = (uint)options.Queue,
            };
            if (Interop.Bind(_socket, &address, (uint)sizeof(Interop.SockAddrXdp)) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), $"binding the AF_XDP socket to {options.InterfaceName} queue {options.Queue} failed");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string InterfaceName { get; }

    public int Queue { get; }

    /// <summary>The socket, for the steering program's socket map.</summary>
    internal SafeDescriptorHandle Handle => _socket;

    /// <summary>The descriptor, for poll.</summary>
    public int Descriptor => _fd;

    /// <summary>Bytes per UMEM chunk.</summary>
    public int FrameSize => _frameSize;

    /// <summary>Largest frame a chunk holds after the headroom.</summary>
    public int MaxFrameLength => _frameSize - Headroom;

    /// <summary>Chunks udr holds free (neither in a ring nor in use).</summary>
    public int FreeFrames => _freeCount;

    /// <summary>Frames put on the TX ring.</summary>
    public long Transmitted { get; private set; }

    /// <summary>Frames not sent because the TX ring was full.</summary>
    public long TransmitRingFull { get; private set; }

    /// <summary>Transmit kicks (sendto) made.</summary>
    public long TransmitKicks { get; private set; }

    /// <summary>Where the UMEM address <paramref name="address"/> lies in memory.</summary>
    public byte* Data(ulong address) => _umem + address;

    /// <summary>Received frames wait on the RX ring (<see cref="Receive"/> would take some).</summary>
    public bool HasFrames => _rx.HasEntries;

    /// <summary>
    /// Takes up to <paramref name="frames"/>.Length received frames off the RX ring (each udr's until it is transmitted
    /// or released); how many.
    /// </summary>
    public int Receive(Span<XskFrame> frames)
    {
        uint count = _rx.Peek((uint)frames.Length, out uint first);
        for (uint i = 0; i < count; i++)
        {
            ref Interop.XdpDescriptor descriptor = ref _rx.Descriptor(first + i);
            frames[(int)i] = new XskFrame(descriptor.Address, (int)descriptor.Length);
        }
        if (count != 0)
        {
            _rx.Release(count);
        }
        return (int)count;
    }

    /// <summary>A free chunk for a frame of udr's own (an ARP reply, an ICMP error), its frame starting after the headroom; false when none is free.</summary>
    public bool TryAllocate(out ulong address)
    {
        if (_freeCount == 0)
        {
            address = 0;
            return false;
        }
        address = _free[--_freeCount] + Headroom;
        return true;
    }

    /// <summary>Gives a frame's chunk back (a frame dropped, or one allocated and not sent).</summary>
    public void Release(ulong address) => _free[_freeCount++] = address & _chunkMask;

    /// <summary>
    /// Puts a frame on the TX ring (sent at the next <see cref="Flush"/>): <paramref name="address"/> where it starts in
    /// the UMEM (anywhere in its chunk, headroom used or not), <paramref name="length"/> its bytes. With the ring full
    /// the frame's chunk is released and false returned.
    /// </summary>
    public bool Transmit(ulong address, int length)
    {
        if (_tx.Reserve(1, out uint index) == 0)
        {
            TransmitRingFull++;
            Release(address);
            return false;
        }
        ref Interop.XdpDescriptor descriptor = ref _tx.Descriptor(index);
        descriptor.Address = address;
        descriptor.Length = (uint)length;
        descriptor.Options = 0;
        _txPending++;
        return true;
    }

    /// <summary>
    /// The end of a turn: hands the queued frames to the kernel (and kicks it to send them), takes the sent frames'
    /// chunks back from the completion ring and fills the fill ring from the free chunks.
    /// </summary>
    public void Flush()
    {
        if (_txPending != 0)
        {
            _tx.Submit();
            Transmitted += _txPending;
            _txPending = 0;
        }
        // Copy mode sends only inside a syscall, at most 32 frames per call (TX_BATCH_SIZE in net/xdp/xsk.c, which then
        // answers EAGAIN): kicked until the kernel has taken every queued frame, so that the ring never fills with
        // frames waiting for the next turn. With need_wakeup the kernel says when a kick is needed at all.
        for (int kick = 0; kick < MaxKicksPerFlush && _tx.NeedsWakeup && _tx.Unconsumed != 0; kick++)
        {
            TransmitKicks++;
            _ = Interop.SendTo(_fd, 0, 0, Interop.MSG_DONTWAIT, 0, 0); // EAGAIN: 32 sent, more to go; EBUSY: the kernel is at it
        }
        uint completed = _completion.Peek(_completion.Size, out uint first);
        for (uint i = 0; i < completed; i++)
        {
            Release(_completion.Address(first + i));
        }
        if (completed != 0)
        {
            _completion.Release(completed);
        }
        Refill();
    }

    /// <summary>Waits up to <paramref name="timeoutMilliseconds"/> for frames in the RX ring; true when there are some.</summary>
    public bool Wait(int timeoutMilliseconds)
    {
        var poll = new Interop.PollFd { Fd = _fd, Events = Interop.POLLIN };
        return Interop.Poll(&poll, 1, timeoutMilliseconds) > 0;
    }

    /// <summary>The kernel's counters for this socket (drops for a full RX ring, an empty fill ring, bad descriptors).</summary>
    public XskStatistics Statistics()
    {
        Interop.XdpStatistics statistics;
        uint length = (uint)sizeof(Interop.XdpStatistics);
        if (Interop.GetSockOpt(_socket, Interop.SOL_XDP, Interop.XDP_STATISTICS, &statistics, &length) != 0)
        {
            return default;
        }
        return new XskStatistics((long)statistics.RxDropped, (long)statistics.RxRingFull, (long)statistics.RxFillRingEmptyDescriptors,
            (long)(statistics.RxInvalidDescriptors + statistics.TxInvalidDescriptors));
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _socket?.Dispose();
        foreach ((nint address, nuint length) in _mappings)
        {
            _ = Interop.Munmap(address, length);
        }
        _mappings.Clear();
        if (_umem != null)
        {
            NativeMemory.AlignedFree(_umem);
        }
    }

    /// <summary>Moves free chunks into the fill ring, as many as it takes, waking the kernel when it asks.</summary>
    private void Refill()
    {
        uint granted = _fill.Reserve((uint)_freeCount, out uint first);
        for (uint i = 0; i < granted; i++)
        {
            _fill.Address(first + i) = _free[--_freeCount];
        }
        if (granted != 0)
        {
            _fill.Submit();
        }
    }

    private void SetOption(int option, void* value, uint length, string what)
    {
        if (Interop.SetSockOpt(_socket, Interop.SOL_XDP, option, value, length) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setsockopt {what} failed");
        }
    }

    private byte* Map(in Interop.XdpRingOffset offsets, uint entries, int entrySize, long pageOffset)
    {
        nuint length = (nuint)(offsets.Descriptors + ((ulong)entries * (ulong)entrySize));
        nint mapped = Interop.MmapAt(0, length, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_SHARED | Interop.MAP_POPULATE, _socket, pageOffset);
        if (mapped == Interop.MAP_FAILED)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "mapping an AF_XDP ring failed");
        }
        _mappings.Add((mapped, length));
        return (byte*)mapped;
    }

    private static bool IsPowerOfTwo(int value) => value > 0 && (value & (value - 1)) == 0;
}

/// <summary>A received frame: where it lies in the UMEM and how long it is.</summary>
public readonly record struct XskFrame(ulong Address, int Length);

/// <summary>The kernel's drop counters of an AF_XDP socket (XDP_STATISTICS).</summary>
public readonly record struct XskStatistics(long Dropped, long RxRingFull, long FillRingEmpty, long InvalidDescriptors);
