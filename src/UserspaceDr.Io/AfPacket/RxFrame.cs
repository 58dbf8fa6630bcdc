using UserspaceDr.Linux;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// One received frame inside the RX ring (a V3 block or a V2 slot). Valid until <see cref="PacketRxRing.ReleaseBlock"/>; its bytes (and the
/// headroom before them) may be rewritten in place and transmitted straight from the ring.
/// </summary>
public readonly unsafe struct RxFrame
{
    internal RxFrame(byte* mac, int length, int wireLength, int headroom, PacketStatus status, ushort vlanTci,
        VirtioNetHeader* virtioNetHeader)
    {
        Mac = mac;
        Length = length;
        WireLength = wireLength;
        Headroom = headroom;
        Status = status;
        VlanTci = vlanTci;
        VirtioNetHeader = virtioNetHeader;
    }

    /// <summary>The first byte of the Ethernet header.</summary>
    public byte* Mac { get; }

    /// <summary>Bytes captured (tp_snaplen), including a re-inserted VLAN tag.</summary>
    public int Length { get; }

    /// <summary>Bytes the frame had (tp_len), including a re-inserted VLAN tag; larger than <see cref="Length"/> when truncated.</summary>
    public int WireLength { get; }

    /// <summary>Writable bytes right before <see cref="Mac"/> (not counting the virtio_net_hdr), for prepending headers in place.</summary>
    public int Headroom { get; }

    public PacketStatus Status { get; }

    /// <summary>The 802.1Q TCI the kernel stripped; meaningful when <see cref="Status"/> has <see cref="PacketStatus.VlanValid"/>.</summary>
    public ushort VlanTci { get; }

    /// <summary>The virtio_net_hdr right before <see cref="Mac"/>; null unless the ring was opened with one.</summary>
    public VirtioNetHeader* VirtioNetHeader { get; }

    public Span<byte> Bytes => new(Mac, Length);

    /// <summary>
    /// The kernel cut the frame short because it did not fit the ring (a TPACKET_V2 slot smaller than the frame): only
    /// <see cref="Length"/> of <see cref="WireLength"/> bytes are here. Such a frame must never be forwarded: with
    /// <see cref="PacketStatus.Copy"/> the whole frame waits on the socket (<see cref="PacketRxRing.ReceiveCopy"/>),
    /// otherwise it is dropped.
    /// </summary>
    public bool IsTruncated => Length < WireLength;

    /// <summary>Where a transmission of this frame starts: at the virtio_net_hdr when there is one, else at the MAC header.</summary>
    public byte* TransmitStart => VirtioNetHeader != null ? (byte*)VirtioNetHeader : Mac;

    /// <summary>Bytes to transmit from <see cref="TransmitStart"/>.</summary>
    public int TransmitLength => VirtioNetHeader != null ? Length + Linux.VirtioNetHeader.Size : Length;
}
