using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using PacketDotNet.Utils;

namespace UserspaceDr.PcapGen;

/// <summary>
/// What udr must send, built from the input frame and the IPVS decision alone: direct routing rewrites the MACs and
/// decrements TTL (checksum recomputed by PacketDotNet); replies are built from scratch with PacketDotNet.
/// </summary>
internal static class Expect
{
    /// <summary>RFC 1812 / Linux icmp_send: the error datagram is at most 576 bytes, so 548 bytes are quoted.</summary>
    public const int MaxQuote = 576 - 20 - 8;

    /// <summary>IPTOS_PREC_INTERNETCONTROL: the TOS Linux gives ICMP errors.</summary>
    private const int InternetControlTos = 0xC0;

    /// <summary>
    /// DR: destination MAC = the real server's, source MAC = the balancer's, TTL - 1 (IPv6: hop limit - 1, no header
    /// checksum, ip_vs_dr_xmit_v6); every other byte as received.
    /// </summary>
    public static byte[] DirectRoute(byte[] input, RealServer server)
    {
        byte[] output = (byte[])input.Clone();
        server.Mac.GetAddressBytes().CopyTo(output, 0);
        Lab.BalancerMac.GetAddressBytes().CopyTo(output, 6);
        int offset = Build.IpOffset(output);
        if (output[offset] >> 4 == 6)
        {
            output[offset + 7]--;
            return output;
        }
        var ip = new IPv4Packet(new ByteArraySegment(output, offset, output.Length - offset));
        ip.TimeToLive -= 1;
        ip.UpdateIPChecksum();
        return output;
    }

    /// <summary>DR of a segment whose checksum the sender's NIC was to finish: the output carries the full checksum.</summary>
    public static byte[] DirectRouteFinishingChecksum(byte[] input, RealServer server)
    {
        byte[] output = DirectRoute(input, server);
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, output);
        if (ethernet.Extract<TcpPacket>() is { } tcp)
        {
            tcp.UpdateTcpChecksum();
        }
        else
        {
            var udp = ethernet.Extract<UdpPacket>() ?? throw new InvalidOperationException("neither TCP nor UDP");
            udp.UpdateUdpChecksum();
        }
        byte[] bytes = ethernet.Bytes;
        return bytes.Length == output.Length ? bytes : throw new InvalidOperationException("PacketDotNet changed the frame length");
    }

    /// <summary>
    /// An ICMP error from the VIP (the datagram's destination, a local address of the director) back to the sender,
    /// as icmp_send writes it: IHL 5, TOS 0xC0, TTL 64, quoting the offending datagram as received, up to 548 bytes.
    /// ID 0 and no DF: the kernel's ID is a hashed counter, so the fixture fixes the one value udr documents.
    /// Sent to the frame's source MAC, in the frame's VLAN.
    /// </summary>
    public static byte[] IcmpError(byte[] input, int type, int code)
    {
        int offset = Build.IpOffset(input);
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(input.AsSpan(offset + 2));
        int quoted = Math.Min(totalLength, MaxQuote);
        byte[] body = new byte[8 + quoted];
        body[0] = (byte)type;
        body[1] = (byte)code;
        input.AsSpan(offset, quoted).CopyTo(body.AsSpan(8));
        var icmp = new IcmpV4Packet(new ByteArraySegment(body));
        var source = new IPAddress(input.AsSpan(offset + 16, 4));
        var destination = new IPAddress(input.AsSpan(offset + 12, 4));
        var ip = new IPv4Packet(source, destination)
        {
            TimeToLive = 64,
            TypeOfService = InternetControlTos,
            Id = 0,
            FragmentFlags = 0,
            Protocol = PacketDotNet.ProtocolType.Icmp,
            PayloadPacket = icmp,
        };
        icmp.UpdateIcmpChecksum();
        ip.UpdateIPChecksum();
        var requester = new PhysicalAddress(input.AsSpan(6, 6).ToArray());
        return Build.Frame(ip, Lab.BalancerMac, requester, VlanTciOf(input));
    }

    /// <summary>ARP reply: the balancer's MAC owns the VIP; padded to the 60-byte Ethernet minimum; same VLAN as the request.</summary>
    public static byte[] ArpReply(byte[] request, IPAddress vip)
    {
        int offset = Build.IpOffset(request);
        var requesterMac = new PhysicalAddress(request.AsSpan(offset + 8, 6).ToArray());
        var requesterAddress = new IPAddress(request.AsSpan(offset + 14, 4));
        var arp = new ArpPacket(ArpOperation.Response, requesterMac, requesterAddress, Lab.BalancerMac, vip);
        byte[] frame = Build.Frame(arp.Bytes, EthernetType.Arp, Lab.BalancerMac, requesterMac, VlanTciOf(request));
        return frame.Length >= 60 ? frame : [.. frame, .. new byte[60 - frame.Length]];
    }

    private static ushort? VlanTciOf(byte[] frame) =>
        Build.IpOffset(frame) == Build.EthernetHeader ? null : BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(14));
}
