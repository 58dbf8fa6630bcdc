using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Bench;

/// <summary>
/// Builds Ethernet/IPv4/TCP frames byte by byte (BinaryPrimitives + Core's <see cref="Checksum"/>), so the bench
/// needs no packet library. Layout: 14-byte Ethernet header, 20-byte IPv4 header (no options), 20-byte TCP header.
/// </summary>
internal static class BenchFrames
{
    public const int EthernetLength = 14;
    public const int IpOffset = EthernetLength;
    public const int TtlOffset = IpOffset + 8;
    public const int IpChecksumOffset = IpOffset + 10;
    public const int TcpOffset = IpOffset + 20;
    public const int HeadersLength = TcpOffset + 20;

    public static readonly MacAddress ClientMac = new(0x02_00_00_00_00_01);
    public static readonly MacAddress BalancerMac = new(0x02_00_00_00_00_02);

    /// <summary>Length of a TCP frame with <paramref name="payloadLength"/> bytes of payload.</summary>
    public static int TcpFrameLength(int payloadLength) => HeadersLength + payloadLength;

    /// <summary>
    /// Writes a client → VIP TCP frame into <paramref name="frame"/> with valid IPv4 and TCP checksums; returns its length.
    /// </summary>
    public static int WriteTcp(Span<byte> frame, uint source, ushort sourcePort, uint destination, ushort destinationPort,
        byte tcpFlags, int payloadLength, byte ttl = 64)
    {
        int ipLength = 20 + 20 + payloadLength;
        int length = EthernetLength + ipLength;
        frame = frame[..length];
        frame.Clear();

        BalancerMac.Write(frame);
        ClientMac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Ipv4);

        Span<byte> ip = frame.Slice(IpOffset, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ipLength);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(sourcePort ^ source)); // identification
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], Ipv4Header.DontFragment);
        ip[8] = ttl;
        ip[9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], source);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], destination);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip));

        Span<byte> tcp = frame.Slice(TcpOffset, 20 + payloadLength);
        WriteTcpSegment(tcp, sourcePort, destinationPort, tcpFlags);
        ulong sum = Checksum.PseudoHeader(source, destination, IpProtocol.Tcp, tcp.Length);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], (ushort)~Checksum.Fold(Checksum.Add(tcp, sum)));
        return length;
    }

    /// <summary>The IPv6 frame's hop limit (the fixed header has no checksum).</summary>
    public const int HopLimitOffset = IpOffset + 7;

    /// <summary>
    /// Writes a client → VIP IPv6 TCP frame (fixed header, no extension headers) with a valid TCP checksum over the
    /// IPv6 pseudo-header; returns its length. The TCP header and payload are <see cref="WriteTcp"/>'s.
    /// </summary>
    public static int WriteTcp6(Span<byte> frame, UInt128 source, ushort sourcePort, UInt128 destination, ushort destinationPort,
        byte tcpFlags, int payloadLength, byte hopLimit = 64)
    {
        int tcpLength = 20 + payloadLength;
        int length = EthernetLength + Ipv6Header.Length + tcpLength;
        frame = frame[..length];
        frame.Clear();
        BalancerMac.Write(frame);
        ClientMac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Ipv6);
        Ipv6Header.Write(frame[IpOffset..], 0, (ushort)tcpLength, IpProtocol.Tcp, hopLimit, source, destination);

        Span<byte> tcp = frame.Slice(IpOffset + Ipv6Header.Length, tcpLength);
        WriteTcpSegment(tcp, sourcePort, destinationPort, tcpFlags);
        Ipv6Checksum.Store(source, destination, IpProtocol.Tcp, tcp, 16);
        return length;
    }

    /// <summary>The TCP header (no options) and a patterned payload; the checksum is the caller's, per family.</summary>
    private static void WriteTcpSegment(Span<byte> tcp, ushort sourcePort, ushort destinationPort, byte tcpFlags)
    {
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], (tcpFlags & TcpFlags.Syn) != 0 ? 1000u : 1001u);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], (tcpFlags & TcpFlags.Ack) != 0 ? 2001u : 0u);
        tcp[12] = 5 << 4;
        tcp[13] = tcpFlags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 64240);
        for (int i = 20; i < tcp.Length; i++)
        {
            tcp[i] = (byte)((i * 31) + sourcePort);
        }
    }
}
