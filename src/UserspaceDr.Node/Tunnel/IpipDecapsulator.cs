using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// The checks of the user-space tunnel endpoint, without I/O: given one packet as a raw socket receives it (an outer
/// IPv4 header first, protocol 4 or 41; or, from an IPv6 raw socket, the inner packet with the outer header's
/// destination and traffic class beside it), decide whether its inner packet (IPv4 or IPv6) may go to the local stack,
/// and where it lies. Everything else is a named <see cref="DecapsulationOutcome"/>. No allocation, no exceptions.
/// </summary>
/// <remarks>
/// The kernel has already checked the outer header before a raw socket sees it (ip_rcv: version, IHL, checksum,
/// length; ip_local_deliver: reassembly), so outer failures are not expected; they are checked anyway because this
/// code must never trust its input. Like the kernel's own ipip decapsulation (ip_tunnel_rcv), the outer ECN
/// "congestion experienced" mark is copied into an ECN-capable inner packet and a non-capable one is dropped
/// (RFC 6040); the inner header checksum is patched for that change.
/// </remarks>
public static class IpipDecapsulator
{
    private const int EcnMask = 0x03;
    private const int EcnCongestionExperienced = 0x03;
    private const int TcpMinLength = 20;
    private const int UdpHeaderLength = 8;

    /// <param name="packet">The received packet, outer header first; the inner header may be changed in place (ECN).</param>
    /// <param name="localAddresses">This node's own addresses: the outer destination must be one of them.</param>
    /// <param name="vips">The VIPs served here: the inner destination must be one of them.</param>
    /// <param name="innerOffset">Where the inner packet starts (valid when <see cref="DecapsulationOutcome.Delivered"/>).</param>
    /// <param name="innerLength">The inner packet's length, its own total length (trailing bytes are not part of it).</param>
    public static DecapsulationOutcome Decapsulate(Span<byte> packet, AddressSet localAddresses, AddressSet vips,
        out int innerOffset, out int innerLength)
    {
        innerOffset = 0;
        innerLength = 0;
        DecapsulationOutcome outer = CheckOuter(packet, localAddresses, vips, isGre: false, out int outerHeaderLength, out int outerTotalLength);
        if (outer != DecapsulationOutcome.Delivered)
        {
            return outer;
        }
        var outerHeader = new Ipv4Header(packet);
        Span<byte> inner = packet[outerHeaderLength..outerTotalLength];
        innerOffset = outerHeaderLength;
        bool congestion = (outerHeader.TypeOfService & EcnMask) == EcnCongestionExperienced;
        return outerHeader.Protocol == IpProtocol.IpInIp
            ? CheckIpv4Inner(inner, congestion, vips, out innerLength)
            : CheckIpv6Inner(inner, congestion, vips, out innerLength);
    }

    /// <summary>
    /// A packet from a raw IPv6 socket of next header <paramref name="nextHeader"/> (4: IPv4 inside, 41: IPv6 inside):
    /// <paramref name="inner"/> is the inner packet (the kernel passes no IPv6 header), <paramref name="outerDestination"/>
    /// and <paramref name="outerTrafficClass"/> the outer header's, from the socket's control messages.
    /// </summary>
    public static DecapsulationOutcome DecapsulateFromIpv6(Span<byte> inner, byte nextHeader, UInt128 outerDestination, byte outerTrafficClass,
        AddressSet localAddresses, AddressSet vips, out int innerLength)
    {
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(vips);
        innerLength = 0;
        if (nextHeader is not (Ipv6NextHeader.Ipv4 or Ipv6NextHeader.Ipv6))
        {
            return DecapsulationOutcome.OuterNotIpip;
        }
        if (!IsOwn(InetAddress.FromIPv6(outerDestination), localAddresses, vips))
        {
            return DecapsulationOutcome.OuterNotLocal;
        }
        bool congestion = (outerTrafficClass & EcnMask) == EcnCongestionExperienced;
        return nextHeader == Ipv6NextHeader.Ipv4
            ? CheckIpv4Inner(inner, congestion, vips, out innerLength)
            : CheckIpv6Inner(inner, congestion, vips, out innerLength);
    }

