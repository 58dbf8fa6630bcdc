using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// IPv6 frames from the client (2001:2::1) to the VIP (2001:2::100), built with PacketDotNet (or byte by byte where a
/// frame must be exact: fragments, solicitations): what the IPv6 engine tests and the fuzz test feed the engine.
/// </summary>
internal static class Frames6
{
    public const string Client = "2001:2::1";
    public const string Vip = "2001:2::100";
    public const string Rs1 = "2001:2::11";
    public const string Rs2 = "2001:2::12";

    public static UInt128 V6(string text) => InetAddress.Parse(text).IPv6;

    public static IPv6Packet Ip(string source, string destination, Packet payload, byte hopLimit = 64)
    {
        var ip = new IPv6Packet(IPAddress.Parse(source), IPAddress.Parse(destination)) { HopLimit = hopLimit, PayloadPacket = payload };
        return ip;
    }

    public static byte[] Frame(IPv6Packet ip)
    {
        var ethernet = new EthernetPacket(Frames.ClientMac, Frames.BalancerMac, EthernetType.IPv6) { PayloadPacket = ip };
        return ethernet.Bytes;
    }

    public static byte[] Tcp(ushort clientPort, bool syn = true, bool ack = false, byte[]? payload = null, byte hopLimit = 64, string destination = Vip)
    {
        var tcp = new TcpPacket(clientPort, 80) { Synchronize = syn, Acknowledgment = ack, WindowSize = 64240, SequenceNumber = 1000 };
        if (payload is not null)
        {
            tcp.PayloadData = payload;
        }
        IPv6Packet ip = Ip(Client, destination, tcp, hopLimit);
        tcp.UpdateTcpChecksum();
        return Frame(ip);
    }

    public static byte[] Udp(ushort clientPort, byte[] payload, ushort port = 53)
    {
        var udp = new UdpPacket(clientPort, port) { PayloadData = payload };
        IPv6Packet ip = Ip(Client, Vip, udp);
        udp.UpdateUdpChecksum();
        return Frame(ip);
    }

    /// <summary>The first 32 bytes of <paramref name="datagram"/>'s UDP segment (more fragments) or the rest, behind a Fragment header.</summary>
    public static byte[] Fragment(byte[] datagram, bool first, uint id)
    {
        const int Cut = 32;
        byte[] segment = datagram[54..];
        byte[] part = first ? segment[..Cut] : segment[Cut..];
        byte[] header = new byte[8];
        header[0] = Ipv6NextHeader.Udp;
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), (ushort)(first ? 1 : Cut));
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), id);
        byte[] frame = [.. datagram[..54], .. header, .. part];
        frame[14 + 6] = Ipv6NextHeader.Fragment;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), (ushort)(8 + part.Length));
        return frame;
    }

    /// <summary>
    /// An ICMPv6 error (<paramref name="type"/>, <paramref name="code"/>, the word after the checksum) from
    /// <paramref name="source"/> to <paramref name="destination"/> quoting <paramref name="quoted"/> (an IPv6 packet),
    /// its checksum right, sent by <paramref name="sourceMac"/> to the balancer.
    /// </summary>
    public static byte[] Icmpv6Error(string source, string destination, byte type, byte code, uint parameter, ReadOnlySpan<byte> quoted,
        System.Net.NetworkInformation.PhysicalAddress sourceMac)
    {
        byte[] message = [type, code, 0, 0, 0, 0, 0, 0, .. quoted];
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), parameter);
        Ipv6Checksum.Store(V6(source), V6(destination), Ipv6NextHeader.Icmpv6, message, 2);
        byte[] frame = new byte[14 + 40 + message.Length];
        Frames.UdrMac(Frames.BalancerMac).Write(frame);
        Frames.UdrMac(sourceMac).Write(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Ipv6);
        Ipv6Header.Write(frame.AsSpan(14), 0, (ushort)message.Length, Ipv6NextHeader.Icmpv6, 64, V6(source), V6(destination));
        message.CopyTo(frame, 54);
        return frame;
    }

    public static byte[] NeighborSolicitation(string target, byte hopLimit = 255, string source = Client, bool corrupt = false)
    {
        UInt128 targetAddress = V6(target);
        byte[] message = new byte[32];
        message[0] = Icmpv6Type.NeighborSolicitation;
        BinaryPrimitives.WriteUInt128BigEndian(message.AsSpan(8), targetAddress);
        if (source != "::")
        {
            message[24] = Ndp.SourceLinkLayerOption;
            message[25] = 1;
            Frames.ClientMac.GetAddressBytes().CopyTo(message, 26);
        }
        else
        {
            message = message[..24];
        }
        UInt128 group = Ndp.SolicitedNode(targetAddress);
        Ipv6Checksum.Store(V6(source), group, Ipv6NextHeader.Icmpv6, message, 2);
        if (corrupt)
        {
            message[3] ^= 1;
        }
        byte[] packet = new byte[40 + message.Length];
        Ipv6Header.Write(packet, 0, (ushort)message.Length, Ipv6NextHeader.Icmpv6, hopLimit, V6(source), group);
        message.CopyTo(packet, 40);
        byte[] frame = new byte[14 + packet.Length];
        Ndp.MulticastMac(group).Write(frame);
        Frames.UdrMac(Frames.ClientMac).Write(frame.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Ipv6);
        packet.CopyTo(frame, 14);
        return frame;
    }
}
