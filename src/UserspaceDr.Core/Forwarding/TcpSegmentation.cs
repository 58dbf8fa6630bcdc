using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Software TCP segmentation: splits an Ethernet/IPv4/TCP super-frame (a GSO/GRO frame larger than the link MTU)
/// into wire-sized segments, as a NIC's TSO would. Used where the kernel cannot be handed the frame with a
/// virtio_net_hdr (the libpcap backend). Each segment carries the original headers with its own total length,
/// IP ID (original + index), sequence number, checksums, and FIN/PSH only on the last (CWR only on the first).
/// Allocation-free: the caller asks for the count, then writes segment by segment into its own buffer.
/// </summary>
public static class TcpSegmentation
{
    private const byte Cwr = 0x80;

    /// <summary>
    /// The number of segments <paramref name="frame"/> needs for <paramref name="mtu"/>, 1 when it already fits, or 0
    /// when it cannot be segmented (not a complete IPv4/TCP frame, or a fragment). <paramref name="maxSegmentPayload"/>
    /// caps each segment's payload: a GSO super-frame's own segment size (the sender's MSS), so that re-cut segments
    /// are the ones the sender meant to put on the wire (its path MTU, perhaps learned from udr's ICMP, is in them).
    /// </summary>
    public static int SegmentCount(ReadOnlySpan<byte> frame, int mtu, out int payloadPerSegment, int maxSegmentPayload = int.MaxValue)
    {
        payloadPerSegment = 0;
        if (!TryLayout(frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload))
        {
            return 0;
        }
        int datagram = ipHeader + tcpHeader + payload;
        if (datagram <= mtu && payload <= maxSegmentPayload)
        {
            payloadPerSegment = payload;
            return 1;
        }
        payloadPerSegment = Math.Min(mtu - ipHeader - tcpHeader, maxSegmentPayload);
        if (payloadPerSegment < 8)
        {
            return 0;
        }
        _ = ipOffset;
        return (payload + payloadPerSegment - 1) / payloadPerSegment;
    }

    /// <summary>Writes segment <paramref name="index"/> of <paramref name="frame"/> into <paramref name="output"/>; returns its length.</summary>
    public static int WriteSegment(ReadOnlySpan<byte> frame, int index, int payloadPerSegment, Span<byte> output)
    {
        if (!TryLayout(frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload))
        {
            return 0;
        }
        int headers = ipOffset + ipHeader + tcpHeader;
        int start = index * payloadPerSegment;
        int chunk = Math.Min(payloadPerSegment, payload - start);
        bool last = start + chunk >= payload;
        frame[..headers].CopyTo(output);
        frame.Slice(headers + start, chunk).CopyTo(output[headers..]);

        Span<byte> ip = output.Slice(ipOffset, ipHeader + tcpHeader + chunk);
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(ip[4..]) + index));
        var header = new Ipv4Header(ip);
        header.RecomputeHeaderChecksum();

        Span<byte> tcp = ip[ipHeader..];
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]) + (uint)start);
        if (!last)
        {
            tcp[13] &= unchecked((byte)~(TcpFlags.Fin | TcpFlags.Psh));
        }
        if (index > 0)
        {
            tcp[13] &= unchecked((byte)~Cwr);
        }
        tcp[TcpHeader.ChecksumOffset] = 0;
        tcp[TcpHeader.ChecksumOffset + 1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[TcpHeader.ChecksumOffset..],
            TransportChecksum.Compute(header.Source, header.Destination, IpProtocol.Tcp, tcp));
        return headers + chunk;
    }

    private static bool TryLayout(ReadOnlySpan<byte> frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload)
    {
        ipOffset = ipHeader = tcpHeader = payload = 0;
        if (frame.Length < EthernetFrame.HeaderLength)
        {
            return false;
        }
        ipOffset = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan ? 18 : 14;
        if (frame.Length < ipOffset + Ipv4Header.MinLength || BinaryPrimitives.ReadUInt16BigEndian(frame[(ipOffset - 2)..]) != EtherTypes.Ipv4)
        {
            return false;
        }
        ReadOnlySpan<byte> ip = frame[ipOffset..];
        ipHeader = (ip[0] & 0x0F) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        bool fragment = (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & (Ipv4Header.MoreFragments | Ipv4Header.OffsetMask)) != 0;
        if ((ip[0] >> 4) != 4 || ipHeader < Ipv4Header.MinLength || ip[9] != IpProtocol.Tcp || fragment || total > ip.Length ||
            total < ipHeader + TcpHeader.MinLength)
        {
            return false;
        }
        tcpHeader = (ip[ipHeader + 12] >> 4) * 4;
        if (tcpHeader < TcpHeader.MinLength || ipHeader + tcpHeader > total)
        {
            return false;
        }
        payload = total - ipHeader - tcpHeader;
        return true;
    }
}