    /// <summary>
    /// The outer IPv4 header as a raw socket passes it: sane, not a fragment, of the protocol this socket takes (4 or 41,
    /// or 47 for GRE), to one of this node's own addresses that is not a VIP.
    /// </summary>
    private static DecapsulationOutcome CheckOuter(Span<byte> packet, AddressSet localAddresses, AddressSet vips, bool isGre,
        out int headerLength, out int totalLength)
    {
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(vips);
        DecapsulationOutcome outer = CheckHeader(packet, isOuter: true, out headerLength, out totalLength);
        if (outer != DecapsulationOutcome.Delivered)
        {
            return outer;
        }
        var header = new Ipv4Header(packet);
        if (header.IsFragment)
        {
            return DecapsulationOutcome.OuterFragment;
        }
        if (isGre ? header.Protocol != IpProtocol.Gre : header.Protocol is not (IpProtocol.IpInIp or Ipv6NextHeader.Ipv6))
        {
            return DecapsulationOutcome.OuterNotIpip;
        }
        return IsOwn(InetAddress.FromIPv4(header.Destination), localAddresses, vips) ? DecapsulationOutcome.Delivered : DecapsulationOutcome.OuterNotLocal;
    }

    /// <summary>GRE's flag bits (RFC 2784, RFC 2890): checksum, routing, key, sequence, strict source route; the low 3 bits the version.</summary>
    private const ushort GreChecksumPresent = 0x8000;
    private const ushort GreUnsupportedFields = 0x7800;
    private const ushort GreVersionMask = 0x0007;

    /// <summary>
    /// A GRE packet as a raw IPv4 socket of protocol 47 receives it, outer header first (ipvs_gre_encap's: version 0,
    /// at most the checksum): the GRE header checked (its checksum verified when present), then the inner IPv4 or IPv6
    /// packet as for IP-in-IP.
    /// </summary>
    public static DecapsulationOutcome DecapsulateGre(Span<byte> packet, AddressSet localAddresses, AddressSet vips,
        out int innerOffset, out int innerLength)
    {
        innerOffset = 0;
        innerLength = 0;
        DecapsulationOutcome outer = CheckOuter(packet, localAddresses, vips, isGre: true, out int outerHeaderLength, out int outerTotalLength);
        if (outer != DecapsulationOutcome.Delivered)
        {
            return outer;
        }
        var outerHeader = new Ipv4Header(packet);
        DecapsulationOutcome outcome = CheckGre(packet[outerHeaderLength..outerTotalLength], outerHeader.TypeOfService, vips, out int greInner, out innerLength);
        innerOffset = outerHeaderLength + greInner;
        return outcome;
    }

    /// <summary>
    /// A GUE datagram's payload as a UDP socket bound to the GUE port receives it (the kernel has checked the outer
    /// header and the UDP checksum, and keeps both), with the outer destination and TOS from the socket's control
    /// messages: a version 0 data message (not a control one) whose optional fields are skipped, its inner protocol 4
    /// or 41, then the inner packet as for IP-in-IP.
    /// </summary>
    public static DecapsulationOutcome DecapsulateGue(Span<byte> payload, InetAddress outerDestination, byte outerTos, AddressSet localAddresses, AddressSet vips,
        out int innerOffset, out int innerLength)
    {
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(vips);
        innerOffset = 0;
        innerLength = 0;
        if (!IsOwn(outerDestination, localAddresses, vips))
        {
            return DecapsulationOutcome.OuterNotLocal;
        }
        // draft-ietf-intarea-gue: version (2 bits) 0, C (control) 0, Hlen (5 bits) words of optional fields, proto/ctype, flags.
        if (payload.Length < 4 || payload[0] >> 6 != 0 || (payload[0] & 0x20) != 0)
        {
            return DecapsulationOutcome.EncapsulationBadHeader;
        }
        int headerLength = 4 + ((payload[0] & 0x1F) * 4);
        if (payload.Length < headerLength || payload[1] is not (IpProtocol.IpInIp or Ipv6NextHeader.Ipv6))
        {
            return DecapsulationOutcome.EncapsulationBadHeader;
        }
        innerOffset = headerLength;
        bool congestion = (outerTos & EcnMask) == EcnCongestionExperienced;
        return payload[1] == IpProtocol.IpInIp
            ? CheckIpv4Inner(payload[headerLength..], congestion, vips, out innerLength)
            : CheckIpv6Inner(payload[headerLength..], congestion, vips, out innerLength);
    }

