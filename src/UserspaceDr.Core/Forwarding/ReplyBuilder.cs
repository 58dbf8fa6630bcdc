using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>Writes the frames udr answers with itself: ARP replies for VIPs and ICMP errors as IPVS sends them.</summary>
public static class ReplyBuilder
{
    /// <summary>RFC 1812 §4.3.2.3 / Linux icmp_send: an ICMP error carries at most 576 bytes of IP datagram.</summary>
    public const int MaxIcmpErrorDatagram = 576;

    /// <summary>RFC 4443 §2.4(c): an ICMPv6 error carries as much of the packet as fits in the IPv6 minimum MTU.</summary>
    public const int MaxIcmpv6ErrorDatagram = Ipv6Header.MinimumMtu;

    /// <summary>Largest reply frame the builders write (Ethernet + one VLAN tag + a 1280-byte ICMPv6 error).</summary>
    public const int MaxReplyLength = EthernetFrame.HeaderLength + EthernetFrame.VlanTagLength + MaxIcmpv6ErrorDatagram;

    /// <summary>IPTOS_PREC_INTERNETCONTROL, the TOS Linux gives ICMP errors.</summary>
    private const byte InternetControlTos = 0xC0;
    private const byte DefaultTtl = 64;

    /// <summary>
    /// Writes the Ethernet header of a reply to <paramref name="request"/>, addressed to <paramref name="destinationMac"/>
    /// (VLAN tag kept); returns its length.
    /// </summary>
    private static int WriteEthernetReply(EthernetFrame request, MacAddress destinationMac, MacAddress localMac, ushort etherType, Span<byte> reply)
    {
        destinationMac.Write(reply);
        localMac.Write(reply[6..]);
        int offset = 12;
        if (request.HasVlanTag)
        {
            request.Bytes.Slice(12, EthernetFrame.VlanTagLength).CopyTo(reply[12..]);
            offset += EthernetFrame.VlanTagLength;
        }
        BinaryPrimitives.WriteUInt16BigEndian(reply[offset..], etherType);
        return offset + 2;
    }

    /// <summary>ARP reply: <paramref name="localMac"/> owns the requested address. Returns the frame length.</summary>
    public static int WriteArpReply(EthernetFrame request, ArpPacket arp, MacAddress localMac, Span<byte> reply)
    {
        int offset = WriteEthernetReply(request, request.Source, localMac, EtherTypes.Arp, reply);
        Span<byte> body = reply.Slice(offset, ArpPacket.Length);
        request.Payload[..ArpPacket.Length].CopyTo(body); // htype, ptype, hlen, plen
        ArpPacket.TryCreate(body, out ArpPacket answer);
        answer.Operation = ArpOperation.Reply;
        answer.TargetMac = arp.SenderMac;
        answer.TargetAddress = arp.SenderAddress;
        answer.SenderMac = localMac;
        answer.SenderAddress = arp.TargetAddress;
        int length = offset + ArpPacket.Length;
        // Pad to the Ethernet minimum (60 bytes without FCS), as a NIC would.
        int padded = Math.Max(length, 60);
        reply[length..padded].Clear();
        return padded;
    }

    /// <summary>
    /// ICMP error about <paramref name="offending"/> (the received IPv4 datagram), from <paramref name="source"/>, back
    /// to the sender's MAC. <paramref name="restOfHeader"/> is the 32-bit word after the checksum (next-hop MTU for
    /// fragmentation-needed). Returns the frame length.
    /// </summary>
    public static int WriteIcmpError(EthernetFrame request, Ipv4Header offending, MacAddress localMac, uint source,
        byte type, byte code, uint restOfHeader, Span<byte> reply) =>
        WriteIcmpError(request, request.Source, offending, localMac, source, type, code, restOfHeader, reply);

