using UserspaceDr.Linux;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>The ring layout a <see cref="PacketRxRing"/> asks the kernel for (PACKET_VERSION). The values are the kernel's.</summary>
public enum RingVersion
{
    /// <summary>
    /// TPACKET_V2: fixed-size frame slots, each owned by the kernel or by user space through its own tp_status. The
    /// kernel hands over every frame as soon as it is written and wakes a waiting poll() per frame: the lowest
    /// latency. Every slot must hold the largest frame (a 64 KiB GSO super-frame), so the ring holds fewer frames
    /// for its memory than V3 does.
    /// </summary>
    V2 = 1,

    /// <summary>
    /// TPACKET_V3: variable-size frames packed into blocks; a block is handed over when it is full or when the retire
    /// timer (<see cref="PacketRxRingOptions.RetireTimeoutMs"/>) fires. One wakeup per block: the cheapest per frame
    /// under load, but at low load a frame waits up to the retire timeout.
    /// </summary>
    V3 = 2,
}

/// <summary>
/// How to open a <see cref="PacketRxRing"/>. Sizes follow the rules the kernel enforces for <see cref="Version"/>;
/// <see cref="BlockSize"/>, <see cref="BlockCount"/> and <see cref="FrameSize"/> default per version.
/// </summary>
public sealed record PacketRxRingOptions(string InterfaceName)
{
    /// <summary>
    /// V2 default slot: 68 KiB holds the largest frame a 1500-byte link delivers whole (a GSO/GRO super-frame of
    /// 14 + 65535 bytes) behind tpacket2_hdr, sockaddr_ll, any <see cref="MinimumHeadroom"/> up to 1024 and the
    /// virtio_net_hdr (the kernel puts the MAC header at 80 + reserve + 10 − 14 = 140 bytes into the slot by default).
    /// </summary>
    public const int DefaultV2FrameSize = 68 << 10;

    private int? _blockSize;
    private int? _blockCount;
    private int? _frameSize;

    /// <summary>Ring layout; V3 unless set. See <see cref="RingVersion"/> for the trade-off.</summary>
    public RingVersion Version { get; init; } = RingVersion.V3;

    /// <summary>
    /// Bytes per block: a power-of-two number of pages (the kernel allocates each block as one power-of-two page
    /// run). V3: it also caps the largest frame (a 64 KiB GSO super-frame must fit); default 256 KiB. V2: only the
    /// allocation unit that <see cref="FrameSize"/> slots are cut from (a frame never spans two blocks); default 1 MiB,
    /// 15 default slots.
    /// </summary>
    public int BlockSize
    {
        get => _blockSize ?? (Version == RingVersion.V2 ? 1 << 20 : 1 << 18);
        init => _blockSize = value;
    }

    /// <summary>Blocks in the ring. Default 32 (V3: 8 MiB) or 16 (V2: 16 MiB, 240 slots of 68 KiB).</summary>
    public int BlockCount
    {
        get => _blockCount ?? (Version == RingVersion.V2 ? 16 : 32);
        init => _blockCount = value;
    }

    /// <summary>
    /// V2: the fixed slot size (a multiple of 16); a frame that does not fit is truncated by the kernel and shows up
    /// as <see cref="RxFrame.IsTruncated"/>. Default <see cref="DefaultV2FrameSize"/>. V3: nominal only; the kernel
    /// packs frames of any size into a block and only checks that BlockSize is a multiple of it; default 2048.
    /// </summary>
    public int FrameSize
    {
        get => _frameSize ?? (Version == RingVersion.V2 ? DefaultV2FrameSize : 2048);
        init => _frameSize = value;
    }

    /// <summary>
    /// V2 only: most frames one <see cref="PacketRxRing.WaitForBlock"/> hands out as a batch (further capped at half
    /// the ring's slots, so the kernel always has free slots while a batch is processed). Default 64.
    /// </summary>
    public int MaxBatchFrames { get; init; } = 64;

    /// <summary>V3 only: a block that is not full is handed to user space after this many milliseconds (tp_retire_blk_tov).</summary>
    public int RetireTimeoutMs { get; init; } = 4;

    /// <summary>
    /// Bytes guaranteed writable before each frame's MAC header (PACKET_RESERVE). Headers are prepended in place
    /// there: an IPIP outer header, a re-inserted VLAN tag.
    /// </summary>
    public int MinimumHeadroom { get; init; } = 64;

    /// <summary>Each frame is preceded by a <see cref="VirtioNetHeader"/> (PACKET_VNET_HDR).</summary>
    public bool VirtioNetHeader { get; init; }

    /// <summary>
    /// V2: a frame larger than its slot (a GSO super-frame in small slots) is also queued whole on the socket
    /// (PACKET_COPY_THRESH); its slot holds the head with <see cref="PacketStatus.Copy"/>, and
    /// <see cref="PacketRxRing.ReceiveCopy"/> reads the whole frame. Small slots then hold many more frames for the
    /// ring's memory, and the rare large frame still arrives whole.
    /// </summary>
    public bool CopyOversizedFrames { get; init; }

    /// <summary>
    /// With <see cref="CopyOversizedFrames"/>: the socket's receive buffer for the queued copies (SO_RCVBUFFORCE), room
    /// for about 60 super-frames by default. A copy that does not fit is not made and its frame stays truncated.
    /// </summary>
    public int CopyBufferBytes { get; init; } = 8 << 20;

    /// <summary>Leave out frames this host transmits (PACKET_IGNORE_OUTGOING): an ETH_P_ALL socket otherwise sees them again.</summary>
    public bool IgnoreOutgoing { get; init; } = true;

    /// <summary>Put 802.1Q tags the kernel stripped back into the frame bytes (see <see cref="PacketStatus.VlanValid"/>).</summary>
    public bool ReinsertVlanTags { get; init; } = true;

    /// <summary>Switch the interface to promiscuous mode for the socket's lifetime (PACKET_MR_PROMISC).</summary>
    public bool Promiscuous { get; init; }

    /// <summary>Socket filter (SO_ATTACH_FILTER), attached before the socket is bound so no unfiltered frame gets in.</summary>
    public ClassicBpfProgram? Filter { get; init; }

    public FanoutOptions? Fanout { get; init; }
}
