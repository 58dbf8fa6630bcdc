using System.Buffers.Binary;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>IP-in-IP (ip_vs_tunnel_xmit) and the ICMP errors that come back about tunnelled packets.</summary>
public sealed partial class ForwardingEngine
{
    /// <summary>The outer header: IPv4 without options.</summary>
    private const int OuterHeaderLength = Ipv4Header.MinLength;

    /// <summary>The smallest MTU an IPv4 host must accept (RFC 791): ip_vs_xmit.c drops a tunnel whose inner MTU is below it.</summary>
    private const int MinimumInnerMtu = 68;

    private const byte EcnMask = 0x03;
    private const byte EcnCongestionExperienced = 0x03;
    private const byte EcnCapableTransport0 = 0x02;

    /// <summary>
    /// The outer header's identification: a per-engine counter, started at a random value so that two workers
    /// tunnelling to the same server rarely use the same IDs at once. The kernel's ip_select_ident draws from hashed
    /// per-destination counters (ip_idents); what matters for reassembly is only that an ID is not reused between a
    /// source and destination while fragments of it may be in flight, which a 16-bit counter per worker gives as
    /// well as the kernel's does. Every outer header gets a fresh ID, with DF or without (IPVS sets ignore_df, so
    /// ip_select_ident counts for DF packets too).
    /// </summary>
    private ushort _nextOuterIdentification = (ushort)Random.Shared.Next(0, ushort.MaxValue + 1);

    /// <summary>
    /// What must hold before a frame can be tunnelled to <paramref name="nextHop"/>, checked before the frame is
    /// touched: one frame (not a GSO super-frame), room for the outer header, an outer source address and a usable
    /// path MTU. Returns <see cref="FrameReason.Forwarded"/> when it can.
    /// </summary>
    private FrameReason CheckTunnelPath(ref FrameContext frame, ref FrameBuffer packet, uint server, in NextHop nextHop, in TunnelEncapsulation encapsulation,
        out uint outerSource)
    {
        outerSource = nextHop.SourceAddress != 0 ? nextHop.SourceAddress : _links[nextHop.Link].Address;
        int overhead = OuterHeaderLength + encapsulation.HeaderLength;
        if ((frame.Flags & FrameFlags.Gso) != 0)
        {
            return FrameReason.TunnelGsoFrame; // a virtio_net_hdr cannot describe an encapsulated super-frame
        }
        if (packet.Offset < overhead)
        {
            return FrameReason.TunnelHeadroomMissing;
        }
        if (outerSource == 0)
        {
            return FrameReason.TunnelSourceAddressMissing;
        }
        if (PathMtu(server, nextHop, frame.NowMs) - overhead < MinimumInnerMtu)
        {
            return FrameReason.TunnelPathMtuTooSmall;
        }
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// The path MTU to a tunnelled server: the route's, else (0) its link's, lowered by what a router on the way
    /// reported (frag-needed about one of udr's outer packets) until that expires.
    /// </summary>
    private int PathMtu(uint server, in NextHop nextHop, long nowMs) =>
        _pathMtus.Lookup(server, nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu, nowMs);

    /// <summary>
    /// Wraps an IPv4 inner packet (TTL already decremented) in an outer IPv4 header to the real server. A packet too
    /// big for the path MTU is refused with frag-needed when its sender set DF, and otherwise sent as two outer
    /// fragments, as the kernel's IP output would.
    /// </summary>
    private FrameReason Encapsulate(ref FrameContext frame, ref FrameBuffer packet, uint server, in NextHop nextHop, uint outerSource,
        in TunnelEncapsulation encapsulation)
    {
        Ipv4Header inner = frame.Ip;
        int mtu = PathMtu(server, nextHop, frame.NowMs);
        int overhead = OuterHeaderLength + encapsulation.HeaderLength;
        // A relayed ICMP error is exempt from the DF check (ensure_mtu_is_adequate skips ICMP) and fragmented instead.
        if (inner.TotalLength + overhead > mtu && inner.DontFragmentSet && inner.Protocol != IpProtocol.Icmp)
        {
            // The sender learns the MTU left inside the tunnel; the quote shows its packet as it would have left.
            frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, inner, _links[packet.Link].Mac, inner.Destination,
                IcmpType.DestinationUnreachable, IcmpType.CodeFragmentationNeeded, (uint)(mtu - overhead), frame.Reply);
            return FrameReason.IcmpFragmentationNeeded;
        }
        FinishTunnelledChecksum(ref frame, inner);
        return WrapInIpv4(ref frame, ref packet, inner.Bytes[..inner.TotalLength], IpProtocol.IpInIp, inner.TypeOfService, inner.TimeToLive,
            inner.DontFragmentSet, server, nextHop, outerSource, mtu, encapsulation);
    }

