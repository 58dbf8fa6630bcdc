using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>Full TCP/UDP checksums over the IPv4 or IPv6 pseudo-header (for segments whose checksum offload left it unfinished).</summary>
public static class TransportChecksum
{
    /// <summary>Computes and stores the checksum of a whole, unfragmented TCP or UDP segment.</summary>
    public static void Finish(Ipv4Header ip, Span<byte> transport)
    {
        byte protocol = ip.Protocol;
        int offset = ChecksumOffset(protocol, transport.Length);
        if (offset >= 0 && !ip.IsFragment)
        {
            Store(transport, offset, protocol, Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
        }
    }

    /// <summary>The same over the IPv6 pseudo-header (<paramref name="protocol"/>: the upper layer the header chain ends in).</summary>
    public static void Finish(Ipv6Header ip, byte protocol, Span<byte> transport)
    {
        int offset = ChecksumOffset(protocol, transport.Length);
        if (offset >= 0)
        {
            Store(transport, offset, protocol, Ipv6Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
        }
    }

    /// <summary>
    /// True when the TCP/UDP checksum field holds the folded pseudo-header sum and nothing else: what a sender with
    /// checksum offload (CHECKSUM_PARTIAL) leaves for the NIC to finish.
    /// </summary>
    public static bool HoldsOnlyPseudoHeaderSeed(Ipv4Header ip, ReadOnlySpan<byte> transport)
    {
        byte protocol = ip.Protocol;
        int offset = ChecksumOffset(protocol, transport.Length);
        return offset >= 0 && !ip.IsFragment &&
            HoldsOnly(transport, offset, Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
    }

    /// <summary>As the IPv4 form: the field holds the folded IPv6 pseudo-header sum and nothing else.</summary>
    public static bool HoldsOnlyPseudoHeaderSeed(Ipv6Header ip, byte protocol, ReadOnlySpan<byte> transport)
    {
        int offset = ChecksumOffset(protocol, transport.Length);
        return offset >= 0 && HoldsOnly(transport, offset, Ipv6Checksum.PseudoHeader(ip.Source, ip.Destination, protocol, transport.Length));
    }

    /// <summary>The checksum of <paramref name="transport"/> (checksum field included as it stands).</summary>
    public static ushort Compute(uint source, uint destination, byte protocol, ReadOnlySpan<byte> transport) =>
        (ushort)~Checksum.Fold(Checksum.Add(transport, Checksum.PseudoHeader(source, destination, protocol, transport.Length)));

    /// <summary>Where a TCP or UDP segment of <paramref name="length"/> bytes keeps its checksum; -1 for another protocol or too short.</summary>
    private static int ChecksumOffset(byte protocol, int length)
    {
        int offset = protocol switch
        {
            IpProtocol.Tcp => TcpHeader.ChecksumOffset,
            IpProtocol.Udp => UdpHeader.ChecksumOffset,
            _ => -1,
        };
        return offset >= 0 && length >= offset + 2 ? offset : -1;
    }

    /// <summary>
    /// The checksum over <paramref name="pseudoHeader"/> and the segment, stored; a computed 0 is sent as all ones for UDP
    /// (RFC 768: 0 means "no checksum", which IPv6 does not allow at all, RFC 8200 §8.1).
    /// </summary>
    private static void Store(Span<byte> transport, int offset, byte protocol, ulong pseudoHeader)
    {
        BinaryPrimitives.WriteUInt16BigEndian(transport[offset..], 0);
        ushort sum = (ushort)~Checksum.Fold(Checksum.Add(transport, pseudoHeader));
        BinaryPrimitives.WriteUInt16BigEndian(transport[offset..], protocol == IpProtocol.Udp && sum == 0 ? (ushort)0xFFFF : sum);
    }

    private static bool HoldsOnly(ReadOnlySpan<byte> transport, int offset, ulong pseudoHeader) =>
        BinaryPrimitives.ReadUInt16BigEndian(transport[offset..]) == Checksum.Fold(pseudoHeader);
}