    /// <summary>
    /// A GRE packet from a raw IPv6 socket of protocol 47: <paramref name="gre"/> is the GRE header and what follows (the
    /// kernel passes no IPv6 header), the outer destination and traffic class from the socket's control messages.
    /// </summary>
    public static DecapsulationOutcome DecapsulateGreFromIpv6(Span<byte> gre, UInt128 outerDestination, byte outerTrafficClass,
        AddressSet localAddresses, AddressSet vips, out int innerOffset, out int innerLength)
    {
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(vips);
        innerOffset = 0;
        innerLength = 0;
        if (!IsOwn(InetAddress.FromIPv6(outerDestination), localAddresses, vips))
        {
            return DecapsulationOutcome.OuterNotLocal;
        }
        return CheckGre(gre, outerTrafficClass, vips, out innerOffset, out innerLength);
    }

    /// <summary>The outer destination is this node's: one of its addresses, and not a VIP (a VIP on lo is local too).</summary>
    private static bool IsOwn(InetAddress address, AddressSet localAddresses, AddressSet vips) => address.IsIPv4
        ? localAddresses.Contains(address.IPv4) && !vips.Contains(address.IPv4)
        : localAddresses.Contains(address.IPv6) && !vips.Contains(address.IPv6);

    /// <summary>The GRE header (version 0, at most the checksum, verified) and the inner packet it carries; <paramref name="innerOffset"/> from the GRE header.</summary>
    private static DecapsulationOutcome CheckGre(Span<byte> gre, byte outerTos, AddressSet vips, out int innerOffset, out int innerLength)
    {
        innerOffset = 0;
        innerLength = 0;
        if (gre.Length < 4)
        {
            return DecapsulationOutcome.EncapsulationBadHeader;
        }
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(gre);
        if ((flags & (GreUnsupportedFields | GreVersionMask)) != 0)
        {
            return DecapsulationOutcome.EncapsulationBadHeader;
        }
        int greLength = 4;
        if ((flags & GreChecksumPresent) != 0)
        {
            greLength = 8;
            if (gre.Length < greLength)
            {
                return DecapsulationOutcome.EncapsulationBadHeader;
            }
            if (Checksum.Fold(Checksum.Add(gre)) != 0xFFFF)
            {
                return DecapsulationOutcome.EncapsulationBadChecksum;
            }
        }
        ushort protocolType = BinaryPrimitives.ReadUInt16BigEndian(gre[2..]);
        if (protocolType is not (EtherTypes.Ipv4 or EtherTypes.Ipv6))
        {
            return DecapsulationOutcome.EncapsulationBadHeader;
        }
        innerOffset = greLength;
        bool congestion = (outerTos & EcnMask) == EcnCongestionExperienced;
        return protocolType == EtherTypes.Ipv4
            ? CheckIpv4Inner(gre[greLength..], congestion, vips, out innerLength)
            : CheckIpv6Inner(gre[greLength..], congestion, vips, out innerLength);
    }

