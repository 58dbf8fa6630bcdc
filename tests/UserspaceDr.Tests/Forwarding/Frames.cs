using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>Builds test frames with PacketDotNet (independent of udr's own packet code) and decodes udr's output.</summary>
internal static class Frames
{
    public static readonly System.Net.NetworkInformation.PhysicalAddress ClientMac = Mac("02:00:00:00:00:01");
    public static readonly System.Net.NetworkInformation.PhysicalAddress BalancerMac = Mac("02:00:00:00:00:02");
    public static readonly System.Net.NetworkInformation.PhysicalAddress Rs1Mac = Mac("02:00:00:00:00:11");
    public static readonly System.Net.NetworkInformation.PhysicalAddress Rs2Mac = Mac("02:00:00:00:00:12");

    public const string Client = "198.18.0.1";
    public const string Vip = "198.18.0.100";
    public const string Rs1 = "198.18.0.11";
    public const string Rs2 = "198.18.0.12";

    public static System.Net.NetworkInformation.PhysicalAddress Mac(string text) =>
        System.Net.NetworkInformation.PhysicalAddress.Parse(text.Replace(':', '-'));

    public static MacAddress UdrMac(System.Net.NetworkInformation.PhysicalAddress mac) => MacAddress.Read(mac.GetAddressBytes());

    public static byte[] Tcp(string source, ushort sourcePort, string destination, ushort destinationPort, bool syn = false, bool ack = false,
        bool fin = false, bool rst = false, byte[]? payload = null, byte ttl = 64, ushort? vlan = null)
    {
        var tcp = new TcpPacket(sourcePort, destinationPort)
        {
            Synchronize = syn,
            Acknowledgment = ack,
            Finished = fin,
            Reset = rst,
            WindowSize = 64240,
            SequenceNumber = 1000,
            AcknowledgmentNumber = ack ? 2000u : 0u,
        };
        if (payload is not null)
        {
            tcp.PayloadData = payload;
        }
        var ip = new IPv4Packet(IPAddress.Parse(source), IPAddress.Parse(destination)) { TimeToLive = ttl, PayloadPacket = tcp };
        tcp.UpdateTcpChecksum();
        ip.UpdateIPChecksum();
        return Ethernet(ip, vlan);
    }

    public static byte[] Udp(string source, ushort sourcePort, string destination, ushort destinationPort, byte[] payload, byte ttl = 64)
    {
        var udp = new UdpPacket(sourcePort, destinationPort) { PayloadData = payload };
        var ip = new IPv4Packet(IPAddress.Parse(source), IPAddress.Parse(destination)) { TimeToLive = ttl, PayloadPacket = udp };
        udp.UpdateUdpChecksum();
        ip.UpdateIPChecksum();
        return Ethernet(ip, null);
    }

    public static byte[] Ethernet(IPv4Packet ip, ushort? vlan)
    {
        var ethernet = new EthernetPacket(ClientMac, BalancerMac, EthernetType.IPv4) { PayloadPacket = ip };
        byte[] bytes = ethernet.Bytes;
        if (vlan is null)
        {
            return bytes;
        }
        byte[] tagged = new byte[bytes.Length + 4];
        bytes.AsSpan(0, 12).CopyTo(tagged);
        tagged[12] = 0x81;
        tagged[13] = 0x00;
        tagged[14] = (byte)(vlan.Value >> 8);
        tagged[15] = (byte)vlan.Value;
        bytes.AsSpan(12).CopyTo(tagged.AsSpan(16));
        return tagged;
    }

    /// <summary>
    /// Sets the IPv4 TOS byte and the DF flag of an untagged frame's IP header and recomputes its checksum (with
    /// <see cref="InternetChecksum"/>, not udr's code).
    /// </summary>
    public static byte[] WithIpHeader(byte[] frame, byte tos = 0, bool dontFragment = false, int ipOffset = 14)
    {
        frame[ipOffset + 1] = tos;
        frame[ipOffset + 6] = (byte)((frame[ipOffset + 6] & ~0x40) | (dontFragment ? 0x40 : 0));
        frame[ipOffset + 10] = 0;
        frame[ipOffset + 11] = 0;
        ushort sum = InternetChecksum(frame.AsSpan(ipOffset, (frame[ipOffset] & 0x0F) * 4));
        frame[ipOffset + 10] = (byte)(sum >> 8);
        frame[ipOffset + 11] = (byte)sum;
        return frame;
    }

    /// <summary>RFC 1071 checksum, written here independently of udr's Checksum class: the value to store.</summary>
    public static ushort InternetChecksum(ReadOnlySpan<byte> data, uint initial = 0)
    {
        uint sum = initial;
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8) + (i + 1 < data.Length ? data[i + 1] : 0u);
        }
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    /// <summary>True when <paramref name="data"/> (checksum field included) sums to all ones, computed independently.</summary>
    public static bool ChecksumVerifies(ReadOnlySpan<byte> data, uint initial = 0) => InternetChecksum(data, initial) == 0;

    /// <summary>The IPv4 pseudo-header sum (unfolded) for a TCP/UDP checksum.</summary>
    public static uint PseudoHeaderSum(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, byte protocol, int length) =>
        (uint)((source[0] << 8) + source[1] + (source[2] << 8) + source[3] + (destination[0] << 8) + destination[1] +
            (destination[2] << 8) + destination[3] + protocol + length);

    /// <summary>Decodes an untagged Ethernet/IPv4 frame.</summary>
    public static (EthernetPacket Ethernet, IPv4Packet Ip) Decode(ReadOnlySpan<byte> frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame.ToArray());
        return (ethernet, ethernet.Extract<IPv4Packet>());
    }
}
