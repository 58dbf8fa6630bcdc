using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// Receives every frame of one interface (ETH_P_ALL) through a memory-mapped ring and hands them out in batches:
/// <see cref="WaitForBlock"/> → <c>foreach (RxFrame f in ring.CurrentBlockFrames)</c> → <see cref="ReleaseBlock"/>.
/// Frames are processed in place; no copy, no allocation, and no syscall while frames are waiting.
/// </summary>
/// <remarks>
/// <para>Two ring layouts (<see cref="PacketRxRingOptions.Version"/>):</para>
/// <list type="bullet">
/// <item>TPACKET_V3: a batch is one block of packed frames, handed over when full or when the retire timer fires.
/// Fewest wakeups under load; at low load every frame waits up to the retire timeout.</item>
/// <item>TPACKET_V2: fixed-size slots, each with its own tp_status. A batch is the run of consecutive slots the kernel
/// has handed over (bounded by <see cref="PacketRxRingOptions.MaxBatchFrames"/>); the kernel hands over and wakes
/// per frame, so a lone frame is seen at once.</item>
/// </list>
/// <para>Kernel facts this class is built around:</para>
/// <list type="bullet">
/// <item>An ETH_P_ALL socket sees frames before tc / nftables ingress hooks, so the host's own stack can be told
/// to drop service traffic there while udr still gets it.</item>
/// <item>It also sees this host's own outgoing frames (including what udr transmits): PACKET_IGNORE_OUTGOING keeps
/// them out of the ring instead of looping them back into the data plane.</item>
/// <item>Frames arrive with unfinished checksums (CHECKSUM_PARTIAL → TP_STATUS_CSUMNOTREADY) and as GSO
/// super-frames larger than the MTU across veth/GRO. PACKET_VNET_HDR puts a virtio_net_hdr before each frame that
/// describes both, so a transmit with the same header lets the kernel finish the job.</item>
/// <item>The kernel strips a received 802.1Q tag into tp_vlan_tci. It is put back in place by default so that a
/// frame re-emitted from the ring carries its tag.</item>
/// <item>PACKET_RESERVE leaves room before every frame, so headers can be prepended in place (the tag above, an
/// IPIP outer header later) without copying the frame.</item>
/// </list>
/// <para>One instance belongs to one worker thread: nothing here is synchronized.</para>
/// </remarks>
public sealed unsafe class PacketRxRing : IDisposable
{
    private const int VlanTagLength = 4;
    private const ushort DefaultVlanTpid = 0x8100;

    private readonly SafeDescriptorHandle _socket;
    private readonly int _fd;
    private readonly byte* _ring;
    private readonly nuint _ringLength;
    private readonly int _blockSize;
    private readonly int _blockCount;
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;

    // TPACKET_V3: the block user space reads next, and the one it holds.
    private int _blockIndex;
    private byte* _heldBlock;

    // TPACKET_V2: the address of every slot (the kernel's frame order), the slot read next and how many from it are held.
    private readonly nint[]? _slots;
    private readonly int _maxBatchFrames;
    private int _slotIndex;
    private int _heldSlots;
    private bool _socketReferenced;
    private bool _disposed;

