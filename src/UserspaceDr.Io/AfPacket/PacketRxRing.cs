using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// Receives every frame of one interface (ETH_P_ALL) through a TPACKET_V3 memory-mapped ring: the kernel fills
/// blocks of frames, user space takes a whole block, processes its frames in place and hands the block back.
/// No syscall per frame, no copy, no allocation.
/// </summary>
/// <remarks>
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

    private readonly SafePacketSocketHandle _socket;
    private readonly int _fd;
    private readonly byte* _ring;
    private readonly nuint _ringLength;
    private readonly int _blockSize;
    private readonly int _blockCount;
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;
    private int _blockIndex;
    private byte* _heldBlock;
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
        Options = options;

        _socket = PacketSocket.Open();
        try
        {
            // Order matters: version, reserve and vnet header must be set before the ring exists (EBUSY after);
            // the filter before bind; fanout after bind (the kernel only lets a bound socket join).
            PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_VERSION, Interop.TPACKET_V3, "PACKET_VERSION");
            PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_RESERVE, options.MinimumHeadroom, "PACKET_RESERVE");
            if (options.VirtioNetHeader)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
            }
            options.Filter?.Attach(_socket, Interop.SOL_SOCKET, Interop.SO_ATTACH_FILTER);

            var request = new Interop.TPacketReq3
            {
                BlockSize = (uint)options.BlockSize,
                BlockCount = (uint)options.BlockCount,
                FrameSize = (uint)options.FrameSize,
                FrameCount = (uint)(options.BlockSize / options.FrameSize * options.BlockCount),
                RetireBlockTimeoutMs = (uint)options.RetireTimeoutMs,
            };
            if (Interop.SetSockOpt(_socket, Interop.SOL_PACKET, Interop.PACKET_RX_RING, &request, (uint)sizeof(Interop.TPacketReq3)) != 0)
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

    public int InterfaceIndex { get; }

    /// <summary>True while a block is held (between a successful <see cref="WaitForBlock"/> and <see cref="ReleaseBlock"/>).</summary>
    public bool HoldsBlock => _heldBlock != null;

    /// <summary>
    /// Waits until the next block is handed to user space (full, or retired by the timeout) and holds it.
    /// Returns false when none came within <paramref name="timeoutMs"/> (0: do not wait, -1: wait forever) or the
    /// wait was interrupted. Returns true at once while a block is still held.
    /// </summary>
    public bool WaitForBlock(int timeoutMs)
    {
        if (_heldBlock != null)
        {
            return true;
        }
        byte* block = _ring + (nint)_blockIndex * _blockSize;
        if (!BlockBelongsToUser(block))
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
            if (!BlockBelongsToUser(block))
            {
                return false;
            }
        }
        _heldBlock = block;
        return true;
    }

    /// <summary>Frames of the held block (empty when no block is held). Valid until <see cref="ReleaseBlock"/>.</summary>
    public RxBlockFrames CurrentBlockFrames => _heldBlock == null
        ? default
        : new RxBlockFrames(_heldBlock, _virtioNetHeaderLength, _reinsertVlanTags);

    /// <summary>Number of frames in the held block; 0 when none is held.</summary>
    public int CurrentBlockFrameCount => _heldBlock == null ? 0 : (int)ReadUInt32(_heldBlock, Interop.BlockDescriptor.PacketCount);

    /// <summary>
    /// Hands the held block back to the kernel. Every frame pointer into it is dead afterwards: flush any
    /// transmit batch that points into the block first.
    /// </summary>
    public void ReleaseBlock()
    {
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

    /// <summary>Reads the kernel's counters for this socket; reading resets them (PACKET_STATISTICS).</summary>
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
        if (options.FrameSize < Interop.Tpacket3Header.HeaderAndAddressLength + options.MinimumHeadroom
            || options.FrameSize % 16 != 0 || options.BlockSize % options.FrameSize != 0)
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

    private static bool BlockBelongsToUser(byte* block) =>
        (Volatile.Read(ref *(uint*)(block + Interop.BlockDescriptor.BlockStatus)) & Interop.TP_STATUS_USER) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint ReadUInt32(byte* at, int offset) => Unsafe.ReadUnaligned<uint>(at + offset);

    /// <summary>
    /// Turns one tpacket3_hdr into an <see cref="RxFrame"/>, first moving a stripped VLAN tag back into the bytes.
    /// The move is recorded in the header (tp_mac, tp_snaplen, tp_len, and a mark in tp_padding, which the kernel
    /// zeroes on every fill), so enumerating a block twice never inserts a tag twice.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static RxFrame ReadFrame(byte* header, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        var status = (PacketStatus)ReadUInt32(header, Interop.Tpacket3Header.Status);
        ushort vlanTci = (ushort)ReadUInt32(header, Interop.Tpacket3Header.VlanTci);
        if (reinsertVlanTags && (status & PacketStatus.VlanValid) != 0 && header[Interop.Tpacket3Header.Padding] == 0)
        {
            ReinsertVlanTag(header, status, vlanTci, virtioNetHeaderLength);
        }
        int mac = Unsafe.ReadUnaligned<ushort>(header + Interop.Tpacket3Header.MacOffset);
        byte* macPointer = header + mac;
        return new RxFrame(
            macPointer,
            (int)ReadUInt32(header, Interop.Tpacket3Header.SnapLength),
            (int)ReadUInt32(header, Interop.Tpacket3Header.WireLength),
            mac - Interop.Tpacket3Header.HeaderAndAddressLength - virtioNetHeaderLength,
            status,
            vlanTci,
            virtioNetHeaderLength == 0 ? null : (VirtioNetHeader*)(macPointer - VirtioNetHeader.Size));
    }

    private static void ReinsertVlanTag(byte* header, PacketStatus status, ushort vlanTci, int virtioNetHeaderLength)
    {
        int mac = Unsafe.ReadUnaligned<ushort>(header + Interop.Tpacket3Header.MacOffset);
        uint snapLength = ReadUInt32(header, Interop.Tpacket3Header.SnapLength);
        int headroom = mac - Interop.Tpacket3Header.HeaderAndAddressLength - virtioNetHeaderLength;
        if (snapLength < 12 || headroom < VlanTagLength)
        {
            return; // cannot happen with PACKET_RESERVE ≥ 4 and a real Ethernet frame; leave the frame as the kernel gave it
        }
        byte* oldMac = header + mac;
        byte* newMac = oldMac - VlanTagLength;
        ushort tpid = (status & PacketStatus.VlanTpidValid) != 0
            ? Unsafe.ReadUnaligned<ushort>(header + Interop.Tpacket3Header.VlanTpid)
            : DefaultVlanTpid;

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

        Unsafe.WriteUnaligned(header + Interop.Tpacket3Header.MacOffset, (ushort)(mac - VlanTagLength));
        Unsafe.WriteUnaligned(header + Interop.Tpacket3Header.SnapLength, snapLength + VlanTagLength);
        Unsafe.WriteUnaligned(header + Interop.Tpacket3Header.WireLength, ReadUInt32(header, Interop.Tpacket3Header.WireLength) + VlanTagLength);
        header[Interop.Tpacket3Header.Padding] = 1;
    }
}

