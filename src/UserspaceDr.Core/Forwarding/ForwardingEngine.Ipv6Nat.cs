using System.Buffers.Binary;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// IPv6 NAT's way back (ip_vs_out with af AF_INET6) and ICMPv6 errors about tracked connections (ip_vs_in_icmp_v6,
/// ip_vs_out_icmp_v6): a NAT server's reply leaves from VIP:vport; an ICMPv6 error (types 1–4) about a connection is
/// relayed to its server, or from a NAT server to its client, translated by ip_vs_nat_icmp_v6 with the ICMPv6
/// checksum recomputed over the new pseudo-header.
/// </summary>
public sealed partial class ForwardingEngine
{
    /// <summary>A frame not addressed to an IPv6 VIP while the rules have NAT servers: a reply, an error to a client, or not udr's.</summary>
    private FrameReason HandleIpv6NotForVirtualAddress(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport)
    {
        if (_ipv6Tracker is null)
        {
            return FrameReason.NotForVirtualAddress; // no IPv6 service, so no IPv6 NAT connection
        }
        byte protocol = transport.Protocol;
        if (protocol is IpProtocol.Tcp or IpProtocol.Udp)
        {
            return transport.IsLaterFragment
                ? ForwardLaterIpv6ReplyFragment(ref frame, ref packet, datagram, transport)
                : HandlePossibleIpv6NatReply(ref frame, ref packet, datagram, transport);
        }
        if (protocol != Ipv6NextHeader.Icmpv6 || transport.IsFragment)
        {
            return FrameReason.NotForVirtualAddress;
        }
        Span<byte> icmp = datagram[transport.Offset..];
        return icmp.Length >= IcmpHeader.Length && Icmpv6Type.IsError(icmp[0])
            ? HandleNatIcmpv6FromServer(ref frame, ref packet, datagram, icmp)
            : FrameReason.NotForVirtualAddress;
    }