    /// <summary>
    /// A partial checksum of a packet about to be tunnelled is finished here, always: the offload that would finish it
    /// (virtio csum_start into an inner header) needs the NIC to sum inside the tunnel, nothing finishes a segment split
    /// over two outer fragments, and a real server's user-space endpoint reads the inner bytes as they are.
    /// </summary>
    private static void FinishTunnelledChecksum(ref FrameContext frame, Ipv4Header inner)
    {
        if ((frame.Flags & FrameFlags.ChecksumPartial) != 0 && !frame.Transport.IsEmpty)
        {
            TransportChecksum.Finish(inner, frame.Transport);
            frame.Flags &= ~FrameFlags.ChecksumPartial;
        }
    }

    /// <summary>
    /// Puts an outer IPv4 header (protocol <paramref name="protocol"/>: 4 for IPv4 inside, 41 for IPv6) in front of
    /// <paramref name="inner"/>, in place: the Ethernet header (with its 802.1Q tag, if any) moves 20 bytes into the
    /// headroom and the outer header fills the gap, so the inner packet is not copied; Ethernet padding after it is
    /// dropped. What does not fit <paramref name="mtu"/> leaves as two outer fragments (the second one in
    /// <see cref="FrameBuffer.Overflow"/>); the caller has refused what may not be fragmented.
    /// </summary>
    private FrameReason WrapInIpv4(ref FrameContext frame, ref FrameBuffer packet, Span<byte> inner, byte protocol, byte tos, byte ttl, bool dontFragment,
        uint server, in NextHop nextHop, uint outerSource, int mtu, in TunnelEncapsulation encapsulation)
    {
        EthernetFrame ethernet = frame.Ethernet;
        int linkHeaderLength = ethernet.PayloadOffset;
        int encapsulationLength = encapsulation.HeaderLength;
        FrameReason split = SplitForOuterFragments(encapsulationLength + inner.Length, OuterHeaderLength, mtu, linkHeaderLength, packet.Overflow.Length,
            out int firstPayload, out int secondPayload);
        if (split != FrameReason.Forwarded)
        {
            return split;
        }

        ethernet.Destination = nextHop.Mac;
        ethernet.Source = _links[nextHop.Link].Mac;
        if (protocol != IpProtocol.IpInIp)
        {
            ethernet.EtherType = EtherTypes.Ipv4; // IPv6 inside: the frame's family changes
        }
        int offset = packet.Offset - OuterHeaderLength - encapsulationLength;
        Span<byte> buffer = packet.Buffer;
        buffer.Slice(packet.Offset, linkHeaderLength).CopyTo(buffer[offset..]); // 14 or 18 bytes moved 20 or more: no overlap

        // The outer packet's payload: the GUE or GRE header (written into the gap before the inner packet), then the inner packet.
        Span<byte> payload = buffer.Slice(offset + linkHeaderLength + OuterHeaderLength, encapsulationLength + inner.Length);
        byte outerProtocol = WriteEncapsulation(payload, encapsulation, protocol, outerSource, server);
        var outer = new Ipv4Header(buffer.Slice(offset + linkHeaderLength, OuterHeaderLength));
        ushort dontFragmentBit = dontFragment ? Ipv4Header.DontFragment : (ushort)0;
        WriteOuterHeader(outer, outerProtocol, tos, ttl, outerSource, server, firstPayload,
            secondPayload != 0 ? (ushort)(dontFragmentBit | Ipv4Header.MoreFragments) : dontFragmentBit);
        packet.Offset = offset;
        packet.Length = linkHeaderLength + OuterHeaderLength + firstPayload;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        packet.OverflowLength = 0;
        if (secondPayload == 0)
        {
            return FrameReason.Forwarded;
        }

        // The second fragment: the same link and outer headers, its own length, offset and checksum, the rest of the inner packet.
        Span<byte> second = packet.Overflow;
        buffer.Slice(offset, linkHeaderLength + OuterHeaderLength).CopyTo(second);
        payload.Slice(firstPayload, secondPayload).CopyTo(second[(linkHeaderLength + OuterHeaderLength)..]);
        var secondOuter = new Ipv4Header(second.Slice(linkHeaderLength, OuterHeaderLength));
        BinaryPrimitives.WriteUInt16BigEndian(secondOuter.Bytes[2..], (ushort)(OuterHeaderLength + secondPayload));
        BinaryPrimitives.WriteUInt16BigEndian(secondOuter.Bytes[6..], (ushort)(dontFragmentBit | (firstPayload / 8)));
        secondOuter.RecomputeHeaderChecksum();
        packet.OverflowLength = linkHeaderLength + OuterHeaderLength + secondPayload;
        return FrameReason.ForwardedAsFragments;
    }