    /// <summary>
    /// An inner IPv4 packet: a sane header for a VIP from a client, its transport checksum right, and the outer CE mark
    /// (<paramref name="congestion"/>) copied into it when it is ECN-capable (dropped when it is not).
    /// </summary>
    private static DecapsulationOutcome CheckIpv4Inner(Span<byte> inner, bool congestion, AddressSet vips, out int innerLength)
    {
        innerLength = 0;
        DecapsulationOutcome innerOutcome = CheckHeader(inner, isOuter: false, out int innerHeaderLength, out int innerTotalLength);
        if (innerOutcome != DecapsulationOutcome.Delivered)
        {
            return innerOutcome;
        }
        inner = inner[..innerTotalLength];
        var innerHeader = new Ipv4Header(inner);
        if (!vips.Contains(innerHeader.Destination))
        {
            return DecapsulationOutcome.InnerNotVip;
        }
        if (!IsClientAddress(innerHeader.Source) || vips.Contains(innerHeader.Source))
        {
            return DecapsulationOutcome.InnerBadSource;
        }
        if (!innerHeader.IsFragment && !TransportChecksumValid(innerHeader, inner[innerHeaderLength..]))
        {
            return DecapsulationOutcome.InnerBadTransportChecksum;
        }
        if (congestion && (innerHeader.TypeOfService & EcnMask) != EcnCongestionExperienced)
        {
            if ((innerHeader.TypeOfService & EcnMask) == 0)
            {
                return DecapsulationOutcome.InnerEcnNotCapable;
            }
            ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(inner);
            innerHeader.TypeOfService |= EcnCongestionExperienced;
            innerHeader.HeaderChecksum = Checksum.Update(innerHeader.HeaderChecksum, oldWord, BinaryPrimitives.ReadUInt16BigEndian(inner));
        }
        innerLength = innerTotalLength;
        return DecapsulationOutcome.Delivered;
    }

    /// <summary>As <see cref="CheckIpv4Inner"/>, for an inner IPv6 packet (no header checksum; the extension headers walked to the transport).</summary>
    private static DecapsulationOutcome CheckIpv6Inner(Span<byte> inner, bool congestion, AddressSet vips, out int innerLength)
    {
        innerLength = 0;
        if (inner.Length < Ipv6Header.Length)
        {
            return DecapsulationOutcome.InnerTruncated;
        }
        var header = new Ipv6Header(inner);
        if (header.Version != 6)
        {
            return DecapsulationOutcome.InnerBadVersion;
        }
        int length = Ipv6Header.Length + header.PayloadLength;
        if (length > inner.Length)
        {
            return DecapsulationOutcome.InnerBadTotalLength;
        }
        inner = inner[..length];
        if (!vips.Contains(header.Destination))
        {
            return DecapsulationOutcome.InnerNotVip;
        }
        UInt128 source = header.Source;
        if (source == UInt128.Zero || source == UInt128.One || (byte)(source >> 120) == 0xFF || vips.Contains(source))
        {
            return DecapsulationOutcome.InnerBadSource; // unspecified, loopback, multicast, or a VIP
        }
        Ipv6ChainEnd end = Ipv6ExtensionHeaders.Walk(inner, out Ipv6Transport transport);
        if (end == Ipv6ChainEnd.Truncated)
        {
            return DecapsulationOutcome.InnerTruncated;
        }
        if (end == Ipv6ChainEnd.Found && !transport.IsFragment && !Ipv6TransportChecksumValid(header, transport.Protocol, inner[transport.Offset..]))
        {
            return DecapsulationOutcome.InnerBadTransportChecksum;
        }
        byte trafficClass = header.TrafficClass;
        if (congestion && (trafficClass & EcnMask) != EcnCongestionExperienced)
        {
            if ((trafficClass & EcnMask) == 0)
            {
                return DecapsulationOutcome.InnerEcnNotCapable;
            }
            inner[1] |= EcnCongestionExperienced << 4; // the traffic class's low two bits, in the second byte's high nibble
        }
        innerLength = length;
        return DecapsulationOutcome.Delivered;
    }

