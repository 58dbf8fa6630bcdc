namespace UserspaceDr.Io.AfPacket;

/// <summary>tp_status bits of a received frame (linux/if_packet.h, TP_STATUS_*).</summary>
[Flags]
public enum PacketStatus : uint
{
    None = 0,

    /// <summary>The frame (or block) belongs to user space.</summary>
    User = 1 << 0,

    /// <summary>
    /// The frame was larger than the ring slot: the slot holds its head (tp_snaplen &lt; tp_len) and a whole copy was
    /// queued on the socket (PACKET_COPY_THRESH).
    /// </summary>
    Copy = 1 << 1,

    /// <summary>The socket dropped frames since the last statistics read (ring full).</summary>
    Losing = 1 << 2,

    /// <summary>
    /// The L4 checksum is unfinished (skb CHECKSUM_PARTIAL): the checksum field holds only the pseudo-header sum.
    /// Typical for frames generated on this host or arriving over veth with tx-checksumming on. Forwarding such a
    /// frame unchanged makes the receiver drop it, unless its virtio_net_hdr goes along (NEEDS_CSUM) and the
    /// kernel finishes the checksum on transmit.
    /// </summary>
    CsumNotReady = 1 << 3,

    /// <summary>
    /// The kernel stripped an 802.1Q tag into tp_vlan_tci. <see cref="PacketRxRing"/> puts the tag back into the
    /// frame bytes by default, so the frame then looks as it did on the wire.
    /// </summary>
    VlanValid = 1 << 4,

    /// <summary>The block was retired by the timeout, not because it was full (block status only).</summary>
    BlockTimeout = 1 << 5,

    /// <summary>tp_vlan_tpid holds the stripped tag's TPID.</summary>
    VlanTpidValid = 1 << 6,

    /// <summary>The checksum was already verified (by hardware or an earlier stage).</summary>
    CsumValid = 1 << 7,

    /// <summary>The frame is a TCP GSO super-frame (set only on newer kernels).</summary>
    GsoTcp = 1 << 8,
}