    public PacketRxRing(PacketRxRingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        InterfaceIndex = PacketSocket.InterfaceIndex(options.InterfaceName);
        _blockSize = options.BlockSize;
        _blockCount = options.BlockCount;
        _virtioNetHeaderLength = options.VirtioNetHeader ? VirtioNetHeader.Size : 0;
        _reinsertVlanTags = options.ReinsertVlanTags;
        Version = options.Version;
        Options = options;

        _socket = PacketSocket.Open();
        try
        {
            // Order matters: version, reserve and vnet header must be set before the ring exists (EBUSY after);
            // the filter before bind; fanout after bind (the kernel only lets a bound socket join).
            PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_VERSION,
                Version == RingVersion.V2 ? Interop.TPACKET_V2 : Interop.TPACKET_V3, "PACKET_VERSION");
            PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_RESERVE, options.MinimumHeadroom, "PACKET_RESERVE");
            if (options.VirtioNetHeader)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
            }
            if (options.CopyOversizedFrames)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_COPY_THRESH, 1, "PACKET_COPY_THRESH");
                PacketSocket.SetOption(_socket, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, options.CopyBufferBytes, "SO_RCVBUFFORCE");
            }
            options.Filter?.Attach(_socket, Interop.SOL_SOCKET, Interop.SO_ATTACH_FILTER);

            int framesPerBlock = options.BlockSize / options.FrameSize;
            int frameCount = framesPerBlock * options.BlockCount;
            int result;
            if (Version == RingVersion.V2)
            {
                var request = new Interop.TPacketReq
                {
                    BlockSize = (uint)options.BlockSize,
                    BlockCount = (uint)options.BlockCount,
                    FrameSize = (uint)options.FrameSize,
                    FrameCount = (uint)frameCount,
                };
                result = Interop.SetSockOpt(_socket, Interop.SOL_PACKET, Interop.PACKET_RX_RING, &request, (uint)sizeof(Interop.TPacketReq));
            }
            else
            {
                var request = new Interop.TPacketReq3
                {
                    BlockSize = (uint)options.BlockSize,
                    BlockCount = (uint)options.BlockCount,
                    FrameSize = (uint)options.FrameSize,
                    FrameCount = (uint)frameCount,
                    RetireBlockTimeoutMs = (uint)options.RetireTimeoutMs,
                };
                result = Interop.SetSockOpt(_socket, Interop.SOL_PACKET, Interop.PACKET_RX_RING, &request, (uint)sizeof(Interop.TPacketReq3));
            }
            if (result != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "setsockopt PACKET_RX_RING failed");
            }
            _ringLength = (nuint)options.BlockSize * (nuint)options.BlockCount;
            nint mapped = Interop.Mmap(0, _ringLength, Interop.PROT_READ | Interop.PROT_WRITE, Interop.MAP_SHARED, _socket, 0);
            if (mapped == Interop.MAP_FAILED)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), "mmap of the RX ring failed");
            }
            _ring = (byte*)mapped;
            if (Version == RingVersion.V2)
            {
                // The kernel's frame i lives in block i / framesPerBlock at slot i % framesPerBlock (packet_lookup_frame);
                // the blocks are mapped back to back. The tail of a block that holds no whole slot stays unused.
                _slots = new nint[frameCount];
                for (int i = 0; i < frameCount; i++)
                {
                    _slots[i] = (nint)(_ring + ((nint)(i / framesPerBlock) * options.BlockSize) + ((nint)(i % framesPerBlock) * options.FrameSize));
                }
                _maxBatchFrames = Math.Max(1, Math.Min(options.MaxBatchFrames, frameCount / 2));
            }

            if (options.IgnoreOutgoing)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_IGNORE_OUTGOING, 1, "PACKET_IGNORE_OUTGOING");
            }
            PacketSocket.Bind(_socket, InterfaceIndex, Interop.ETH_P_ALL_BE);
            if (options.Promiscuous)
            {
                var membership = new Interop.PacketMreq { InterfaceIndex = InterfaceIndex, Type = Interop.PACKET_MR_PROMISC };
                if (Interop.SetSockOpt(_socket, Interop.SOL_PACKET, Interop.PACKET_ADD_MEMBERSHIP, &membership, (uint)sizeof(Interop.PacketMreq)) != 0)
                {
                    throw new Win32Exception(Marshal.GetLastPInvokeError(), "setsockopt PACKET_ADD_MEMBERSHIP (promiscuous) failed");
                }
            }
            if (options.Fanout is { } fanout)
            {
                int argument = fanout.GroupId | ((int)fanout.Mode | (int)fanout.Flags) << 16;
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_FANOUT, argument, "PACKET_FANOUT");
                if (fanout.Mode == FanoutMode.ClassicBpf)
                {
                    (fanout.Program ?? throw new ArgumentException("FanoutMode.ClassicBpf needs a Program", nameof(options)))
                        .Attach(_socket, Interop.SOL_PACKET, Interop.PACKET_FANOUT_DATA);
                }
            }

            // poll() runs on the hot path: hold one reference for the ring's lifetime and pass the raw descriptor.
            _socket.DangerousAddRef(ref _socketReferenced);
            _fd = _socket.Fd;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public PacketRxRingOptions Options { get; }

    public RingVersion Version { get; }

    public int InterfaceIndex { get; }

    /// <summary>True while a batch is held (between a successful <see cref="WaitForBlock"/> and <see cref="ReleaseBlock"/>).</summary>
    public bool HoldsBlock => _heldBlock != null || _heldSlots != 0;

    /// <summary>Frames wait to be held (<see cref="TryHoldBatch"/> would hold some): one read of a status word, no syscall.</summary>
    public bool HasFrames => HoldsBlock || BelongsToUser(_slots != null
        ? (byte*)_slots[_slotIndex] + Interop.Tpacket2Header.Status
        : _ring + ((nint)_blockIndex * _blockSize) + Interop.BlockDescriptor.BlockStatus);

    /// <summary>
    /// Waits until frames are handed to user space and holds them as the current batch: V3, the next block (full, or
    /// retired by the timeout); V2, the run of consecutive slots the kernel has filled, as soon as there is one.
    /// Frames already waiting are taken without a syscall. Returns false when none came within
    /// <paramref name="timeoutMs"/> (0: do not wait, -1: wait forever) or the wait was interrupted. Returns true at
    /// once while a batch is still held.
    /// </summary>
    public bool WaitForBlock(int timeoutMs)
    {
        if (HoldsBlock)
        {
            return true;
        }
        if (_slots != null)
        {
            return WaitForSlots(timeoutMs);
        }
        byte* block = _ring + (nint)_blockIndex * _blockSize;
        if (!BelongsToUser(block + Interop.BlockDescriptor.BlockStatus))
        {
            Poll(timeoutMs);
            if (!BelongsToUser(block + Interop.BlockDescriptor.BlockStatus))
            {
                return false;
            }
        }
        _heldBlock = block;
        return true;
    }

    /// <summary>
    /// Holds the frames already handed to user space as the current batch, without any syscall; false when there are
    /// none. With several rings: <see cref="TryHoldBatch"/> on each, then <see cref="PollAny"/> when none had frames.
    /// </summary>
    public bool TryHoldBatch()
    {
        if (HoldsBlock)
        {
            return true;
        }
        if (_slots != null)
        {
            if (!BelongsToUser((byte*)_slots[_slotIndex] + Interop.Tpacket2Header.Status))
            {
                return false;
            }
            HoldReadySlots();
            return true;
        }
        byte* block = _ring + (nint)_blockIndex * _blockSize;
        if (!BelongsToUser(block + Interop.BlockDescriptor.BlockStatus))
        {
            return false;
        }
        _heldBlock = block;
        return true;
    }

    /// <summary>
    /// One poll() over several rings: returns when any of them has frames (or an error), or after
    /// <paramref name="timeoutMs"/>. Call it only after <see cref="TryHoldBatch"/> found every ring empty; the kernel
    /// reports POLLIN from the moment it hands over the slot a reader waits on, so no wakeup is lost in between.
    /// </summary>
    public static void PollAny(ReadOnlySpan<PacketRxRing> rings, int timeoutMs)
    {
        if (rings.Length > MaxPolledRings)
        {
            throw new ArgumentException($"at most {MaxPolledRings} rings", nameof(rings));
        }
        Interop.PollFd* fds = stackalloc Interop.PollFd[rings.Length];
        for (int i = 0; i < rings.Length; i++)
        {
            fds[i] = new Interop.PollFd { Fd = rings[i]._fd, Events = Interop.POLLIN | Interop.POLLERR };
        }
        if (Interop.Poll(fds, (nuint)rings.Length, timeoutMs) <= 0)
        {
            return; // timed out or interrupted: the caller loops
        }
        for (int i = 0; i < rings.Length; i++)
        {
            if ((fds[i].ReturnedEvents & Interop.POLLERR) != 0)
            {
                rings[i].TakeSocketError();
            }
        }
    }

    /// <summary>Most rings one <see cref="PollAny"/> waits on (one per link of a worker).</summary>
    public const int MaxPolledRings = 128;

    private bool WaitForSlots(int timeoutMs)
    {
        nint[] slots = _slots!;
        int index = _slotIndex;
        if (!BelongsToUser((byte*)slots[index] + Interop.Tpacket2Header.Status))
        {
            // The kernel reports POLLIN while the slot before its write position still belongs to user space, i.e.
            // from the moment it hands over the slot this reader waits on: no wakeup is lost between check and poll.
            Poll(timeoutMs);
            if (!BelongsToUser((byte*)slots[index] + Interop.Tpacket2Header.Status))
            {
                return false;
            }
        }
        HoldReadySlots();
        return true;
    }

    /// <summary>Holds the run of ready slots from the read position (the first is known to be ready).</summary>
    private void HoldReadySlots()
    {
        nint[] slots = _slots!;
        int index = _slotIndex;
        // The batch is fixed here, so that ReleaseBlock returns exactly the frames the caller saw.
        int held = 1;
        index = index + 1 == slots.Length ? 0 : index + 1;
        while (held < _maxBatchFrames && BelongsToUser((byte*)slots[index] + Interop.Tpacket2Header.Status))
        {
            held++;
            index = index + 1 == slots.Length ? 0 : index + 1;
        }
        _heldSlots = held;
    }

    private void Poll(int timeoutMs)
    {
        var pollFd = new Interop.PollFd { Fd = _fd, Events = Interop.POLLIN | Interop.POLLERR };
        // Interrupted or timed out: both mean "nothing now"; the caller loops.
        int ready = Interop.Poll(&pollFd, 1, timeoutMs);
        if (ready > 0 && (pollFd.ReturnedEvents & Interop.POLLERR) != 0)
        {
            // A pending socket error (e.g. ENETDOWN when the interface went down) keeps poll() returning at
            // once; reading SO_ERROR clears it, so the next wait really waits.
            TakeSocketError();
        }
    }

    /// <summary>Frames of the held batch (empty when none is held). Valid until <see cref="ReleaseBlock"/>.</summary>
    public RxBlockFrames CurrentBlockFrames => _heldSlots != 0
        ? new RxBlockFrames(_slots, _slotIndex, _heldSlots, _virtioNetHeaderLength, _reinsertVlanTags)
        : _heldBlock == null
            ? default
            : new RxBlockFrames(_heldBlock, _virtioNetHeaderLength, _reinsertVlanTags);

    /// <summary>Number of frames in the held batch; 0 when none is held.</summary>
    public int CurrentBlockFrameCount => _heldSlots != 0
        ? _heldSlots
        : _heldBlock == null ? 0 : (int)ReadUInt32(_heldBlock, Interop.BlockDescriptor.PacketCount);

    /// <summary>
    /// Hands the held batch back to the kernel. Every frame pointer into it is dead afterwards: flush any
    /// transmit batch that points into it first.
    /// </summary>
    public void ReleaseBlock()
    {
        if (_heldSlots != 0)
        {
            nint[] slots = _slots!;
            int index = _slotIndex;
            for (int i = 0; i < _heldSlots; i++)
            {
                // Release store per slot: all reads and in-place writes of the frame happen before the kernel may
                // refill the slot. Oldest first, the order in which the kernel will want them back.
                Volatile.Write(ref *(uint*)((byte*)slots[index] + Interop.Tpacket2Header.Status), Interop.TP_STATUS_KERNEL);
                index = index + 1 == slots.Length ? 0 : index + 1;
            }
            _slotIndex = index;
            _heldSlots = 0;
            return;
        }
        if (_heldBlock == null)
        {
            return;
        }
        // Release store: all reads and in-place writes of the block's frames happen before the kernel may refill it.
        Volatile.Write(ref *(uint*)(_heldBlock + Interop.BlockDescriptor.BlockStatus), Interop.TP_STATUS_KERNEL);
        _heldBlock = null;
        _blockIndex = _blockIndex + 1 == _blockCount ? 0 : _blockIndex + 1;
    }

    /// <summary>Socket errors poll() reported (each read and cleared through SO_ERROR).</summary>
    public long SocketErrors { get; private set; }

    /// <summary>errno of the last socket error poll() reported; 0 when none.</summary>
    public int LastSocketError { get; private set; }

    private void TakeSocketError()
    {
        int error = 0;
        uint length = sizeof(int);
        if (Interop.GetSockOpt(_socket, Interop.SOL_SOCKET, Interop.SO_ERROR, &error, &length) == 0 && error != 0)
        {
            SocketErrors++;
            LastSocketError = error;
        }
    }

    /// <summary>
    /// Replaces the socket filter (SO_ATTACH_FILTER swaps it atomically in the kernel), e.g. when a reload adds a VIP.
    /// Safe to call from another thread than the one reading the ring.
    /// </summary>
    public void ReplaceFilter(ClassicBpfProgram filter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ObjectDisposedException.ThrowIf(_disposed, this);
        filter.Attach(_socket, Interop.SOL_SOCKET, Interop.SO_ATTACH_FILTER);
    }

    /// <summary>
    /// Replaces the steering program of the PACKET_FANOUT_CBPF group this ring belongs to (PACKET_FANOUT_DATA): one call
    /// on any member changes it for the whole group, atomically (RCU in the kernel). Safe from another thread.
    /// </summary>
    public void ReplaceFanoutProgram(ClassicBpfProgram program)
    {
        ArgumentNullException.ThrowIfNull(program);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Options.Fanout?.Mode != FanoutMode.ClassicBpf)
        {
            throw new InvalidOperationException("the ring is not in a PACKET_FANOUT_CBPF group");
        }
        program.Attach(_socket, Interop.SOL_PACKET, Interop.PACKET_FANOUT_DATA);
    }

    /// <summary>
    /// The whole of <paramref name="truncated"/>, a frame its slot holds cut short with <see cref="PacketStatus.Copy"/>
    /// (<see cref="PacketRxRingOptions.CopyOversizedFrames"/>): the kernel queued a full copy on the socket, in ring
    /// order, so the next queued datagram is this frame's. It is read into <paramref name="buffer"/> (pinned, at least
    /// <paramref name="headroom"/> + 4 + the virtio_net_hdr + the frame) with <paramref name="headroom"/> writable
    /// bytes before its MAC header (and the virtio_net_hdr), a stripped VLAN tag put back as in the ring. Null when no
    /// copy is queued or it does not fit: the caller drops the frame as truncated.
    /// </summary>
    public RxFrame? ReceiveCopy(in RxFrame truncated, byte* buffer, int bufferLength, int headroom)
    {
        if ((truncated.Status & PacketStatus.Copy) == 0)
        {
            return null;
        }
        // Received 4 bytes in, so a tag can be put back by moving the MAC addresses (and the vnet header) forward.
        byte* start = buffer + headroom + VlanTagLength;
        int room = bufferLength - headroom - VlanTagLength;
        nint received = Interop.Recv(_fd, start, (nuint)room, Interop.MSG_DONTWAIT | Interop.MSG_TRUNC);
        if (received <= _virtioNetHeaderLength || received > room)
        {
            return null;
        }
        byte* mac = start + _virtioNetHeaderLength;
        int length = (int)received - _virtioNetHeaderLength;
        // The slot's head was tagged by ReadFrame when the kernel had stripped one: the copy lacks it too.
        if (_reinsertVlanTags && (truncated.Status & PacketStatus.VlanValid) != 0 && length >= 12 && truncated.Length >= 16)
        {
            ushort tpid = BinaryPrimitives.ReadUInt16BigEndian(new ReadOnlySpan<byte>(truncated.Mac + 12, 2));
            mac = InsertTag(mac, _virtioNetHeaderLength, tpid, truncated.VlanTci);
            length += VlanTagLength;
        }
        return new RxFrame(mac, length, length, (int)(mac - buffer) - _virtioNetHeaderLength, truncated.Status & ~PacketStatus.Copy,
            truncated.VlanTci, _virtioNetHeaderLength == 0 ? null : (VirtioNetHeader*)(mac - VirtioNetHeader.Size));
    }

    /// <summary>Reads the kernel's counters for this socket; reading resets them (PACKET_STATISTICS).</summary>
    public PacketRingStatistics ReadAndResetStatistics()
    {
        Interop.TPacketStatsV3 stats = default;
        uint length = (uint)sizeof(Interop.TPacketStatsV3);
        if (Interop.GetSockOpt(_socket, Interop.SOL_PACKET, Interop.PACKET_STATISTICS, &stats, &length) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "getsockopt PACKET_STATISTICS failed");
        }
        return new PacketRingStatistics(stats.Packets, stats.Drops, stats.FreezeQueueCount);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_ring != null)
        {
            _ = Interop.Munmap((nint)_ring, _ringLength);
        }
        if (_socketReferenced)
        {
            _socket.DangerousRelease();
            _socketReferenced = false;
        }
        _socket.Dispose();
    }

    private static void Validate(PacketRxRingOptions options)
    {
        int pageSize = Environment.SystemPageSize;
        if (options.BlockSize <= 0 || options.BlockSize % pageSize != 0 || !int.IsPow2(options.BlockSize / pageSize))
        {
            throw new ArgumentException($"BlockSize must be a power-of-two number of {pageSize}-byte pages, not {options.BlockSize}", nameof(options));
        }
        if (options.BlockCount <= 0 || (long)options.BlockSize * options.BlockCount > int.MaxValue)
        {
            throw new ArgumentException($"BlockCount {options.BlockCount} is out of range", nameof(options));
        }
        if (options.Version is not (RingVersion.V2 or RingVersion.V3))
        {
            throw new ArgumentException($"Version {options.Version} is not supported", nameof(options));
        }
        if (options.Version == RingVersion.V2)
        {
            // tpacket2 slots: fixed size, whole slots per block (the kernel wastes a block's tail rather than split one).
            if (options.FrameSize < Interop.Tpacket2Header.HeaderAndAddressLength + options.MinimumHeadroom
                || options.FrameSize % Interop.TPACKET_ALIGNMENT != 0 || options.FrameSize > options.BlockSize)
            {
                throw new ArgumentException($"FrameSize {options.FrameSize} must be 16-aligned, at most BlockSize and hold the headers and headroom", nameof(options));
            }
            if (options.MaxBatchFrames <= 0)
            {
                throw new ArgumentException($"MaxBatchFrames must be positive, not {options.MaxBatchFrames}", nameof(options));
            }
        }
        else if (options.FrameSize < Interop.Tpacket3Header.HeaderAndAddressLength + options.MinimumHeadroom
            || options.FrameSize % Interop.TPACKET_ALIGNMENT != 0 || options.BlockSize % options.FrameSize != 0)
        {
            throw new ArgumentException($"FrameSize {options.FrameSize} must be 16-aligned, divide BlockSize and hold the headers and headroom", nameof(options));
        }
        if (options.MinimumHeadroom is < VlanTagLength or > 1024)
        {
            throw new ArgumentException($"MinimumHeadroom must be 4 to 1024 bytes, not {options.MinimumHeadroom}", nameof(options));
        }
        if (options.RetireTimeoutMs < 0)
        {
            throw new ArgumentException("RetireTimeoutMs must not be negative", nameof(options));
        }
    }

    /// <summary>Acquire load of a block's or slot's status word: the frame bytes read after it are the kernel's finished ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool BelongsToUser(byte* status) => (Volatile.Read(ref *(uint*)status) & Interop.TP_STATUS_USER) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint ReadUInt32(byte* at, int offset) => Unsafe.ReadUnaligned<uint>(at + offset);

    /// <summary>
    /// Turns one tpacket3_hdr or tpacket2_hdr into an <see cref="RxFrame"/>, first moving a stripped VLAN tag back
    /// into the bytes. The move is recorded in the header (tp_mac, tp_snaplen, tp_len, and a mark in tp_padding,
    /// which the kernel zeroes on every fill), so enumerating a batch twice never inserts a tag twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static RxFrame ReadFrame<TLayout>(byte* header, int virtioNetHeaderLength, bool reinsertVlanTags)
        where TLayout : struct, IFrameHeaderLayout
    {
        var status = (PacketStatus)ReadUInt32(header, TLayout.Status);
        // V3's tp_vlan_tci is a u32, V2's a u16: the low 16 bits (little-endian) are the TCI in both.
        ushort vlanTci = Unsafe.ReadUnaligned<ushort>(header + TLayout.VlanTci);
        if (reinsertVlanTags && (status & PacketStatus.VlanValid) != 0 && header[TLayout.Padding] == 0)
        {
            ReinsertVlanTag<TLayout>(header, status, vlanTci, virtioNetHeaderLength);
        }
        int mac = Unsafe.ReadUnaligned<ushort>(header + TLayout.MacOffset);
        byte* macPointer = header + mac;
        return new RxFrame(
            macPointer,
            (int)ReadUInt32(header, TLayout.SnapLength),
            (int)ReadUInt32(header, TLayout.WireLength),
            mac - TLayout.HeaderAndAddressLength - virtioNetHeaderLength,
            status,
            vlanTci,
            virtioNetHeaderLength == 0 ? null : (VirtioNetHeader*)(macPointer - VirtioNetHeader.Size));
    }

    private static void ReinsertVlanTag<TLayout>(byte* header, PacketStatus status, ushort vlanTci, int virtioNetHeaderLength)
        where TLayout : struct, IFrameHeaderLayout
    {
        int mac = Unsafe.ReadUnaligned<ushort>(header + TLayout.MacOffset);
        uint snapLength = ReadUInt32(header, TLayout.SnapLength);
        int headroom = mac - TLayout.HeaderAndAddressLength - virtioNetHeaderLength;
        if (snapLength < 12 || headroom < VlanTagLength)
        {
            return; // cannot happen with PACKET_RESERVE ≥ 4 and a real Ethernet frame; leave the frame as the kernel gave it
        }
        ushort tpid = (status & PacketStatus.VlanTpidValid) != 0
            ? Unsafe.ReadUnaligned<ushort>(header + TLayout.VlanTpid)
            : DefaultVlanTpid;
        InsertTag(header + mac, virtioNetHeaderLength, tpid, vlanTci);

        Unsafe.WriteUnaligned(header + TLayout.MacOffset, (ushort)(mac - VlanTagLength));
        Unsafe.WriteUnaligned(header + TLayout.SnapLength, snapLength + VlanTagLength);
        Unsafe.WriteUnaligned(header + TLayout.WireLength, ReadUInt32(header, TLayout.WireLength) + VlanTagLength);
        header[TLayout.Padding] = 1;
    }

    /// <summary>
    /// Puts an 802.1Q tag back after the MAC addresses of the frame at <paramref name="oldMac"/>, moving the addresses
    /// (and the virtio_net_hdr before them) 4 bytes toward the headroom; returns the frame's new start.
    /// </summary>
    private static byte* InsertTag(byte* oldMac, int virtioNetHeaderLength, ushort tpid, ushort vlanTci)
    {
        byte* newMac = oldMac - VlanTagLength;
        // Destination and source MAC (12 bytes) move 4 bytes toward the headroom; read both parts before writing,
        // because source and destination overlap.
        ulong macHead = Unsafe.ReadUnaligned<ulong>(oldMac);
        uint macTail = Unsafe.ReadUnaligned<uint>(oldMac + 8);
        if (virtioNetHeaderLength != 0)
        {
            // The virtio_net_hdr must stay right before the MAC header. Its checksum start counts from the MAC header
            // and the kernel computed it for the untagged frame (vlan_hlen 0 in tpacket_rcv), so it moves by 4 too,
            // as does the linear-header-length hint.
            var vnet = Unsafe.ReadUnaligned<VirtioNetHeader>(oldMac - VirtioNetHeader.Size);
            if (vnet.NeedsChecksum)
            {
                vnet.ChecksumStart += VlanTagLength;
            }
            if (vnet.HeaderLength != 0)
            {
                vnet.HeaderLength += VlanTagLength;
            }
            Unsafe.WriteUnaligned(newMac - VirtioNetHeader.Size, vnet);
        }
        Unsafe.WriteUnaligned(newMac, macHead);
        Unsafe.WriteUnaligned(newMac + 8, macTail);
        BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(newMac + 12, 4), tpid);
        BinaryPrimitives.WriteUInt16BigEndian(new Span<byte>(newMac + 14, 2), vlanTci);
        return newMac;
    }
}

