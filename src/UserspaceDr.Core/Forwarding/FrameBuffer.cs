namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// One received frame and the room around it, as the engine sees it. The frame is
/// <c>Buffer[Offset..(Offset + Length)]</c>; the bytes before it are headroom that encapsulation (IP-in-IP) grows
/// into, so a tunnelled frame is built in place without a copy. On <see cref="Verdict.Transmit"/> the engine has
/// set <see cref="Offset"/>, <see cref="Length"/> and <see cref="Link"/> to the frame to send and the link it
/// leaves by. On <see cref="Verdict.Reply"/> the reply leaves by <see cref="Link"/>: the ingress link, except for an
/// ICMP error udr relays to a client on another link (<see cref="FrameReason.IcmpFragmentationNeededFromTunnel"/>),
/// for which the engine sets it. Otherwise they are unchanged.
/// <para>
/// Encapsulation moves the frame start 20 bytes earlier, so offsets a receive path keeps relative to the frame
/// (a virtio_net_hdr's csum_start for <see cref="FrameFlags.ChecksumPartial"/>) grow by the same 20 bytes: compare
/// <see cref="Length"/> or <see cref="Offset"/> before and after. A frame split into two outer fragments never
/// keeps <see cref="FrameFlags.ChecksumPartial"/> (the engine finishes the checksum first).
/// </para>
/// </summary>
public ref struct FrameBuffer
{
    /// <summary>
    /// Headroom a receive path should leave before each frame: the largest outer header udr writes (IPv6, 40 B, and a
    /// Fragment header, 8 B) plus slack, so that a tagged or untagged frame can be encapsulated in place.
    /// </summary>
    public const int RecommendedHeadroom = 64;

    /// <summary>
    /// How long <see cref="Overflow"/> must be for every second fragment towards a path of MTU <paramref name="pathMtu"/>:
    /// a tagged Ethernet header and one outer fragment of at most that MTU.
    /// </summary>
    public static int OverflowLengthFor(int pathMtu) => Packets.EthernetFrame.HeaderLength + Packets.EthernetFrame.VlanTagLength + pathMtu;

    public FrameBuffer(Span<byte> buffer, int offset, int length, FrameFlags flags = FrameFlags.None, byte link = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(offset + length, buffer.Length);
        Buffer = buffer;
        Offset = offset;
        Length = length;
        Flags = flags;
        Link = link;
    }

    /// <summary>
    /// A received frame with its room behind it for a second frame: one constructor, so that the buffer is built where
    /// it lives (an initializer builds it in a temporary and copies it whole). A receive path then sets
    /// <see cref="Hint"/> in a statement of its own: passed to a constructor by reference (a slot of the batch's array),
    /// the hint made the JIT build the whole buffer in a temporary, store the hint into it and copy it at once with
    /// wider loads that straddle that store, two store-forwarding stalls per frame (about 5 ns: bench/README.md).
    /// </summary>
    public FrameBuffer(Span<byte> buffer, int offset, int length, FrameFlags flags, byte link, Span<byte> overflow)
        : this(buffer, offset, length, flags, link)
    {
        Overflow = overflow;
    }

    /// <summary>A frame with no headroom (replay, tests): everything but encapsulation works on it.</summary>
    public FrameBuffer(Span<byte> frame, FrameFlags flags = FrameFlags.None, byte link = 0)
        : this(frame, 0, frame.Length, flags, link)
    {
    }

    /// <summary>The whole buffer: headroom, frame, and any room after it.</summary>
    public Span<byte> Buffer { get; }

    /// <summary>Where the frame starts in <see cref="Buffer"/> (the headroom in front of it).</summary>
    public int Offset { get; set; }

    /// <summary>The frame's length from its MAC header.</summary>
    public int Length { get; set; }

    /// <summary>What the receive path knows about the frame; the engine clears flags that stop being true.</summary>
    public FrameFlags Flags { get; set; }

    /// <summary>In: the link (index into <see cref="EngineOptions.Links"/>) the frame arrived on. Out: the link it leaves by.</summary>
    public byte Link { get; set; }

    /// <summary>
    /// A second frame the engine may produce (the trailing fragment when an encapsulated packet without DF exceeds
    /// the path MTU; see <see cref="OverflowLengthFor"/>). Empty or too short: the engine cannot produce one and drops
    /// such a packet (<see cref="FrameReason.TunnelOverflowMissing"/>).
    /// </summary>
    public Span<byte> Overflow { get; set; }

    /// <summary>Bytes of <see cref="Overflow"/> holding a second frame to send after this one, on the same link (0: none).</summary>
    public int OverflowLength { get; set; }

    /// <summary>
    /// What the receive path's prefetch read of this frame (<see cref="ForwardingEngine.Prefetch"/>), handed on so the
    /// engine does not read it again; default (no hint) is always correct.
    /// </summary>
    public FlowHint Hint { get; set; }

    public readonly Span<byte> Frame => Buffer.Slice(Offset, Length);
}