    /// <summary>Version, IHL, total length and header checksum of one IPv4 header at the start of <paramref name="bytes"/>.</summary>
    private static DecapsulationOutcome CheckHeader(Span<byte> bytes, bool isOuter, out int headerLength, out int totalLength)
    {
        headerLength = 0;
        totalLength = 0;
        if (!Ipv4Header.TryCreate(bytes, out Ipv4Header header))
        {
            return isOuter ? DecapsulationOutcome.OuterTruncated : DecapsulationOutcome.InnerTruncated;
        }
        if (header.Version != 4)
        {
            return isOuter ? DecapsulationOutcome.OuterBadVersion : DecapsulationOutcome.InnerBadVersion;
        }
        headerLength = header.HeaderLength;
        if (headerLength < Ipv4Header.MinLength || headerLength > bytes.Length)
        {
            return isOuter ? DecapsulationOutcome.OuterBadHeaderLength : DecapsulationOutcome.InnerBadHeaderLength;
        }
        totalLength = header.TotalLength;
        if (totalLength < headerLength || totalLength > bytes.Length)
        {
            return isOuter ? DecapsulationOutcome.OuterBadTotalLength : DecapsulationOutcome.InnerBadTotalLength;
        }
        if (!header.HeaderChecksumValid)
        {
            return isOuter ? DecapsulationOutcome.OuterBadChecksum : DecapsulationOutcome.InnerBadChecksum;
        }
        return DecapsulationOutcome.Delivered;
    }

    /// <summary>A unicast host address a client could send from (what the kernel would not call a martian).</summary>
    private static bool IsClientAddress(uint address) => (address >> 24) is not (0 or 127) && address < 0xE000_0000;

    /// <summary>TCP and UDP checksums over pseudo-header and segment (UDP 0 = none); other protocols are not checked.</summary>
    private static bool TransportChecksumValid(Ipv4Header header, ReadOnlySpan<byte> transport)
    {
        switch (header.Protocol)
        {
            case IpProtocol.Tcp:
                return transport.Length >= TcpMinLength && Sum(header, transport) == 0xFFFF;
            case IpProtocol.Udp:
                if (transport.Length < UdpHeaderLength)
                {
                    return false;
                }
                int udpLength = BinaryPrimitives.ReadUInt16BigEndian(transport[4..]);
                if (udpLength < UdpHeaderLength || udpLength > transport.Length)
                {
                    return false;
                }
                return BinaryPrimitives.ReadUInt16BigEndian(transport[6..]) == 0 || Sum(header, transport[..udpLength]) == 0xFFFF;
            default:
                return true;
        }
    }

    /// <summary>TCP and UDP checksums over the IPv6 pseudo-header (a UDP checksum of 0 is invalid in IPv6, RFC 8200 §8.1).</summary>
    private static bool Ipv6TransportChecksumValid(Ipv6Header header, byte protocol, ReadOnlySpan<byte> transport)
    {
        switch (protocol)
        {
            case IpProtocol.Tcp:
                return transport.Length >= TcpMinLength && Ipv6Checksum.Valid(header.Source, header.Destination, protocol, transport);
            case IpProtocol.Udp:
                if (transport.Length < UdpHeaderLength)
                {
                    return false;
                }
                int udpLength = BinaryPrimitives.ReadUInt16BigEndian(transport[4..]);
                return udpLength >= UdpHeaderLength && udpLength <= transport.Length && BinaryPrimitives.ReadUInt16BigEndian(transport[6..]) != 0 &&
                    Ipv6Checksum.Valid(header.Source, header.Destination, protocol, transport[..udpLength]);
            default:
                return true;
        }
    }

    private static ushort Sum(Ipv4Header header, ReadOnlySpan<byte> transport) =>
        Checksum.Fold(Checksum.Add(transport, Checksum.PseudoHeader(header.Source, header.Destination, header.Protocol, transport.Length)));
}