    /// <summary>
    /// How many bytes of GUE or GRE header a quoted outer packet of <paramref name="protocol"/> has before its inner
    /// packet (0 for IP-in-IP), read from the quote itself; -1 when the quote is too short or not such a header.
    /// </summary>
    private static int QuotedEncapsulationLength(byte protocol, ReadOnlySpan<byte> encapsulated)
    {
        switch (protocol)
        {
            case IpProtocol.IpInIp:
                return 0;
            case IpProtocol.Udp:
                const int Gue = TunnelEncapsulation.UdpHeaderLength;
                return encapsulated.Length > Gue + 1 && encapsulated[Gue] >> 5 == 0 && encapsulated[Gue + 1] == IpProtocol.IpInIp
                    ? Gue + TunnelEncapsulation.GueHeaderLength + ((encapsulated[Gue] & 0x1F) * 4)
                    : -1;
            case IpProtocol.Gre:
                return encapsulated.Length >= TunnelEncapsulation.GreHeaderLength && BinaryPrimitives.ReadUInt16BigEndian(encapsulated[2..]) == EtherTypes.Ipv4
                    ? ((encapsulated[0] & 0x80) != 0 ? TunnelEncapsulation.GreHeaderLength + TunnelEncapsulation.GreChecksumLength : TunnelEncapsulation.GreHeaderLength)
                    : -1;
            default:
                return -1;
        }
    }

    /// <summary>Whether <paramref name="server"/> is tunnelled the way the quoted outer packet was (its type, GUE's port).</summary>
    private static bool Encapsulates(RealServer? server, byte protocol, ReadOnlySpan<byte> encapsulated)
    {
        TunnelEncapsulation tunnel = server?.Tunnel ?? default;
        return (tunnel.Type, protocol) switch
        {
            (TunnelType.Ipip, IpProtocol.IpInIp) => true,
            (TunnelType.Gue, IpProtocol.Udp) => BinaryPrimitives.ReadUInt16BigEndian(encapsulated[2..]) == tunnel.Port,
            (TunnelType.Gre, IpProtocol.Gre) => true,
            _ => false,
        };
    }

    /// <summary>The local port range udp_flow_src_port scales a flow's hash into (ip_local_port_range's default).</summary>
    private const int FlowSourcePortMin = 32768;
    private const int FlowSourcePortMax = 60999;

