using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>
/// Assertions on one output frame, decoded with PacketDotNet (not udr's packet code), against the input frame it
/// came from: what direct routing may change, and what a reply must contain.
/// </summary>
internal static class DecodedFrame
{
    public static int IpOffset(byte[] frame) => BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) == 0x8100 ? 18 : 14;

    public static EthernetPacket Ethernet(byte[] frame) => (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);

    public static bool IsFragment(byte[] frame) => (BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(IpOffset(frame) + 6)) & 0x3FFF) != 0;

    /// <summary>A frame forwarded by DR: new MACs, TTL - 1, valid checksums, everything else (tag, options, payload, padding) as received.</summary>
    public static void AssertDirectRouted(byte[] input, byte[] output, PhysicalAddress expectedServerMac, string what)
    {
        EthernetPacket outEthernet = Ethernet(output);
        EthernetPacket inEthernet = Ethernet(input);
        Assert.That(output, Has.Length.EqualTo(input.Length), $"{what}: length");
        Assert.That(outEthernet.DestinationHardwareAddress, Is.EqualTo(expectedServerMac), $"{what}: destination MAC is the real server's");
        Assert.That(outEthernet.SourceHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: source MAC is the balancer's");
        int offset = IpOffset(input);
        Assert.That(IpOffset(output), Is.EqualTo(offset), $"{what}: VLAN tag kept or absent as received");
        Assert.That(output[12..offset], Is.EqualTo(input[12..offset]), $"{what}: 802.1Q tag and EtherType as received");

        IPv4Packet inIp = inEthernet.Extract<IPv4Packet>();
        IPv4Packet outIp = outEthernet.Extract<IPv4Packet>();
        Assert.That(outIp, Is.Not.Null, $"{what}: decodes as IPv4");
        Assert.That(outIp.TimeToLive, Is.EqualTo(inIp.TimeToLive - 1), $"{what}: TTL decremented");
        Assert.That(outIp.ValidIPChecksum, Is.True, $"{what}: IP header checksum valid");
        Assert.That(outIp.SourceAddress, Is.EqualTo(inIp.SourceAddress), $"{what}: source address unchanged");
        Assert.That(outIp.DestinationAddress, Is.EqualTo(inIp.DestinationAddress), $"{what}: DR keeps the VIP as destination");
        int headerLength = outIp.HeaderLength * 4;
        Assert.That(outIp.HeaderLength, Is.EqualTo(inIp.HeaderLength), $"{what}: IHL unchanged");
        Assert.That(output[(offset + 20)..(offset + headerLength)], Is.EqualTo(input[(offset + 20)..(offset + headerLength)]), $"{what}: IP options preserved");
        Assert.That(output[offset..(offset + 8)], Is.EqualTo(input[offset..(offset + 8)]), $"{what}: version..fragment fields unchanged");
        Assert.That(output[offset + 9], Is.EqualTo(input[offset + 9]), $"{what}: protocol unchanged");

        if (IsFragment(input))
        {
            Assert.That(output[(offset + headerLength)..], Is.EqualTo(input[(offset + headerLength)..]), $"{what}: fragment data as received");
            return;
        }
        if (outIp.Extract<TcpPacket>() is { } tcp && outIp.Protocol == PacketDotNet.ProtocolType.Tcp)
        {
            Assert.That(tcp.ValidTcpChecksum, Is.True, $"{what}: TCP checksum valid");
            Assert.That(tcp.PayloadData ?? [], Is.EqualTo(inIp.Extract<TcpPacket>().PayloadData ?? []), $"{what}: TCP payload as sent");
            AssertTransportEqualExceptChecksum(input, output, offset + headerLength, 16, what);
        }
        else if (outIp.Protocol == PacketDotNet.ProtocolType.Udp)
        {
            UdpPacket udp = outIp.Extract<UdpPacket>();
            Assert.That(udp.ValidUdpChecksum, Is.True, $"{what}: UDP checksum valid");
            Assert.That(udp.PayloadData ?? [], Is.EqualTo(inIp.Extract<UdpPacket>().PayloadData ?? []), $"{what}: UDP payload as sent");
            AssertTransportEqualExceptChecksum(input, output, offset + headerLength, 6, what);
        }
        else
        {
            Assert.That(output[(offset + headerLength)..], Is.EqualTo(input[(offset + headerLength)..]), $"{what}: payload as received");
        }
    }

    /// <summary>Everything after the IP header, padding included, equal but for the two checksum bytes (finished under --checksum-not-ready).</summary>
    private static void AssertTransportEqualExceptChecksum(byte[] input, byte[] output, int transport, int checksumOffset, string what)
    {
        byte[] a = input[transport..];
        byte[] b = output[transport..];
        a[checksumOffset] = a[checksumOffset + 1] = 0;
        b[checksumOffset] = b[checksumOffset + 1] = 0;
        Assert.That(b, Is.EqualTo(a), $"{what}: transport header, data and padding as received");
    }

    /// <summary>
    /// An ICMP error about <paramref name="input"/>: from the VIP (the datagram's destination) to its sender, to the
    /// sender's MAC in the same VLAN, quoting the datagram as received (at most 548 bytes), checksums valid.
    /// </summary>
    public static void AssertIcmpError(byte[] input, byte[] output, IcmpV4TypeCode typeCode, string what)
    {
        EthernetPacket inEthernet = Ethernet(input);
        EthernetPacket outEthernet = Ethernet(output);
        Assert.That(outEthernet.DestinationHardwareAddress, Is.EqualTo(inEthernet.SourceHardwareAddress), $"{what}: back to the sender's MAC");
        Assert.That(outEthernet.SourceHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: from the balancer's MAC");
        int inOffset = IpOffset(input);
        int outOffset = IpOffset(output);
        Assert.That(output[12..outOffset], Is.EqualTo(input[12..inOffset]), $"{what}: same VLAN tag");
        IPv4Packet inIp = inEthernet.Extract<IPv4Packet>();
        IPv4Packet outIp = outEthernet.Extract<IPv4Packet>();
        Assert.That(outIp.SourceAddress, Is.EqualTo(IPAddress.Parse(FixtureCatalog.Vip)), $"{what}: from the VIP");
        Assert.That(outIp.DestinationAddress, Is.EqualTo(inIp.SourceAddress), $"{what}: to the sender");
        Assert.That(outIp.ValidIPChecksum, Is.True, $"{what}: IP checksum valid");
        Assert.That(outIp.Protocol, Is.EqualTo(PacketDotNet.ProtocolType.Icmp), $"{what}: ICMP");
        Assert.That(outIp.TimeToLive, Is.GreaterThan(1), $"{what}: a usable TTL");
        Assert.That(output, Has.Length.EqualTo(outOffset + outIp.TotalLength), $"{what}: no trailing bytes");
        IcmpV4Packet icmp = outIp.Extract<IcmpV4Packet>();
        Assert.That(icmp.TypeCode, Is.EqualTo(typeCode), $"{what}: ICMP type and code");
        Assert.That(icmp.ValidIcmpChecksum, Is.True, $"{what}: ICMP checksum valid");
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(input.AsSpan(inOffset + 2));
        int quoted = Math.Min(totalLength, 576 - 20 - 8);
        byte[] quote = icmp.Bytes[8..];
        Assert.That(quote, Is.EqualTo(input[inOffset..(inOffset + quoted)]), $"{what}: quotes the datagram as received, up to 548 bytes");
        Assert.That(20 + icmp.Bytes.Length, Is.LessThanOrEqualTo(576), $"{what}: at most 576 bytes (RFC 1812)");
    }

    /// <summary>An ARP reply: the balancer's MAC owns the address asked for; to the requester, in its VLAN, at least 60 bytes.</summary>
    public static void AssertArpReply(byte[] input, byte[] output, string what)
    {
        EthernetPacket inEthernet = Ethernet(input);
        EthernetPacket outEthernet = Ethernet(output);
        ArpPacket request = inEthernet.Extract<ArpPacket>();
        ArpPacket reply = outEthernet.Extract<ArpPacket>();
        Assert.That(reply, Is.Not.Null, $"{what}: decodes as ARP");
        Assert.That(reply.Operation, Is.EqualTo(ArpOperation.Response), $"{what}: a reply");
        Assert.That(reply.SenderHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: the balancer's MAC");
        Assert.That(reply.SenderProtocolAddress, Is.EqualTo(request.TargetProtocolAddress), $"{what}: owns the address asked for");
        Assert.That(reply.TargetHardwareAddress, Is.EqualTo(request.SenderHardwareAddress), $"{what}: to the requester");
        Assert.That(reply.TargetProtocolAddress, Is.EqualTo(request.SenderProtocolAddress), $"{what}: to the requester's address");
        Assert.That(outEthernet.DestinationHardwareAddress, Is.EqualTo(inEthernet.SourceHardwareAddress), $"{what}: unicast to the requester");
        Assert.That(outEthernet.SourceHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: from the balancer");
        Assert.That(output[12..IpOffset(output)], Is.EqualTo(input[12..IpOffset(input)]), $"{what}: same VLAN tag");
        Assert.That(output, Has.Length.GreaterThanOrEqualTo(60), $"{what}: padded to the Ethernet minimum");
    }

    public static bool IsIpv6(byte[] frame) => BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(IpOffset(frame) - 2)) == 0x86DD;

    /// <summary>An IPv6 frame forwarded by DR (ip_vs_dr_xmit_v6): new MACs, hop limit − 1, every other byte as received.</summary>
    public static void AssertDirectRouted6(byte[] input, byte[] output, PhysicalAddress expectedServerMac, string what)
    {
        EthernetPacket outEthernet = Ethernet(output);
        Assert.That(output, Has.Length.EqualTo(input.Length), $"{what}: length");
        Assert.That(outEthernet.DestinationHardwareAddress, Is.EqualTo(expectedServerMac), $"{what}: destination MAC is the real server's");
        Assert.That(outEthernet.SourceHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: source MAC is the balancer's");
        IPv6Packet inIp = Ethernet(input).Extract<IPv6Packet>();
        IPv6Packet outIp = outEthernet.Extract<IPv6Packet>();
        Assert.That(outIp, Is.Not.Null, $"{what}: decodes as IPv6");
        Assert.That(outIp.HopLimit, Is.EqualTo(inIp.HopLimit - 1), $"{what}: hop limit decremented");
        int offset = IpOffset(input);
        Assert.That(output[12..(offset + 7)], Is.EqualTo(input[12..(offset + 7)]), $"{what}: EtherType, class, flow label, length, next header unchanged");
        Assert.That(output[(offset + 8)..], Is.EqualTo(input[(offset + 8)..]), $"{what}: addresses, extension headers and payload as received");
    }

    /// <summary>
    /// An ICMPv6 error about <paramref name="input"/>: from its destination (the VIP) to its sender and the sender's MAC,
    /// quoting the packet as received up to 1280 bytes in all, the ICMPv6 checksum valid over the pseudo-header.
    /// </summary>
    public static void AssertIcmpv6Error(byte[] input, byte[] output, byte type, byte code, string what)
    {
        EthernetPacket inEthernet = Ethernet(input);
        EthernetPacket outEthernet = Ethernet(output);
        Assert.That(outEthernet.DestinationHardwareAddress, Is.EqualTo(inEthernet.SourceHardwareAddress), $"{what}: back to the sender's MAC");
        Assert.That(outEthernet.SourceHardwareAddress, Is.EqualTo(FixtureCatalog.BalancerMac), $"{what}: from the balancer's MAC");
        IPv6Packet inIp = inEthernet.Extract<IPv6Packet>();
        IPv6Packet outIp = outEthernet.Extract<IPv6Packet>();
        Assert.That(outIp.SourceAddress, Is.EqualTo(inIp.DestinationAddress), $"{what}: from the VIP");
        Assert.That(outIp.DestinationAddress, Is.EqualTo(inIp.SourceAddress), $"{what}: to the sender");
        Assert.That(outIp.NextHeader, Is.EqualTo(PacketDotNet.ProtocolType.IcmpV6), $"{what}: ICMPv6");
        Assert.That(output.Length - 14, Is.LessThanOrEqualTo(1280), $"{what}: at most 1280 bytes (RFC 4443 §2.4)");
        byte[] icmp = output[(14 + 40)..];
        Assert.That((icmp[0], icmp[1]), Is.EqualTo((type, code)), $"{what}: type and code");
        Assert.That(Core.Packets.Ipv6Checksum.Valid(Core.Packets.InetAddress.FromIPAddress(outIp.SourceAddress).IPv6,
            Core.Packets.InetAddress.FromIPAddress(outIp.DestinationAddress).IPv6, 58, icmp), Is.True, $"{what}: ICMPv6 checksum valid");
        int quoted = Math.Min(input.Length - 14, 1280 - 48);
        Assert.That(icmp[8..], Is.EqualTo(input[14..(14 + quoted)]), $"{what}: quotes the packet as received");
    }

    /// <summary>A Neighbor Advertisement for the VIP asked about: the balancer's MAC in its option, hop limit 255, checksum valid.</summary>
    public static void AssertNeighborAdvertisement(byte[] input, byte[] output, string what)
    {
        IPv6Packet outIp = Ethernet(output).Extract<IPv6Packet>();
        Assert.That(outIp.HopLimit, Is.EqualTo(255), $"{what}: hop limit 255");
        byte[] icmp = output[(14 + 40)..];
        Assert.That(icmp[0], Is.EqualTo(136), $"{what}: a Neighbor Advertisement");
        Assert.That(icmp[8..24], Is.EqualTo(input[(14 + 48)..(14 + 64)]), $"{what}: for the target asked about");
        Assert.That(outIp.SourceAddress.GetAddressBytes(), Is.EqualTo(icmp[8..24]), $"{what}: from the target (the VIP)");
        Assert.That(icmp[24..32], Is.EqualTo(new byte[] { 2, 1 }.Concat(FixtureCatalog.BalancerMac.GetAddressBytes()).ToArray()),
            $"{what}: Target Link-Layer option: the balancer's MAC");
        Assert.That(Core.Packets.Ipv6Checksum.Valid(Core.Packets.InetAddress.FromIPAddress(outIp.SourceAddress).IPv6,
            Core.Packets.InetAddress.FromIPAddress(outIp.DestinationAddress).IPv6, 58, icmp), Is.True, $"{what}: ICMPv6 checksum valid");
    }
}
