using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Software TCP segmentation: splits an Ethernet/IPv4/TCP or Ethernet/IPv6/TCP super-frame (a GSO/GRO frame larger
/// than the link MTU) into wire-sized segments, as a NIC's TSO would. Used where the kernel cannot be handed the frame
/// with a virtio_net_hdr (the libpcap backend). Each segment carries the original headers with its own total (IPv6:
/// payload) length, IPv4 ID (original + index), sequence number, checksums, and FIN/PSH only on the last (CWR only on
/// the first). An IPv6 super-frame is cut only with TCP right after the fixed header (GRO merges no other).
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
        if (!TryLayout(frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload, out _))
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
        if (!TryLayout(frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload, out bool ipv6))
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
        Span<byte> tcp = ip[ipHeader..];
        if (ipv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)tcp.Length);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)(BinaryPrimitives.ReadUInt16BigEndian(ip[4..]) + index));
            new Ipv4Header(ip).RecomputeHeaderChecksum();
        }

        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], BinaryPrimitives.ReadUInt32BigEndian(tcp[4..]) + (uint)start);
        if (!last)
        {
            tcp[13] &= unchecked((byte)~(TcpFlags.Fin | TcpFlags.Psh));
        }
        if (index > 0)
        {
            tcp[13] &= unchecked((byte)~Cwr);
        }
        if (ipv6)
        {
            TransportChecksum.Finish(new Ipv6Header(ip), IpProtocol.Tcp, tcp);
        }
        else
        {
            TransportChecksum.Finish(new Ipv4Header(ip), tcp);
        }
        return headers + chunk;
    }

    private static bool TryLayout(ReadOnlySpan<byte> frame, out int ipOffset, out int ipHeader, out int tcpHeader, out int payload, out bool ipv6)
    {
        ipOffset = ipHeader = tcpHeader = payload = 0;
        ipv6 = false;
        if (frame.Length < EthernetFrame.HeaderLength)
        {
            return false;
        }
        ipOffset = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan ? 18 : 14;
        if (frame.Length < ipOffset + Ipv4Header.MinLength)
        {
            return false;
        }
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(ipOffset - 2)..]);
        if (etherType == EtherTypes.Ipv6)
        {
            ipv6 = true;
            return TryLayoutIpv6(frame[ipOffset..], out ipHeader, out tcpHeader, out payload);
        }
        if (etherType != EtherTypes.Ipv4)
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

    private static bool TryLayoutIpv6(ReadOnlySpan<byte> ip, out int ipHeader, out int tcpHeader, out int payload)
    {
        ipHeader = Ipv6Header.Length;
        tcpHeader = payload = 0;
        if (ip.Length < Ipv6Header.Length + TcpHeader.MinLength || (ip[0] >> 4) != 6 || ip[6] != IpProtocol.Tcp)
        {
            return false;
        }
        int total = Ipv6Header.Length + BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
        tcpHeader = (ip[Ipv6Header.Length + 12] >> 4) * 4;
        if (total > ip.Length || tcpHeader < TcpHeader.MinLength || Ipv6Header.Length + tcpHeader > total)
        {
            return false;
        }
        payload = total - Ipv6Header.Length - tcpHeader;
        return true;
    }
}
