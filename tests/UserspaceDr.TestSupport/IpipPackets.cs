using System.Buffers.Binary;
using System.Text;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Node;

/// <summary>Builds IPv4, UDP, TCP and IP-in-IP packets with correct checksums, for the tunnel endpoint's tests.</summary>
internal static class IpipPackets
{
    /// <summary>An IPv4 packet: 20-byte header (no options) with a valid checksum, then <paramref name="payload"/>.</summary>
    public static byte[] Ipv4(string source, string destination, byte protocol, ReadOnlySpan<byte> payload, byte tos = 0, ushort flagsAndOffset = 0)
    {
        byte[] packet = new byte[Ipv4Header.MinLength + payload.Length];
        packet[0] = 0x45;
        packet[1] = tos;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), 0x1234);
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), flagsAndOffset);
        packet[8] = 64;
        packet[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(12), Ipv4Address.Parse(source));
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(16), Ipv4Address.Parse(destination));
        new Ipv4Header(packet).RecomputeHeaderChecksum();
        payload.CopyTo(packet.AsSpan(Ipv4Header.MinLength));
        return packet;
    }

    /// <summary>A UDP datagram (header + payload) with its checksum over the pseudo-header.</summary>
    public static byte[] Udp(string source, string destination, ushort sourcePort, ushort destinationPort, string payload)
    {
        byte[] data = Encoding.ASCII.GetBytes(payload);
        byte[] segment = new byte[8 + data.Length];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(4), (ushort)segment.Length);
        data.CopyTo(segment.AsSpan(8));
        ushort checksum = (ushort)~Checksum.Fold(Checksum.Add(segment, Checksum.PseudoHeader(Ipv4Address.Parse(source), Ipv4Address.Parse(destination), IpProtocol.Udp, segment.Length)));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(6), checksum == 0 ? (ushort)0xFFFF : checksum);
        return segment;
    }

    /// <summary>A TCP SYN (20-byte header, no options) with its checksum.</summary>
    public static byte[] TcpSyn(string source, string destination, ushort sourcePort, ushort destinationPort, uint sequence)
    {
        byte[] segment = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(segment, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(segment.AsSpan(4), sequence);
        segment[12] = 5 << 4;
        segment[13] = 0x02;
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(14), 64240);
        ushort checksum = (ushort)~Checksum.Fold(Checksum.Add(segment, Checksum.PseudoHeader(Ipv4Address.Parse(source), Ipv4Address.Parse(destination), IpProtocol.Tcp, segment.Length)));
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(16), checksum);
        return segment;
    }

    /// <summary>A whole inner UDP/IPv4 packet.</summary>
    public static byte[] InnerUdp(string source, string destination, ushort sourcePort, ushort destinationPort, string payload, byte tos = 0) =>
        Ipv4(source, destination, IpProtocol.Udp, Udp(source, destination, sourcePort, destinationPort, payload), tos);

    /// <summary>A whole inner TCP SYN/IPv4 packet.</summary>
    public static byte[] InnerTcpSyn(string source, string destination, ushort sourcePort, ushort destinationPort, uint sequence) =>
        Ipv4(source, destination, IpProtocol.Tcp, TcpSyn(source, destination, sourcePort, destinationPort, sequence));

    /// <summary>IP-in-IP: an outer IPv4 header of protocol 4 around <paramref name="inner"/>.</summary>
    public static byte[] Ipip(string outerSource, string outerDestination, ReadOnlySpan<byte> inner, byte tos = 0) =>
        Ipv4(outerSource, outerDestination, IpProtocol.IpInIp, inner, tos);

    /// <summary>Rewrites the header checksum of the IPv4 header at <paramref name="offset"/> after a test changed a field.</summary>
    public static void FixHeaderChecksum(byte[] packet, int offset = 0) => new Ipv4Header(packet.AsSpan(offset)).RecomputeHeaderChecksum();
}
