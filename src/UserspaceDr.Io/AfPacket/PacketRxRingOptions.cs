namespace UserspaceDr.Io.AfPacket;

/// <summary>How to open a <see cref="PacketRxRing"/>. Sizes follow the TPACKET_V3 rules the kernel enforces.</summary>
public sealed record PacketRxRingOptions(string InterfaceName)
{
    /// <summary>Bytes per block: a multiple of the page size; it also caps the largest frame (a 64 KiB GSO super-frame must fit).</summary>
    public int BlockSize { get; init; } = 1 << 18;

    public int BlockCount { get; init; } = 32;

    /// <summary>
    /// Nominal frame slot; TPACKET_V3 packs frames of any size into a block, the kernel only checks that
    /// BlockSize is a multiple of it.
    /// </summary>
    public int FrameSize { get; init; } = 2048;

    /// <summary>A block that is not full is handed to user space after this many milliseconds (tp_retire_blk_tov).</summary>
    public int RetireTimeoutMs { get; init; } = 4;

    /// <summary>
    /// Bytes guaranteed writable before each frame's MAC header (PACKET_RESERVE). Headers are prepended in place
    /// there: an IPIP outer header, a re-inserted VLAN tag.
    /// </summary>
    public int MinimumHeadroom { get; init; } = 64;

    /// <summary>Each frame is preceded by a <see cref="VirtioNetHeader"/> (PACKET_VNET_HDR).</summary>
    public bool VirtioNetHeader { get; init; }

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