/// <summary>Where the fields <see cref="PacketRxRing"/> reads sit in a ring version's per-frame header.</summary>
internal interface IFrameHeaderLayout
{
    static abstract int Status { get; }
    static abstract int WireLength { get; }
    static abstract int SnapLength { get; }
    static abstract int MacOffset { get; }
    static abstract int VlanTci { get; }
    static abstract int VlanTpid { get; }
    static abstract int Padding { get; }
    static abstract int HeaderAndAddressLength { get; }
}

/// <summary>struct tpacket2_hdr (TPACKET_V2 slots).</summary>
internal readonly struct Tpacket2Layout : IFrameHeaderLayout
{
    public static int Status => Interop.Tpacket2Header.Status;
    public static int WireLength => Interop.Tpacket2Header.WireLength;
    public static int SnapLength => Interop.Tpacket2Header.SnapLength;
    public static int MacOffset => Interop.Tpacket2Header.MacOffset;
    public static int VlanTci => Interop.Tpacket2Header.VlanTci;
    public static int VlanTpid => Interop.Tpacket2Header.VlanTpid;
    public static int Padding => Interop.Tpacket2Header.Padding;
    public static int HeaderAndAddressLength => Interop.Tpacket2Header.HeaderAndAddressLength;
}

/// <summary>struct tpacket3_hdr (frames inside TPACKET_V3 blocks).</summary>
internal readonly struct Tpacket3Layout : IFrameHeaderLayout
{
    public static int Status => Interop.Tpacket3Header.Status;
    public static int WireLength => Interop.Tpacket3Header.WireLength;
    public static int SnapLength => Interop.Tpacket3Header.SnapLength;
    public static int MacOffset => Interop.Tpacket3Header.MacOffset;
    public static int VlanTci => Interop.Tpacket3Header.VlanTci;
    public static int VlanTpid => Interop.Tpacket3Header.VlanTpid;
    public static int Padding => Interop.Tpacket3Header.Padding;
    public static int HeaderAndAddressLength => Interop.Tpacket3Header.HeaderAndAddressLength;
}