    /// <summary>
    /// Writes the GUE or GRE header at the start of <paramref name="payload"/> (the inner packet follows it) and returns
    /// the outer header's protocol: ipvs_gue_encap's UDP header (source port from the inner flow's hash, as
    /// udp_flow_src_port picks it, so a receiver spreading by port keeps a flow together; destination the server's
    /// --tun-port) and GUE version 0 header naming the inner protocol, its checksum only with --tun-csum or
    /// --tun-remcsum (the remote-checksum option is for locally made packets; a forwarded one gets the plain
    /// checksum, as in the kernel); ipvs_gre_encap's version 0 header with only the C bit, and its checksum, with
    /// --tun-csum. IP-in-IP writes nothing and keeps <paramref name="innerProtocol"/> (4, or 41 for IPv6 inside).
    /// </summary>
    private static byte WriteEncapsulation(Span<byte> payload, in TunnelEncapsulation encapsulation, byte innerProtocol, uint outerSource, uint server) =>
        WriteEncapsulation(payload, encapsulation, innerProtocol, Checksum.PseudoHeader(outerSource, server, IpProtocol.Udp, payload.Length));

    /// <summary>
    /// As above, with the UDP pseudo-header's sum given (<paramref name="udpPseudoHeader"/>: the outer addresses,
    /// protocol 17 and the UDP length, IPv4's or IPv6's form), so both outer families share it.
    /// </summary>
    private static byte WriteEncapsulation(Span<byte> payload, in TunnelEncapsulation encapsulation, byte innerProtocol, ulong udpPseudoHeader)
    {
        switch (encapsulation.Type)
        {
            case TunnelType.Gue:
            {
                int udpLength = payload.Length;
                ReadOnlySpan<byte> inner = payload[(TunnelEncapsulation.UdpHeaderLength + TunnelEncapsulation.GueHeaderLength)..];
                BinaryPrimitives.WriteUInt16BigEndian(payload, FlowSourcePort(inner, innerProtocol));
                BinaryPrimitives.WriteUInt16BigEndian(payload[2..], encapsulation.Port);
                BinaryPrimitives.WriteUInt16BigEndian(payload[4..], (ushort)udpLength);
                BinaryPrimitives.WriteUInt16BigEndian(payload[6..], 0);
                Span<byte> gue = payload.Slice(TunnelEncapsulation.UdpHeaderLength, TunnelEncapsulation.GueHeaderLength);
                gue[0] = 0; // version 0, C 0, no optional fields
                gue[1] = innerProtocol;
                BinaryPrimitives.WriteUInt16BigEndian(gue[2..], 0);
                if (encapsulation.Checksum != TunnelChecksum.NoChecksum)
                {
                    ushort checksum = (ushort)~Checksum.Fold(Checksum.Add(payload, udpPseudoHeader));
                    BinaryPrimitives.WriteUInt16BigEndian(payload[6..], checksum == 0 ? (ushort)0xFFFF : checksum);
                }
                return IpProtocol.Udp;
            }
            case TunnelType.Gre:
            {
                bool withChecksum = encapsulation.Checksum != TunnelChecksum.NoChecksum;
                BinaryPrimitives.WriteUInt16BigEndian(payload, withChecksum ? GreChecksumPresent : (ushort)0);
                BinaryPrimitives.WriteUInt16BigEndian(payload[2..], innerProtocol == IpProtocol.IpInIp ? EtherTypes.Ipv4 : EtherTypes.Ipv6);
                if (withChecksum)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(payload[4..], 0);
                    BinaryPrimitives.WriteUInt16BigEndian(payload[4..], Checksum.Compute(payload)); // the GRE header and all it carries
                }
                return IpProtocol.Gre;
            }
            default:
                return innerProtocol;
        }
    }

    /// <summary>GRE's C bit (RFC 2784): a checksum and a reserved word follow the protocol type.</summary>
    private const ushort GreChecksumPresent = 0x8000;

    /// <summary>
    /// udp_flow_src_port: a hash of the inner flow (addresses, protocol, and ports where the packet has them) scaled
    /// into the local port range. Any stable per-flow hash serves; it need not be the kernel's.
    /// </summary>
    private static ushort FlowSourcePort(ReadOnlySpan<byte> inner, byte innerProtocol)
    {
        uint hash = 2166136261;
        ReadOnlySpan<byte> key = innerProtocol == IpProtocol.IpInIp
            ? (inner.Length >= Ipv4Header.MinLength ? inner[12..20] : inner)
            : (inner.Length >= Ipv6Header.Length ? inner[8..40] : inner);
        foreach (byte b in key)
        {
            hash = (hash ^ b) * 16777619;
        }
        int transport = innerProtocol == IpProtocol.IpInIp ? (inner.Length > 0 ? (inner[0] & 0x0F) * 4 : 0) : Ipv6Header.Length;
        byte protocol = innerProtocol == IpProtocol.IpInIp ? (inner.Length > 9 ? inner[9] : (byte)0) : (inner.Length > 6 ? inner[6] : (byte)0);
        bool laterFragment = innerProtocol == IpProtocol.IpInIp && inner.Length > 7 && (BinaryPrimitives.ReadUInt16BigEndian(inner[6..]) & 0x1FFF) != 0;
        hash = (hash ^ protocol) * 16777619;
        if (protocol is IpProtocol.Tcp or IpProtocol.Udp && !laterFragment && inner.Length >= transport + 4)
        {
            foreach (byte b in inner.Slice(transport, 4))
            {
                hash = (hash ^ b) * 16777619;
            }
        }
        return (ushort)((((ulong)hash * (FlowSourcePortMax - FlowSourcePortMin)) >> 32) + FlowSourcePortMin);
    }

    /// <summary>
    /// How an inner packet is shared between two outer fragments when it and <paramref name="headers"/> (the outer
    /// header, and IPv6's Fragment header) do not fit <paramref name="mtu"/>: all but the last fragment carry a multiple
    /// of 8 bytes; <paramref name="secondPayload"/> 0 when it fits whole. More than two fragments, or no overflow frame
    /// long enough for the second, is refused under its reason.
    /// </summary>
    private static FrameReason SplitForOuterFragments(int innerLength, int headers, int mtu, int linkHeaderLength, int overflowLength,
        out int firstPayload, out int secondPayload)
    {
        firstPayload = innerLength;
        secondPayload = 0;
        if (innerLength + headers <= mtu)
        {
            return FrameReason.Forwarded;
        }
        firstPayload = (mtu - headers) & ~7;
        secondPayload = innerLength - firstPayload;
        if (secondPayload > mtu - headers)
        {
            return FrameReason.TunnelTooManyFragments;
        }
        return overflowLength < linkHeaderLength + headers + secondPayload ? FrameReason.TunnelOverflowMissing : FrameReason.Forwarded;
    }

    /// <summary>
    /// The outer header as ip_vs_tunnel_xmit builds it: TTL the inner TTL or hop limit (already decremented), DF the
    /// inner DF (never for IPv6 inside, ip_vs_prepare_tunneled_skb), and the inner TOS or traffic class with ECN
    /// encapsulated (<see cref="EncapsulateEcn"/>).
    /// </summary>
    private void WriteOuterHeader(Ipv4Header outer, byte protocol, byte tos, byte ttl, uint source, uint server, int payloadLength, ushort flagsAndOffset)
    {
        Span<byte> bytes = outer.Bytes;
        bytes[0] = 0x45;
        bytes[1] = EncapsulateEcn(tos);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], (ushort)(OuterHeaderLength + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(bytes[4..], _nextOuterIdentification++);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[6..], flagsAndOffset);
        bytes[8] = ttl;
        bytes[9] = protocol;
        outer.Source = source;
        outer.Destination = server;
        outer.RecomputeHeaderChecksum();
    }

    /// <summary>
    /// INET_ECN_encapsulate: DSCP copied, ECN copied except that CE becomes ECT(0) (RFC 6040: congestion marked before
    /// the tunnel is not re-marked on the outer header).
    /// </summary>
    private static byte EncapsulateEcn(byte tos) =>
        (tos & EcnMask) == EcnCongestionExperienced ? (byte)((tos & ~EcnMask) | EcnCapableTransport0) : tos;

    /// <summary>
    /// ip_vs_in_icmp, IPPROTO_IPIP case (and udr's GUE and GRE ones, whose header it steps over to the inner packet and
    /// counts in the MTU it reports): an ICMP error to the balancer about one of its own tunnelled packets (outer
    /// source: the address udr tunnels from towards that server; destination: the server). A router on the way found
    /// the outer packet too big, but the client must hear of it: udr tells it the MTU less the outer header, from the
    /// VIP, about the inner packet (its own, as it sent it), via the link its frames arrive by. Only frag-needed is
    /// relayed, and only when the client set DF (a client without path MTU discovery has nothing to learn). Like the
    /// kernel's update of its route's PMTU, the reported MTU is kept for the server (<see cref="PathMtuCache"/>).
    /// </summary>
    private FrameReason HandleIcmpAboutTunnel(ref FrameContext frame, ref FrameBuffer packet)
    {
        Ipv4Header ip = frame.Ip;
        Span<byte> icmpBytes = frame.Transport;
        long nowMs = frame.NowMs;
        Span<byte> quote = icmpBytes[IcmpHeader.Length..];
        var outer = new Ipv4Header(quote); // the caller saw 20 bytes of quote with protocol 4, 17 or 47
        if (outer.Version != 4 || outer.HeaderLength < Ipv4Header.MinLength || quote.Length < outer.HeaderLength ||
            !outer.IsFirstFragment || ip.Destination != outer.Source)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        uint server = outer.Destination;
        if (!_snapshot.Neighbors.TryGet(server, out NextHop nextHop) || nextHop.Link >= _links.Length ||
            outer.Source != (nextHop.SourceAddress != 0 ? nextHop.SourceAddress : _links[nextHop.Link].Address))
        {
            return FrameReason.IcmpErrorNotTracked; // not a packet udr tunnelled (from that source, to that server)
        }
        // GUE (UDP, then the GUE header and its options) and GRE (4 bytes, 8 with its checksum) before the inner packet.
        Span<byte> encapsulated = quote[outer.HeaderLength..];
        int encapsulationLength = QuotedEncapsulationLength(outer.Protocol, encapsulated);
        if (encapsulationLength < 0 ||
            !TryReadQuotedPorts(encapsulated[encapsulationLength..], out Ipv4Header inner, out ushort clientPort, out ushort virtualPort))
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        int slot = _tracker.FindLive(new ConnectionKey<uint>(inner.Protocol, inner.Source, clientPort, inner.Destination, virtualPort), nowMs);
        if (slot < 0 || Connections.At(slot).Method != ForwardingMethod.Tunnel || Connections.At(slot).DestAddress != server ||
            !Encapsulates(Connections.At(slot).Dest, outer.Protocol, encapsulated))
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        int overhead = OuterHeaderLength + encapsulationLength;
        if (icmpBytes[0] != IcmpType.DestinationUnreachable || icmpBytes[1] != IcmpType.CodeFragmentationNeeded)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (!IcmpChecksumValid(icmpBytes))
        {
            return FrameReason.IcmpChecksumInvalid;
        }
        if (!inner.DontFragmentSet)
        {
            return FrameReason.TunnelIcmpWithoutDf;
        }
        ref Connection<uint> entry = ref Connections.At(slot);
        byte clientLink = ClientHop.Link(entry.ClientMac);
        if (clientLink >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }

        // RFC 1191: the next-hop MTU is the low 16 bits of the word after the checksum (0 from pre-1191 routers).
        // The kernel prefers its route's resulting PMTU: the smaller of the report and what the route already had.
        int reported = BinaryPrimitives.ReadUInt16BigEndian(icmpBytes[6..]);
        int mtu = PathMtu(server, nextHop, nowMs);
        if (reported != 0 && reported < mtu)
        {
            mtu = reported;
            if (reported - overhead >= MinimumInnerMtu)
            {
                // Later packets to this server are refused at the new size here, before any router has to drop them.
                _pathMtus.Learn(server, reported, nowMs);
            }
        }
        if (mtu > MinimumInnerMtu + overhead)
        {
            mtu -= overhead;
        }
        CountReply(entry.Dest, ip.TotalLength); // "ICMP can be shorter but anyways, account it" (ip_vs_out_stats)
        frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, ClientHop.Mac(entry.ClientMac), inner, _links[clientLink].Mac, inner.Destination,
            IcmpType.DestinationUnreachable, IcmpType.CodeFragmentationNeeded, (uint)mtu, frame.Reply);
        packet.Link = clientLink;
        return FrameReason.IcmpFragmentationNeededFromTunnel;
    }
}
