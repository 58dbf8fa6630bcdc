using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The address and port rewrites of NAT (ip_vs_nat_xmit in, the SNAT handlers out), with incremental checksum
/// updates (RFC 1624): the IP header for the address; TCP/UDP for the address (pseudo-header) and the port. When the
/// transport checksum is partial (the kernel finishes it on transmit), the field holds only the pseudo-header seed:
/// it follows the address change as a plain sum and ignores the port, which the final sum covers by itself.
/// </summary>
public static class NatRewrite
{
    /// <summary>Inbound: destination VIP:vport becomes RIP:rport.</summary>
    public static void Destination(Ipv4Header ip, Span<byte> transport, uint address, ushort port, bool checksumPartial)
    {
        uint oldAddress = ip.Destination;
        ip.Destination = address;
        ip.HeaderChecksum = Checksum.Update(ip.HeaderChecksum, oldAddress, address);
        RewriteTransport(ip.Protocol, transport, portOffset: 2, oldAddress, address, port, checksumPartial);
    }

    /// <summary>Outbound (a reply): source RIP:rport becomes VIP:vport.</summary>
    public static void Source(Ipv4Header ip, Span<byte> transport, uint address, ushort port, bool checksumPartial)
    {
        uint oldAddress = ip.Source;
        ip.Source = address;
        ip.HeaderChecksum = Checksum.Update(ip.HeaderChecksum, oldAddress, address);
        RewriteTransport(ip.Protocol, transport, portOffset: 0, oldAddress, address, port, checksumPartial);
    }

    /// <summary>
    /// Inbound ICMP error about a reply (ip_vs_nat_icmp, "in"): the quoted packet went VIP:vport → client, and the real
    /// server only knows it as RIP:rport → client, so its source becomes <paramref name="address"/>:<paramref name="port"/>.
    /// <paramref name="icmp"/> is the whole ICMP message; <paramref name="quoted"/> the IPv4 header inside it.
    /// </summary>
    public static void IcmpQuotedSource(Span<byte> icmp, Ipv4Header quoted, uint address, ushort port)
    {
        uint oldAddress = quoted.Source;
        quoted.Source = address;
        FinishQuotedRewrite(icmp, quoted, portOffset: 0, oldAddress, address, port);
    }

    /// <summary>
    /// Outbound ICMP error about a client's packet (ip_vs_nat_icmp, "out"): the quoted packet went client → RIP:rport,
    /// and the client only knows VIP:vport, so its destination becomes <paramref name="address"/>:<paramref name="port"/>.
    /// </summary>
    public static void IcmpQuotedDestination(Span<byte> icmp, Ipv4Header quoted, uint address, ushort port)
    {
        uint oldAddress = quoted.Destination;
        quoted.Destination = address;
        FinishQuotedRewrite(icmp, quoted, portOffset: 2, oldAddress, address, port);
    }

    /// <summary>
    /// The rest of an ICMP quote's translation: the quoted IP checksum and port, the quoted transport checksum, and the
    /// ICMP checksum over the whole message. The kernel leaves the quoted transport checksum stale; udr goes further
    /// and keeps it right whenever its field is inside the quote (UDP: always, the quote holds at least 8 bytes; TCP:
    /// when at least 18 bytes are quoted), because some stacks match quoted checksums and a packet capture then shows
    /// the translated quote as the packet the receiver really sent.
    /// </summary>
    private static void FinishQuotedRewrite(Span<byte> icmp, Ipv4Header quoted, int portOffset, uint oldAddress, uint newAddress, ushort port)
    {
        quoted.HeaderChecksum = Checksum.Update(quoted.HeaderChecksum, oldAddress, newAddress);
        RewriteTransport(quoted.Protocol, quoted.Bytes[quoted.HeaderLength..], portOffset, oldAddress, newAddress, port, checksumPartial: false);
        icmp[2] = 0;
        icmp[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], Checksum.Compute(icmp));
    }

    /// <summary>
    /// Rewrites the port and patches the checksum of a TCP/UDP header, as far as <paramref name="transport"/> holds
    /// them: a later fragment has neither (the first fragment carried them), an ICMP quote may hold the ports but not
    /// the TCP checksum.
    /// </summary>
    private static void RewriteTransport(byte protocol, Span<byte> transport, int portOffset, uint oldAddress, uint newAddress, ushort port, bool checksumPartial)
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
            checksum = Checksum.UpdateSum(checksum, oldAddress, newAddress);
        }
        else if (protocol == IpProtocol.Udp && checksum == 0)
        {
            return; // UDP without a checksum stays without one
        }
        else
        {
            checksum = Checksum.Update(Checksum.Update(checksum, oldAddress, newAddress), oldPort, port);
            if (protocol == IpProtocol.Udp && checksum == 0)
            {
                checksum = 0xFFFF;
            }
        }
        BinaryPrimitives.WriteUInt16BigEndian(transport[checksumOffset..], checksum);
    }
}