/// <summary>The frames of the batch (V3 block or V2 run of slots) a <see cref="PacketRxRing"/> holds; use with foreach.</summary>
public readonly unsafe ref struct RxBlockFrames
{
    private readonly byte* _block;
    private readonly nint[]? _slots;
    private readonly int _firstSlot;
    private readonly int _slotCount;
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;

    internal RxBlockFrames(byte* block, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        _block = block;
        _virtioNetHeaderLength = virtioNetHeaderLength;
        _reinsertVlanTags = reinsertVlanTags;
    }

    internal RxBlockFrames(nint[]? slots, int firstSlot, int slotCount, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        _slots = slots;
        _firstSlot = firstSlot;
        _slotCount = slotCount;
        _virtioNetHeaderLength = virtioNetHeaderLength;
        _reinsertVlanTags = reinsertVlanTags;
    }

    public RxFrameEnumerator GetEnumerator() => _slots != null
        ? new(_slots, _firstSlot, _slotCount, _virtioNetHeaderLength, _reinsertVlanTags)
        : new(_block, _virtioNetHeaderLength, _reinsertVlanTags);
}

/// <summary>
/// V3: walks tp_next_offset from frame to frame; V2: walks the held slots in ring order. No allocation, no bounds
/// beyond what the kernel wrote.
/// </summary>
public unsafe ref struct RxFrameEnumerator
{
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;
    private readonly nint[]? _slots;
    private byte* _next;
    private int _slot;
    private int _remaining;
    private RxFrame _current;

    internal RxFrameEnumerator(byte* block, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        _virtioNetHeaderLength = virtioNetHeaderLength;
        _reinsertVlanTags = reinsertVlanTags;
        if (block == null)
        {
            return;
        }
        _remaining = (int)PacketRxRing.ReadUInt32(block, Interop.BlockDescriptor.PacketCount);
        _next = block + PacketRxRing.ReadUInt32(block, Interop.BlockDescriptor.FirstPacketOffset);
    }

    internal RxFrameEnumerator(nint[] slots, int firstSlot, int slotCount, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        _virtioNetHeaderLength = virtioNetHeaderLength;
        _reinsertVlanTags = reinsertVlanTags;
        _slots = slots;
        _slot = firstSlot;
        _remaining = slotCount;
    }

    public readonly RxFrame Current => _current;

    public bool MoveNext()
    {
        if (_remaining == 0)
        {
            return false;
        }
        _remaining--;
        if (_slots != null)
        {
            _current = PacketRxRing.ReadFrame<Tpacket2Layout>((byte*)_slots[_slot], _virtioNetHeaderLength, _reinsertVlanTags);
            _slot = _slot + 1 == _slots.Length ? 0 : _slot + 1;
            return true;
        }
        byte* header = _next;
        _current = PacketRxRing.ReadFrame<Tpacket3Layout>(header, _virtioNetHeaderLength, _reinsertVlanTags);
        _next = header + PacketRxRing.ReadUInt32(header, Interop.Tpacket3Header.NextOffset);
        return true;
    }
}

/// <summary>PACKET_STATISTICS: frames accepted by the filter, frames dropped because the ring was full, freezes (V3 only).</summary>
public readonly record struct PacketRingStatistics(uint Packets, uint Drops, uint FreezeQueueCount);
