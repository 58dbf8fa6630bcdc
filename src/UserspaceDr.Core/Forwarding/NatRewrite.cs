using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The address and port rewrites of NAT (ip_vs_nat_xmit and ip_vs_nat_xmit_v6 in, the SNAT handlers out), with
/// incremental checksum updates (RFC 1624): the IPv4 header for the address; TCP/UDP for the address (pseudo-header)
/// and the port. When the transport checksum is partial (the kernel finishes it on transmit), the field holds only the
/// pseudo-header seed: it follows the address change as a plain sum and ignores the port, which the final sum covers
/// by itself. IPv6 has no header checksum, and a UDP checksum of 0 (no checksum, illegal in IPv6) is computed in full,
/// as udp_snat_handler and udp_dnat_handler do.
/// </summary>
public static class NatRewrite
{
    /// <summary>Inbound: destination VIP:vport becomes RIP:rport.</summary>
    public static void Destination(Ipv4Header ip, Span<byte> transport, uint address, ushort port, bool checksumPartial)
    {
        uint delta = Checksum.AddressDelta(ip.Destination, address);
        ip.Destination = address;
        ip.HeaderChecksum = Checksum.ApplyDelta(ip.HeaderChecksum, delta);
        RewriteTransport(ip.Protocol, transport, portOffset: 2, delta, port, checksumPartial);
    }

    /// <summary>Outbound (a reply): source RIP:rport becomes VIP:vport.</summary>
    public static void Source(Ipv4Header ip, Span<byte> transport, uint address, ushort port, bool checksumPartial)
    {
        uint delta = Checksum.AddressDelta(ip.Source, address);
        ip.Source = address;
        ip.HeaderChecksum = Checksum.ApplyDelta(ip.HeaderChecksum, delta);
        RewriteTransport(ip.Protocol, transport, portOffset: 0, delta, port, checksumPartial);
    }

    /// <summary>
    /// IPv6 inbound: destination VIP:vport becomes RIP:rport. <paramref name="transport"/> is the upper-layer header the
    /// extension chain ends in (<paramref name="protocol"/>), empty for a later fragment.
    /// </summary>
    public static void Destination(Ipv6Header ip, byte protocol, Span<byte> transport, UInt128 address, ushort port, bool checksumPartial)
    {
        uint delta = Checksum.AddressDelta(ip.Destination, address);
        ip.Destination = address;
        RewriteIpv6Transport(ip, protocol, transport, portOffset: 2, delta, port, checksumPartial);
    }

    /// <summary>IPv6 outbound (a reply): source RIP:rport becomes VIP:vport.</summary>
    public static void Source(Ipv6Header ip, byte protocol, Span<byte> transport, UInt128 address, ushort port, bool checksumPartial)
    {
        uint delta = Checksum.AddressDelta(ip.Source, address);
        ip.Source = address;
        RewriteIpv6Transport(ip, protocol, transport, portOffset: 0, delta, port, checksumPartial);
    }

    /// <summary>
    /// Inbound ICMP error about a reply (ip_vs_nat_icmp, "in"): the quoted packet went VIP:vport → client, and the real
    /// server only knows it as RIP:rport → client, so its source becomes <paramref name="address"/>:<paramref name="port"/>.
    /// <paramref name="icmp"/> is the whole ICMP message; <paramref name="quoted"/> the IPv4 header inside it.
    /// </summary>
    public static void IcmpQuotedSource(Span<byte> icmp, Ipv4Header quoted, uint address, ushort port)
    {
        uint delta = Checksum.AddressDelta(quoted.Source, address);
        quoted.Source = address;
        FinishQuotedRewrite(icmp, quoted, portOffset: 0, delta, port);
    }

    /// <summary>
    /// Outbound ICMP error about a client's packet (ip_vs_nat_icmp, "out"): the quoted packet went client → RIP:rport,
    /// and the client only knows VIP:vport, so its destination becomes <paramref name="address"/>:<paramref name="port"/>.
    /// </summary>
    public static void IcmpQuotedDestination(Span<byte> icmp, Ipv4Header quoted, uint address, ushort port)
    {
        uint delta = Checksum.AddressDelta(quoted.Destination, address);
        quoted.Destination = address;
        FinishQuotedRewrite(icmp, quoted, portOffset: 2, delta, port);
    }

