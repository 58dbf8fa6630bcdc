using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// The socket filter that splits tunnel packets among the user-space endpoint's queues. Every raw socket of a protocol
/// gets a copy of every packet (raw_v4_input, ipv6_raw_deliver), so each queue's socket runs the same program with
/// only its own number changed: a hash of the inner packet's client address and ports, modulo the number of queues,
/// must equal that number. The programs differ in nothing else, so exactly one queue takes each packet, and every
/// packet of a flow lands in the same queue (its TCP segments stay in order and can be merged there). A packet too
/// short to hash is taken by queue 0 and judged there as before (named drop reasons).
/// </summary>
/// <remarks>
/// Where the inner packet starts: an IPv4 raw socket's program sees the outer header (raw_rcv pushes it back), so
/// the inner one is that header's length further (<c>ldx 4*([0]&amp;0xf)</c>); an IPv6 raw socket's sees the payload
/// (the inner packet itself). GRE adds its 4-byte base header, and 4 more when it carries a checksum (the C bit);
/// the key, sequence and routing fields the decapsulator refuses. The words hashed: for an IPv4 inner packet
/// (protocol 4) its source address and the first word after a 20-byte header (the ports); for an IPv6 one (protocol
/// 41) the last word of its source address and the first word after the fixed header (the ports when no extension
/// header comes first); for GRE, whose inner family varies by packet, the IPv4 words (for IPv6 inside, two words of
/// the source address).
/// </remarks>
public static class TunnelQueueFilter
{
    /// <summary>The most queues one endpoint runs (a thread and 4 MiB of receive buffers each).</summary>
    public const int MaxQueues = 64;

    private const uint Accept = uint.MaxValue;
    private const uint Drop = 0;
    private const uint GreBaseHeaderLength = 4;
    private const uint GreChecksumFieldLength = 4; // the checksum and the reserved half-word after it
    private const uint GreChecksumPresent = 0x80;  // the C bit, in the first byte of the GRE header

    /// <summary>What the socket receives and how the inner packet is laid out in it.</summary>
    public enum Layout
    {
        /// <summary>IPv4 raw socket, protocol 4: outer IPv4 header, then an IPv4 packet.</summary>
        Ipv4InIpv4,

        /// <summary>IPv6 raw socket, protocol 4: the IPv4 packet itself.</summary>
        Ipv4InIpv6,

        /// <summary>IPv4 raw socket, protocol 41: outer IPv4 header, then an IPv6 packet.</summary>
        Ipv6InIpv4,

        /// <summary>IPv6 raw socket, protocol 41: the IPv6 packet itself.</summary>
        Ipv6InIpv6,

        /// <summary>IPv4 raw socket, protocol 47: outer IPv4 header, the GRE header, then either family.</summary>
        GreOverIpv4,

        /// <summary>IPv6 raw socket, protocol 47: the GRE header, then either family.</summary>
        GreOverIpv6,
    }

    /// <summary>The program for <paramref name="queue"/> of <paramref name="queues"/> (2 or more) on a socket of <paramref name="layout"/>.</summary>
    public static ClassicBpfProgram For(Layout layout, int queue, int queues)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queues, MaxQueues);
        ArgumentOutOfRangeException.ThrowIfNegative(queue);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queue, queues);
        bool outerIpv4 = layout is Layout.Ipv4InIpv4 or Layout.Ipv6InIpv4 or Layout.GreOverIpv4;
        (uint first, uint second) = layout is Layout.Ipv6InIpv4 or Layout.Ipv6InIpv6
            ? (20u, 40u)  // the source address's last word; the ports after the 40-byte fixed header
            : (12u, 20u); // the source address; the ports after a 20-byte header
        var code = new ClassicBpfAssembler();
        // X: where the packet the program sees ends its outer header (0 when it sees no outer header).
        code.Emit(outerIpv4 ? ClassicBpfInstruction.LoadIndexHeaderLength : ClassicBpfInstruction.LoadIndexImmediate, 0);
        if (layout is Layout.GreOverIpv4 or Layout.GreOverIpv6)
        {
            // A GRE checksum (the C bit, udr's --tun-csum) puts 4 more bytes before the inner packet; key, sequence
            // and routing the decapsulator refuses (such a packet still lands in exactly one queue).
            code.Emit(ClassicBpfInstruction.LoadLength)
                .Emit(ClassicBpfInstruction.SubtractIndex)
                .JumpIfGreaterOrEqual(GreBaseHeaderLength, null, "short")
                .Emit(ClassicBpfInstruction.LoadByteIndirect, 0)
                .Emit(ClassicBpfInstruction.AndConstant, GreChecksumPresent)
                .JumpIfEqual(0, null, "checksummed");
            EmitHash(code, GreBaseHeaderLength, first, second, queue, queues);
            code.Label("checksummed");
            EmitHash(code, GreBaseHeaderLength + GreChecksumFieldLength, first, second, queue, queues);
        }
        else
        {
            EmitHash(code, 0, first, second, queue, queues);
        }
        return code.Label("short")
            .Return(queue == 0 ? Accept : Drop)
            .Label("accept")
            .Return(Accept)
            .Label("drop")
            .Return(Drop)
            .Build();
    }

    /// <summary>
    /// With X where the outer header ends and the inner packet <paramref name="inner"/> bytes further: to "short" when the
    /// packet ends before the hashed words, else the words' hash modulo <paramref name="queues"/> against
    /// <paramref name="queue"/>, to "accept" or "drop".
    /// </summary>
    private static void EmitHash(ClassicBpfAssembler code, uint inner, uint first, uint second, int queue, int queues) =>
        code.Emit(ClassicBpfInstruction.LoadLength)
            .Emit(ClassicBpfInstruction.SubtractIndex)
            .JumpIfGreaterOrEqual(inner + second + 4, null, "short")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, inner + first)
            .Emit(ClassicBpfInstruction.Store, 0)
            .Emit(ClassicBpfInstruction.LoadWordIndirect, inner + second)
            .Emit(ClassicBpfInstruction.LoadIndexMemory, 0)
            .Emit(ClassicBpfInstruction.XorIndex)
            // Fold the high half (the client's port, for IPv4) onto the low one before the modulo.
            .Emit(ClassicBpfInstruction.AccumulatorToIndex)
            .Emit(ClassicBpfInstruction.RightShiftConstant, 16)
            .Emit(ClassicBpfInstruction.XorIndex)
            .Emit(ClassicBpfInstruction.ModuloConstant, (uint)queues)
            .JumpIfEqual((uint)queue, "accept", "drop");
}