/// <summary>The frames of the block a <see cref="PacketRxRing"/> holds; use with foreach.</summary>
public readonly unsafe ref struct RxBlockFrames
{
    private readonly byte* _block;
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;

    internal RxBlockFrames(byte* block, int virtioNetHeaderLength, bool reinsertVlanTags)
    {
        _block = block;
        _virtioNetHeaderLength = virtioNetHeaderLength;
        _reinsertVlanTags = reinsertVlanTags;
    }

    public RxFrameEnumerator GetEnumerator() => new(_block, _virtioNetHeaderLength, _reinsertVlanTags);
}

/// <summary>Walks tp_next_offset from frame to frame; no allocation, no bounds beyond what the kernel wrote.</summary>
public unsafe ref struct RxFrameEnumerator
{
    private readonly int _virtioNetHeaderLength;
    private readonly bool _reinsertVlanTags;
    private byte* _next;
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

    public readonly RxFrame Current => _current;

    public bool MoveNext()
    {
        if (_remaining == 0)
        {
            return false;
        }
        byte* header = _next;
        _current = PacketRxRing.ReadFrame(header, _virtioNetHeaderLength, _reinsertVlanTags);
        _next = header + PacketRxRing.ReadUInt32(header, Interop.Tpacket3Header.NextOffset);
        _remaining--;
        return true;
    }
}

/// <summary>PACKET_STATISTICS: frames accepted by the filter, frames dropped because the ring was full, freezes.</summary>
public readonly record struct PacketRingStatistics(uint Packets, uint Drops, uint FreezeQueueCount);