    /// <summary>
    /// If the frame is a reply of a tracked IPv6 NAT connection (RIP:rport → client:cport), it leaves from VIP:vport to
    /// the client's next hop with the hop limit decremented (by ip6_forward in the kernel, before IPVS sees it: so a
    /// hop limit of 1 is answered to the server from the balancer's own address, as a router would).
    /// </summary>
    private FrameReason HandlePossibleIpv6NatReply(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport)
    {
        byte protocol = transport.Protocol;
        frame.Transport = datagram[transport.Offset..];
        if (!TryReadPorts(protocol, frame.Transport, out ushort serverPort, out ushort clientPort, out byte tcpFlags))
        {
            return FrameReason.NotForVirtualAddress;
        }
        var ip = new Ipv6Header(datagram);
        long nowMs = frame.NowMs;
        ConnectionTracker<UInt128> tracker = _ipv6Tracker!;
        int slot = tracker.FindNatConnection(protocol, ip.Destination, clientPort, ip.Source, serverPort, nowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        byte ingress = packet.Link;
        UInt128 balancer = _links[ingress].Ipv6Address;
        if (ip.HopLimit <= 1)
        {
            if (balancer == UInt128.Zero)
            {
                return FrameReason.ReplyTtlExpired;
            }
            frame.ReplyLength = ReplyBuilder.WriteIcmpv6Error(frame.Ethernet, datagram, _links[ingress].Mac, balancer,
                Icmpv6Type.TimeExceeded, Icmpv6Type.CodeHopLimitExceeded, 0, frame.Reply);
            return FrameReason.IcmpTimeExceeded;
        }

        ref Connection<UInt128> entry = ref tracker.Table.At(slot);
        byte clientLink = ClientHop.Link(entry.ClientMac);
        if (clientLink < _links.Length && datagram.Length > _links[clientLink].Mtu && (frame.Flags & FrameFlags.Gso) == 0)
        {
            // The client's link is narrower than the server's: the server hears of it from the balancer, as from a router.
            if (balancer == UInt128.Zero)
            {
                return FrameReason.EgressMtuExceeded;
            }
            frame.ReplyLength = ReplyBuilder.WriteIcmpv6Error(frame.Ethernet, datagram, _links[ingress].Mac, balancer,
                Icmpv6Type.PacketTooBig, 0, (uint)Math.Max(_links[clientLink].Mtu, Ipv6Header.MinimumMtu), frame.Reply);
            return FrameReason.Icmpv6PacketTooBig;
        }
        if (protocol == IpProtocol.Tcp)
        {
            tracker.AdvanceTcpState(ref entry, tcpFlags, reply: true);
        }
        tracker.Arm(ref entry, nowMs);
        CountReply(entry.Dest, datagram.Length);
        if (transport.IsFragment && entry.Dest is not null)
        {
            // The rest of this datagram carries no ports: it follows its first fragment (IPVS reassembles first).
            _ipv6ReplyFragments.Remember(ip.Source, ip.Destination, transport.FragmentId, protocol, entry.Dest, entry.VirtualAddress,
                ForwardingMethod.Masquerade, nowMs, entry.ClientMac);
        }
        FrameFlags flags = frame.Flags;
        if ((flags & FrameFlags.ChecksumNotReady) != 0 ||
            ((flags & FrameFlags.ChecksumUnknown) != 0 && TransportChecksum.HoldsOnlyPseudoHeaderSeed(ip, protocol, frame.Transport)))
        {
            TransportChecksum.Finish(ip, protocol, frame.Transport);
            frame.Flags = flags & ~FrameFlags.ChecksumPartial;
        }
        NatRewrite.Source(ip, protocol, frame.Transport, entry.VirtualAddress, entry.VirtualPort, (frame.Flags & FrameFlags.ChecksumPartial) != 0);
        ip.HopLimit--;
        return SendToClient(ref frame, ref packet, entry.ClientMac, frame.Flags, FrameReason.ForwardedReply);
    }

    /// <summary>
    /// A later fragment of an IPv6 NAT reply: its first fragment named the connection; only the source address (RIP →
    /// VIP) changes, the ports and transport checksum being in the first fragment. Unknown ones are not udr's.
    /// </summary>
    private FrameReason ForwardLaterIpv6ReplyFragment(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport)
    {
        var ip = new Ipv6Header(datagram);
        if (!_ipv6ReplyFragments.TryFind(ip.Source, ip.Destination, transport.FragmentId, transport.Protocol, frame.NowMs,
            out RealServer? dest, out UInt128 vip, out _, out ulong clientHop))
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (ip.HopLimit <= 1)
        {
            return FrameReason.ReplyTtlExpired;
        }
        CountReply(dest, datagram.Length);
        NatRewrite.Source(ip, transport.Protocol, default, vip, 0, checksumPartial: false);
        ip.HopLimit--;
        return SendToClient(ref frame, ref packet, clientHop, FrameFlags.None, FrameReason.ForwardedFragment);
    }

    /// <summary>
    /// ip_vs_in_icmp_v6: an ICMPv6 error to a VIP quoting a packet of a tracked connection (a reply its server sent,
    /// VIP:vport → client) goes to that server: unchanged for direct routing, translated for NAT (the server knows the
    /// reply as RIP:rport → client). One behind a Fragment header is dropped, as IPVS drops it.
    /// </summary>
    private FrameReason HandleIcmpv6ForVirtualAddress(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport)
    {
        if (transport.IsFragment)
        {
            return FrameReason.Icmpv6ErrorFragmented;
        }
        Span<byte> icmp = frame.Transport;
        if (!TryReadQuotedIpv6(icmp, out Ipv6Header quoted, out byte quotedProtocol, out Span<byte> quotedTransport) || _ipv6Tracker is null)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport[2..]);
        // The quoted packet went VIP:vport → client:cport; the connection is keyed the other way round.
        int slot = _ipv6Tracker.FindLive(new ConnectionKey<UInt128>(quotedProtocol, quoted.Destination, destinationPort, quoted.Source, sourcePort), frame.NowMs);
        if (slot < 0)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        ref Connection<UInt128> entry = ref _ipv6Tracker.Table.At(slot);
        if (entry.Dest is not RealServer server)
        {
            return FrameReason.DestinationRemoved;
        }
        var ip = new Ipv6Header(datagram);
        if (entry.Method == ForwardingMethod.Masquerade)
        {
            if (!Ipv6Checksum.Valid(ip.Source, ip.Destination, Ipv6NextHeader.Icmpv6, icmp))
            {
                return FrameReason.IcmpChecksumInvalid; // its checksum is about to be recomputed: never launder a corrupt one
            }
            NatRewrite.Icmpv6ToServer(ip, icmp, quoted, quotedProtocol, quotedTransport, entry.DestAddress, entry.DestPort);
        }
        frame.Transport = default; // the message is relayed as it now is: no transport checksum of udr's to keep
        frame.Flags = FrameFlags.None;
        FrameReason result = TransmitIpv6(ref frame, ref packet, datagram, Ipv6NextHeader.Icmpv6,
            new Ipv6Target(server, entry.DestAddress, entry.DestPort, entry.Method));
        return result == FrameReason.Forwarded ? FrameReason.ForwardedIcmpError : result;
    }

