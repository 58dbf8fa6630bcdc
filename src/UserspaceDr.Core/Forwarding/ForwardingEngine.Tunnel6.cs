using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Tunnelling with an outer IPv6 header (ip_vs_tunnel_xmit_v6): IPv6 in IPv6 (next header 41) for an IPv6 service,
/// IPv4 in IPv6 (next header 4) for an IPv4 service with an IPv6 tunnel server; the outer traffic class is the inner
/// one with ECN encapsulated, the flow label 0, the hop limit the inner one after the decrement, the source the
/// balancer's global IPv6 address on the link toward the server. IPv6 inside IPv4 (protocol 41) is the IPv4 wrap's.
/// </summary>
public sealed partial class ForwardingEngine
{
    private const int Ipv6OuterHeaderLength = Ipv6Header.Length;
    private const int Ipv6FragmentHeaderLength = 8;

    /// <summary>The identification of the outer IPv6 fragments udr sends (an IPv4 packet without DF that needs them).</summary>
    private uint _nextOuterFragmentId = (uint)Random.Shared.Next();

    /// <summary>
    /// What must hold before a frame can be tunnelled in IPv6 toward <paramref name="nextHop"/>: one frame (not a GSO
    /// super-frame), room for the outer header and a Fragment header, an IPv6 source on that link, and a path MTU that
    /// leaves IPv6's minimum of 1280 bytes inside (__ip_vs_get_out_rt_v6 drops a tunnel below IPV6_MIN_MTU).
    /// <paramref name="mtu"/>: the path MTU, the route's or else its link's.
    /// </summary>
    private FrameReason CheckIpv6TunnelPath(ref FrameContext frame, ref FrameBuffer packet, in NextHop nextHop, in TunnelEncapsulation encapsulation,
        out UInt128 outerSource, out int mtu)
    {
        outerSource = _links[nextHop.Link].Ipv6Address;
        mtu = nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu;
        if ((frame.Flags & FrameFlags.Gso) != 0)
        {
            return FrameReason.TunnelGsoFrame;
        }
        if (packet.Offset < Ipv6OuterHeaderLength + Ipv6FragmentHeaderLength + encapsulation.HeaderLength)
        {
            return FrameReason.TunnelHeadroomMissing;
        }
        if (outerSource == UInt128.Zero)
        {
            return FrameReason.TunnelSourceAddressMissing;
        }
        if (mtu - Ipv6OuterHeaderLength - encapsulation.HeaderLength < Ipv6Header.MinimumMtu)
        {
            return FrameReason.TunnelPathMtuTooSmall;
        }
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// The transmit stage for an IPv4 packet to an IPv6 tunnel server (ip_vs_tunnel_xmit_v6 for an AF_INET service):
    /// its next hop and path, the TTL, then IPv4 in IPv6. Too big for the path with DF set, the sender is told the MTU
    /// left inside the tunnel (from the VIP); without DF the outer IPv6 packet is fragmented.
    /// </summary>
    private FrameReason TunnelIpv4InIpv6(ref FrameContext frame, ref FrameBuffer packet, RealServer dest)
    {
        UInt128 server = dest.Address.IPv6;
        if (!_snapshot.Neighbors.TryGet(server, out NextHop nextHop))
        {
            return FrameReason.NeighborUnresolved;
        }
        if (nextHop.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        TunnelEncapsulation encapsulation = dest.Tunnel;
        FrameReason unfit = CheckIpv6TunnelPath(ref frame, ref packet, nextHop, encapsulation, out UInt128 outerSource, out int mtu);
        if (unfit != FrameReason.Forwarded)
        {
            return unfit;
        }
        if (TimeToLiveExpired(ref frame, ref packet, out FrameReason expired))
        {
            return expired;
        }
        FinishChecksumIfNeeded(ref frame, ref packet);
        Ipv4Header inner = frame.Ip;
        inner.DecrementTimeToLive();
        int overhead = Ipv6OuterHeaderLength + encapsulation.HeaderLength;
        if (inner.TotalLength + overhead > mtu && inner.DontFragmentSet && inner.Protocol != IpProtocol.Icmp)
        {
            frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, inner, _links[packet.Link].Mac, inner.Destination,
                IcmpType.DestinationUnreachable, IcmpType.CodeFragmentationNeeded, (uint)(mtu - overhead), frame.Reply);
            return FrameReason.IcmpFragmentationNeeded;
        }
        FinishTunnelledChecksum(ref frame, inner);
        return WrapInIpv6(ref frame, ref packet, inner.Bytes[..inner.TotalLength], Ipv6NextHeader.Ipv4, inner.TypeOfService, inner.TimeToLive,
            server, nextHop, outerSource, mtu, encapsulation);
    }

    /// <summary>
    /// Puts an outer IPv6 header (next header <paramref name="nextHeader"/>) in front of <paramref name="inner"/>, in
    /// place, as <see cref="WrapInIpv4"/> does: the Ethernet header moves into the headroom and the outer header fills
    /// the gap. What does not fit <paramref name="mtu"/> leaves as two outer fragments behind Fragment headers (the
    /// second in <see cref="FrameBuffer.Overflow"/>), as ip6_fragment would cut it; the caller has refused what may not
    /// be fragmented.
    /// </summary>
    private FrameReason WrapInIpv6(ref FrameContext frame, ref FrameBuffer packet, Span<byte> inner, byte nextHeader, byte trafficClass, byte hopLimit,
        UInt128 server, in NextHop nextHop, UInt128 outerSource, int mtu, in TunnelEncapsulation encapsulation)
    {
        EthernetFrame ethernet = frame.Ethernet;
        int linkHeaderLength = ethernet.PayloadOffset;
        int encapsulationLength = encapsulation.HeaderLength;
        int payloadLength = encapsulationLength + inner.Length;
        bool fragmented = payloadLength + Ipv6OuterHeaderLength > mtu;
        int headers = Ipv6OuterHeaderLength + (fragmented ? Ipv6FragmentHeaderLength : 0);
        FrameReason split = SplitForOuterFragments(payloadLength, headers, mtu, linkHeaderLength, packet.Overflow.Length,
            out int firstPayload, out int secondPayload);
        if (split != FrameReason.Forwarded)
        {
            return split;
        }

        ethernet.Destination = nextHop.Mac;
        ethernet.Source = _links[nextHop.Link].Mac;
        ethernet.EtherType = EtherTypes.Ipv6;
        int offset = packet.Offset - headers - encapsulationLength;
        Span<byte> buffer = packet.Buffer;
        buffer.Slice(packet.Offset, linkHeaderLength).CopyTo(buffer[offset..]); // 14 or 18 bytes moved 40 or more: no overlap

        // The outer packet's payload: the GUE or GRE header, written into the gap before the inner packet, then the inner packet.
        Span<byte> payload = buffer.Slice(offset + linkHeaderLength + headers, payloadLength);
        byte protocol = WriteEncapsulation(payload, encapsulation, nextHeader,
            Ipv6Checksum.PseudoHeader(outerSource, server, IpProtocol.Udp, payloadLength));
        Span<byte> outer = buffer.Slice(offset + linkHeaderLength, headers);
        int fragmentHeader = fragmented ? Ipv6FragmentHeaderLength : 0;
        Ipv6Header.Write(outer, EncapsulateEcn(trafficClass), (ushort)(fragmentHeader + firstPayload), fragmented ? Ipv6NextHeader.Fragment : protocol,
            hopLimit, outerSource, server);
        uint identification = fragmented ? _nextOuterFragmentId++ : 0;
        if (fragmented)
        {
            WriteFragmentHeader(outer[Ipv6OuterHeaderLength..], protocol, 0, moreFragments: true, identification);
        }
        packet.Offset = offset;
        packet.Length = linkHeaderLength + headers + firstPayload;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        packet.OverflowLength = 0;
        if (!fragmented)
        {
            return FrameReason.Forwarded;
        }

        Span<byte> second = packet.Overflow;
        buffer.Slice(offset, linkHeaderLength + headers).CopyTo(second);
        payload.Slice(firstPayload, secondPayload).CopyTo(second[(linkHeaderLength + headers)..]);
        BinaryPrimitives.WriteUInt16BigEndian(second[(linkHeaderLength + 4)..], (ushort)(Ipv6FragmentHeaderLength + secondPayload));
        WriteFragmentHeader(second.Slice(linkHeaderLength + Ipv6OuterHeaderLength, Ipv6FragmentHeaderLength), protocol, firstPayload, moreFragments: false,
            identification);
        packet.OverflowLength = linkHeaderLength + headers + secondPayload;
        return FrameReason.ForwardedAsFragments;
    }

    /// <summary>An IPv6 Fragment header (RFC 8200 §4.5): the next header, the offset in bytes (a multiple of 8), M, the identification.</summary>
    private static void WriteFragmentHeader(Span<byte> header, byte nextHeader, int offsetBytes, bool moreFragments, uint identification)
    {
        header[0] = nextHeader;
        header[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], (ushort)(offsetBytes | (moreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], identification);
    }
}