    /// <summary>
    /// As above, sent to <paramref name="destinationMac"/> rather than back to the request's sender: for an error about
    /// a packet quoted in the request (a tunnelled client packet), which goes to that packet's sender. The quote is the
    /// offending datagram as far as <paramref name="offending"/>'s bytes hold it (a quote of a quote may be short).
    /// </summary>
    public static int WriteIcmpError(EthernetFrame request, MacAddress destinationMac, Ipv4Header offending, MacAddress localMac, uint source,
        byte type, byte code, uint restOfHeader, Span<byte> reply)
    {
        int offset = WriteEthernetReply(request, destinationMac, localMac, EtherTypes.Ipv4, reply);
        int quoted = Math.Min(Math.Min(offending.TotalLength, offending.Bytes.Length), MaxIcmpErrorDatagram - Ipv4Header.MinLength - IcmpHeader.Length);
        int totalLength = Ipv4Header.MinLength + IcmpHeader.Length + quoted;

        Span<byte> ip = reply.Slice(offset, totalLength);
        ip[0] = 0x45;
        ip[1] = InternetControlTos;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt32BigEndian(ip[4..], 0); // identification 0, no flags
        ip[8] = DefaultTtl;
        ip[9] = IpProtocol.Icmp;
        var header = new Ipv4Header(ip);
        header.Source = source;
        header.Destination = offending.Source;
        header.RecomputeHeaderChecksum();

        Span<byte> icmp = ip[Ipv4Header.MinLength..];
        icmp[0] = type;
        icmp[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], 0);
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], restOfHeader);
        offending.Bytes[..quoted].CopyTo(icmp[IcmpHeader.Length..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
        return offset + totalLength;
    }

    /// <summary>
    /// ICMPv6 error about <paramref name="offending"/> (the received IPv6 packet, fixed header first, cut to its payload
    /// length), from <paramref name="source"/> (the VIP it was sent to, as icmp6_send picks), back to the sender's MAC:
    /// as much of the packet as fits in 1280 bytes, the checksum over the IPv6 pseudo-header. <paramref name="parameter"/>
    /// is the word after the checksum (the MTU of a Packet Too Big). Returns the frame length.
    /// </summary>
    public static int WriteIcmpv6Error(EthernetFrame request, ReadOnlySpan<byte> offending, MacAddress localMac, UInt128 source,
        byte type, byte code, uint parameter, Span<byte> reply)
    {
        int offset = WriteEthernetReply(request, request.Source, localMac, EtherTypes.Ipv6, reply);
        int quoted = Math.Min(offending.Length, MaxIcmpv6ErrorDatagram - Ipv6Header.Length - IcmpHeader.Length);
        int icmpLength = IcmpHeader.Length + quoted;
        UInt128 destination = BinaryPrimitives.ReadUInt128BigEndian(offending[8..]);
        Span<byte> packet = reply.Slice(offset, Ipv6Header.Length + icmpLength);
        Ipv6Header.Write(packet, 0, (ushort)icmpLength, Ipv6NextHeader.Icmpv6, DefaultTtl, source, destination);
        Span<byte> icmp = packet[Ipv6Header.Length..];
        icmp[0] = type;
        icmp[1] = code;
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], parameter);
        offending[..quoted].CopyTo(icmp[IcmpHeader.Length..]);
        Ipv6Checksum.Store(source, destination, Ipv6NextHeader.Icmpv6, icmp, 2);
        return offset + packet.Length;
    }

    /// <summary>
    /// The Neighbor Advertisement that answers a solicitation for <paramref name="target"/> (a VIP): solicited and override
    /// set, the Target-LL option with <paramref name="localMac"/>, hop limit 255, to the soliciting address (all nodes
    /// for a duplicate-address probe from ::, without the solicited flag) and its MAC. Returns the frame length.
    /// </summary>
    public static int WriteNeighborAdvertisement(EthernetFrame request, UInt128 solicitor, UInt128 target, MacAddress localMac, Span<byte> reply)
    {
        bool fromUnspecified = solicitor == UInt128.Zero;
        UInt128 destination = fromUnspecified ? Ndp.AllNodes : solicitor;
        int offset = WriteEthernetReply(request, fromUnspecified ? Ndp.MulticastMac(Ndp.AllNodes) : request.Source, localMac, EtherTypes.Ipv6, reply);
        return offset + Ndp.WritePacket(reply[offset..], Icmpv6Type.NeighborAdvertisement,
            fromUnspecified ? Ndp.OverrideFlag : Ndp.SolicitedFlag | Ndp.OverrideFlag, target, destination, target, Ndp.TargetLinkLayerOption, localMac);
    }
}
