using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>Full TCP/UDP checksums over the IPv4 or IPv6 pseudo-header (for segments whose checksum offload left it unfinished).</summary>
public static class TransportChecksum
{
    /// <summary>Computes and stores the checksum of a whole, unfragmented TCP or UDP segment.</summary>
    public static void Finish(Ipv4Header ip, Span<byte> transport)
    {
        byte protocol = ip.Protocol;
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < checksumOffset + 2 || ip.IsFragment)
        {
            return;
        }
        transport[checksumOffset] = 0;
        transport[checksumOffset + 1] = 0;
        ushort sum = Compute(ip.Source, ip.Destination, protocol, transport);
        if (protocol == IpProtocol.Udp && sum == 0)
        {
            sum = 0xFFFF; // RFC 768: a computed zero is sent as all ones (0 means "no checksum")
        }
        transport[checksumOffset] = (byte)(sum >> 8);
        transport[checksumOffset + 1] = (byte)sum;
    }

    /// <summary>
    /// True when the TCP/UDP checksum field holds the folded pseudo-header sum and nothing else: what a sender with
    /// checksum offload (CHECKSUM_PARTIAL) leaves for the NIC to finish.
    /// </summary>
    public static bool HoldsOnlyPseudoHeaderSeed(Ipv4Header ip, ReadOnlySpan<byte> transport)
    {
        byte protocol = ip.Protocol;
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < checksumOffset + 2 || ip.IsFragment)
        {
            return false;
        }
        ushort stored = (ushort)(transport[checksumOffset] << 8 | transport[checksumOffset + 1]);
        return stored == Checksum.Fold(Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
    }

    /// <summary>The checksum of <paramref name="transport"/> (checksum field included as it stands).</summary>
    public static ushort Compute(uint source, uint destination, byte protocol, ReadOnlySpan<byte> transport) =>
        (ushort)~Checksum.Fold(Checksum.Add(transport, Checksum.PseudoHeader(source, destination, protocol, transport.Length)));

    /// <summary>
    /// Computes and stores the checksum of a whole TCP or UDP segment over the IPv6 pseudo-header; a computed 0 is sent as
    /// all ones for UDP, where 0 is illegal over IPv6 (RFC 8200 §8.1).
    /// </summary>
    public static void Finish(Ipv6Header ip, byte protocol, Span<byte> transport)
    {
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < checksumOffset + 2)
        {
            return;
        }
        Ipv6Checksum.Store(ip.Source, ip.Destination, protocol, transport, checksumOffset);
        if (protocol == IpProtocol.Udp && transport[checksumOffset] == 0 && transport[checksumOffset + 1] == 0)
        {
            transport[checksumOffset] = transport[checksumOffset + 1] = 0xFF;
        }
    }

    /// <summary>As the IPv4 form: the field holds the folded IPv6 pseudo-header sum and nothing else.</summary>
    public static bool HoldsOnlyPseudoHeaderSeed(Ipv6Header ip, byte protocol, ReadOnlySpan<byte> transport)
    {
        int checksumOffset = protocol == IpProtocol.Tcp ? TcpHeader.ChecksumOffset : UdpHeader.ChecksumOffset;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || transport.Length < checksumOffset + 2)
        {
            return false;
        }
        ushort stored = (ushort)(transport[checksumOffset] << 8 | transport[checksumOffset + 1]);
        return stored == Checksum.Fold(Ipv6Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
    }
}