    /// <summary>
    /// ip_vs_out_icmp_v6: an ICMPv6 error from a NAT server (or a router beside it) to a client, about the client's packet
    /// as the server saw it (client:cport → RIP:rport), leaves from the VIP about client:cport → VIP:vport. Its checksum
    /// is verified first; the connection's state and timer are left alone, as the kernel leaves them.
    /// </summary>
    private FrameReason HandleNatIcmpv6FromServer(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Span<byte> icmp)
    {
        var ip = new Ipv6Header(datagram);
        if (!TryReadQuotedIpv6(icmp, out Ipv6Header quoted, out byte quotedProtocol, out Span<byte> quotedTransport) || ip.Destination != quoted.Source)
        {
            return FrameReason.NotForVirtualAddress; // not about a packet of the client it is sent to
        }
        ushort clientPort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport);
        ushort serverPort = BinaryPrimitives.ReadUInt16BigEndian(quotedTransport[2..]);
        ConnectionTracker<UInt128> tracker = _ipv6Tracker!;
        int slot = tracker.FindNatConnection(quotedProtocol, quoted.Source, clientPort, quoted.Destination, serverPort, frame.NowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!Ipv6Checksum.Valid(ip.Source, ip.Destination, Ipv6NextHeader.Icmpv6, icmp))
        {
            return FrameReason.IcmpChecksumInvalid;
        }
        if (ip.HopLimit <= 1)
        {
            return FrameReason.IcmpErrorTtlExpired;
        }
        ref Connection<UInt128> entry = ref tracker.Table.At(slot);
        CountReply(entry.Dest, datagram.Length);
        NatRewrite.Icmpv6FromServer(ip, icmp, quoted, quotedProtocol, quotedTransport, entry.VirtualAddress, entry.VirtualPort);
        ip.HopLimit--;
        return SendToClient(ref frame, ref packet, entry.ClientMac, FrameFlags.None, FrameReason.ForwardedReplyIcmpError);
    }

    /// <summary>
    /// The packet an ICMPv6 error quotes (after its 8-byte header), walked as ip_vs_in_icmp_v6 walks it: false unless it
    /// is an IPv6 TCP or UDP packet, not a later fragment, whose ports are inside the quote. <paramref name="quotedTransport"/>
    /// is its TCP/UDP header as far as the quote holds it.
    /// </summary>
    private static bool TryReadQuotedIpv6(Span<byte> icmp, out Ipv6Header quoted, out byte protocol, out Span<byte> quotedTransport)
    {
        quoted = default;
        protocol = 0;
        quotedTransport = default;
        if (icmp.Length < IcmpHeader.Length + Ipv6Header.Length)
        {
            return false;
        }
        Span<byte> quote = icmp[IcmpHeader.Length..];
        quoted = new Ipv6Header(quote);
        if (quoted.Version != 6 || Ipv6ExtensionHeaders.Walk(quote, out Ipv6Transport inner) != Ipv6ChainEnd.Found ||
            inner.Protocol is not (IpProtocol.Tcp or IpProtocol.Udp) || quote.Length < inner.Offset + 4)
        {
            return false;
        }
        protocol = inner.Protocol;
        quotedTransport = quote[inner.Offset..];
        return true;
    }
}