    /// <summary>
    /// ip_vs_nat_icmp_v6 toward a NAT server: an ICMPv6 error about a reply (VIP:vport → client) is quoted as the server
    /// sent it (RIP:rport → client), and its checksum is computed for the outer destination the transmit stage gives it
    /// (the server). <paramref name="quotedTransport"/> is the quoted TCP/UDP header, as far as the quote holds it.
    /// </summary>
    public static void Icmpv6ToServer(Ipv6Header outer, Span<byte> icmp, Ipv6Header quoted, byte quotedProtocol, Span<byte> quotedTransport,
        UInt128 server, ushort serverPort)
    {
        uint delta = Checksum.AddressDelta(quoted.Source, server);
        quoted.Source = server;
        RewriteTransport(quotedProtocol, quotedTransport, portOffset: 0, delta, serverPort, checksumPartial: false);
        Ipv6Checksum.Store(outer.Source, server, Ipv6NextHeader.Icmpv6, icmp, 2);
    }

    /// <summary>
    /// ip_vs_nat_icmp_v6 from a NAT server: an ICMPv6 error about a client's packet (client → RIP:rport) comes from the
    /// VIP about client → VIP:vport, its checksum recomputed over the new pseudo-header.
    /// </summary>
    public static void Icmpv6FromServer(Ipv6Header outer, Span<byte> icmp, Ipv6Header quoted, byte quotedProtocol, Span<byte> quotedTransport,
        UInt128 vip, ushort virtualPort)
    {
        uint delta = Checksum.AddressDelta(quoted.Destination, vip);
        quoted.Destination = vip;
        RewriteTransport(quotedProtocol, quotedTransport, portOffset: 2, delta, virtualPort, checksumPartial: false);
        outer.Source = vip;
        Ipv6Checksum.Store(vip, outer.Destination, Ipv6NextHeader.Icmpv6, icmp, 2);
    }

    /// <summary>
    /// The rest of an ICMP quote's translation: the quoted IP checksum and port, the quoted transport checksum, and the
    /// ICMP checksum over the whole message. The kernel leaves the quoted transport checksum stale; udr goes further
    /// and keeps it right whenever its field is inside the quote (UDP: always, the quote holds at least 8 bytes; TCP:
    /// when at least 18 bytes are quoted), because some stacks match quoted checksums and a packet capture then shows
    /// the translated quote as the packet the receiver really sent.
    /// </summary>
    private static void FinishQuotedRewrite(Span<byte> icmp, Ipv4Header quoted, int portOffset, uint delta, ushort port)
    {
        quoted.HeaderChecksum = Checksum.ApplyDelta(quoted.HeaderChecksum, delta);
        RewriteTransport(quoted.Protocol, quoted.Bytes[quoted.HeaderLength..], portOffset, delta, port, checksumPartial: false);
        icmp[2] = 0;
        icmp[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
    }

    /// <summary>
    /// Rewrites the port and patches the checksum of a TCP/UDP header, as far as <paramref name="transport"/> holds
    /// them: a later fragment has neither (the first fragment carried them), an ICMP quote may hold the ports but not
    /// the TCP checksum.
    /// </summary>
    private static void RewriteTransport(byte protocol, Span<byte> transport, int portOffset, uint addressDelta, ushort port, bool checksumPartial)
    {
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < portOffset + 2)
        {
            return;
        }
        ushort oldPort = BinaryPrimitives.ReadUInt16BigEndian(transport[portOffset..]);
        BinaryPrimitives.WriteUInt16BigEndian(transport[portOffset..], port);
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if (transport.Length < checksumOffset + 2)
        {
            return;
        }
        ushort checksum = BinaryPrimitives.ReadUInt16BigEndian(transport[checksumOffset..]);
        if (checksumPartial)
        {
            checksum = Checksum.ApplyDeltaToSum(checksum, addressDelta);
        }
        else if (protocol == IpProtocol.Udp && checksum == 0)
        {
            return; // UDP without a checksum stays without one
        }
        else
        {
            checksum = Checksum.Update(Checksum.ApplyDelta(checksum, addressDelta), oldPort, port);
            if (protocol == IpProtocol.Udp && checksum == 0)
            {
                checksum = 0xFFFF;
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(transport[checksumOffset..], checksum);
    }

    /// <summary>
    /// The IPv6 form of <see cref="RewriteTransport"/>: a whole UDP datagram that came without a checksum (0, which IPv6
    /// forbids) leaves with one computed in full over the new pseudo-header; a first fragment's cannot be, and stays 0.
    /// </summary>
    private static void RewriteIpv6Transport(Ipv6Header ip, byte protocol, Span<byte> transport, int portOffset, uint addressDelta, ushort port,
        bool checksumPartial)
    {
        RewriteTransport(protocol, transport, portOffset, addressDelta, port, checksumPartial);
        if (protocol == IpProtocol.Udp && !checksumPartial && transport.Length >= UdpHeader.Length &&
            BinaryPrimitives.ReadUInt16BigEndian(transport[UdpHeader.ChecksumOffset..]) == 0 &&
            BinaryPrimitives.ReadUInt16BigEndian(transport[4..]) == transport.Length)
        {
            TransportChecksum.Finish(ip, protocol, transport);
        }
    }
}
