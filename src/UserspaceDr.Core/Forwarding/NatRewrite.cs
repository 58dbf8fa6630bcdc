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

    private static void RewriteTransport(byte protocol, Span<byte> transport, int portOffset, uint oldAddress, uint newAddress, ushort port, bool checksumPartial)
    {
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < checksumOffset + 2)
        {
            return; // a later fragment: no transport header here (the first fragment carried the checksum)
        }
        ushort oldPort = BinaryPrimitives.ReadUInt16BigEndian(transport[portOffset..]);
        BinaryPrimitives.WriteUInt16BigEndian(transport[portOffset..], port);
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
