using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;

namespace UserspaceDr.PcapGen;

/// <summary>
/// IPv6 frames built byte by byte (RFC 8200, RFC 4443, RFC 4861), with the generator's own checksum over the IPv6
/// pseudo-header: nothing here is udr's code.
/// </summary>
internal static class Build6
{
    public const byte HopByHop = 0;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Fragment = 44;
    public const byte Icmpv6 = 58;
    public const byte DestinationOptions = 60;

    /// <summary>An Ethernet frame (client → balancer unless told otherwise) with an IPv6 header and <paramref name="payload"/> after it.</summary>
    public static byte[] Frame(IPAddress source, IPAddress destination, byte nextHeader, ReadOnlySpan<byte> payload, byte hopLimit = 64,
        PhysicalAddress? sourceMac = null, PhysicalAddress? destinationMac = null, int payloadLengthField = -1)
    {
        byte[] frame = new byte[Build.EthernetHeader + 40 + payload.Length];
        (destinationMac ?? Lab.BalancerMac).GetAddressBytes().CopyTo(frame, 0);
        (sourceMac ?? Lab.ClientMac).GetAddressBytes().CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x86DD);
        Span<byte> ip = frame.AsSpan(Build.EthernetHeader);
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(payloadLengthField >= 0 ? payloadLengthField : payload.Length));
        ip[6] = nextHeader;
        ip[7] = hopLimit;
        source.GetAddressBytes().CopyTo(ip[8..]);
        destination.GetAddressBytes().CopyTo(ip[24..]);
        payload.CopyTo(ip[40..]);
        return frame;
    }

    /// <summary>A TCP segment (20-byte header, no options) with its checksum over the IPv6 pseudo-header.</summary>
    public static byte[] TcpSegment(IPAddress source, int sourcePort, IPAddress destination, int destinationPort, TcpFlagSet flags, uint sequence,
        uint acknowledgment, ReadOnlySpan<byte> data)
    {
        byte[] segment = new byte[20 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), (ushort)destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), sequence);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(8), flags.Ack ? acknowledgment : 0);
        segment[12] = 5 << 4;
        segment[13] = (byte)((flags.Fin ? 0x01 : 0) | (flags.Syn ? 0x02 : 0) | (flags.Rst ? 0x04 : 0) | (flags.Psh ? 0x08 : 0) | (flags.Ack ? 0x10 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), 64240);
        data.CopyTo(segment.AsSpan(20));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(16), Checksum(source, destination, Tcp, segment));
        return segment;
    }

    /// <summary>A UDP datagram with its checksum over the IPv6 pseudo-header (never 0: IPv6 requires one).</summary>
    public static byte[] UdpDatagram(IPAddress source, int sourcePort, IPAddress destination, int destinationPort, ReadOnlySpan<byte> data)
    {
        byte[] datagram = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(datagram, (ushort)sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(2), (ushort)destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(4), (ushort)datagram.Length);
        data.CopyTo(datagram.AsSpan(8));
        ushort sum = Checksum(source, destination, Udp, datagram);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(6), sum == 0 ? (ushort)0xFFFF : sum);
        return datagram;
    }

    /// <summary>A Hop-by-Hop or Destination Options header of 8 bytes: one PadN option filling it.</summary>
    public static byte[] OptionsHeader(byte nextHeader) => [nextHeader, 0, 1, 4, 0, 0, 0, 0];

    /// <summary>A Fragment header: next header, offset in bytes (a multiple of 8), M, identification.</summary>
    public static byte[] FragmentHeader(byte nextHeader, int offsetBytes, bool more, uint identification)
    {
        byte[] header = new byte[8];
        header[0] = nextHeader;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)(offsetBytes | (more ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), identification);
        return header;
    }

    /// <summary>The Internet checksum of <paramref name="upper"/> (its checksum field as it stands) over the IPv6 pseudo-header.</summary>
    public static ushort Checksum(IPAddress source, IPAddress destination, byte nextHeader, ReadOnlySpan<byte> upper)
    {
        ulong sum = 0;
        foreach (byte[] address in new[] { source.GetAddressBytes(), destination.GetAddressBytes() })
        {
            for (int i = 0; i < 16; i += 2)
            {
                sum += (uint)((address[i] << 8) | address[i + 1]);
            }
        }
        sum += (uint)upper.Length;
        sum += nextHeader;
        for (int i = 0; i + 1 < upper.Length; i += 2)
        {
            sum += (uint)((upper[i] << 8) | upper[i + 1]);
        }
        if ((upper.Length & 1) != 0)
        {
            sum += (uint)(upper[^1] << 8);
        }
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}

/// <summary>What udr must send for an IPv6 frame, from the frame and the IPVS decision alone.</summary>
internal static class Expect6
{
    /// <summary>The replay's link MTU (udr replay's default).</summary>
    public const int LinkMtu = 1500;

    /// <summary>RFC 4443 §2.4(c): an ICMPv6 error carries as much of the packet as fits in 1280 bytes.</summary>
    private const int MinimumMtu = 1280;

    /// <summary>
    /// An ICMPv6 error from the packet's destination (the VIP, as icmp6_send picks a local address) back to its source
    /// and source MAC: hop limit 64, traffic class and flow label 0, quoting the packet as received up to 1280 bytes in all.
    /// </summary>
    public static byte[] Icmpv6Error(byte[] input, byte type, byte code, uint parameter)
    {
        ReadOnlySpan<byte> ip = input.AsSpan(Build.EthernetHeader);
        int length = 40 + BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
        int quoted = Math.Min(length, MinimumMtu - 40 - 8);
        byte[] message = new byte[8 + quoted];
        message[0] = type;
        message[1] = code;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), parameter);
        ip[..quoted].CopyTo(message.AsSpan(8));
        var source = new IPAddress(ip.Slice(24, 16));
        var destination = new IPAddress(ip.Slice(8, 16));
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), Build6.Checksum(source, destination, Build6.Icmpv6, message));
        return Build6.Frame(source, destination, Build6.Icmpv6, message, 64, Lab.BalancerMac, new PhysicalAddress(input.AsSpan(6, 6).ToArray()));
    }

    /// <summary>
    /// RFC 4861 §7.2.4: the advertisement answering a solicitation for <paramref name="target"/>: from the target, to
    /// the solicitor (all nodes, without S, for a probe from ::), S and O set, the Target Link-Layer option with the
    /// balancer's MAC, hop limit 255.
    /// </summary>
    public static byte[] NeighborAdvertisement(byte[] solicitation, IPAddress target)
    {
        var solicitor = new IPAddress(solicitation.AsSpan(Build.EthernetHeader + 8, 16));
        bool probe = solicitor.Equals(IPAddress.IPv6Any);
        IPAddress destination = probe ? IPAddress.Parse("ff02::1") : solicitor;
        byte[] message = new byte[32];
        message[0] = 136;
        message[4] = (byte)(probe ? 0x20 : 0x60);
        target.GetAddressBytes().CopyTo(message, 8);
        message[24] = 2;
        message[25] = 1;
        Lab.BalancerMac.GetAddressBytes().CopyTo(message, 26);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), Build6.Checksum(target, destination, Build6.Icmpv6, message));
        PhysicalAddress mac = probe ? Lab.Mac("33:33:00:00:00:01") : new PhysicalAddress(solicitation.AsSpan(6, 6).ToArray());
        return Build6.Frame(target, destination, Build6.Icmpv6, message, 255, Lab.BalancerMac, mac);
    }
}
