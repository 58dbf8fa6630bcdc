using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// IPv6 (ip_vs_in with af AF_INET6, ip_vs_dr_xmit_v6, ip_vs_nat_xmit_v6): the fixed header and the extension-header walk
/// of ipv6_find_hdr, Neighbor Solicitations for VIPs, and direct routing or NAT to IPv6 real servers with the hop limit
/// decremented (time exceeded at 1), Packet Too Big for what does not fit the server's link, and port unreachable from
/// the VIP when no server is available. Connection tracking is the same generic tracker as IPv4's, over 128-bit
/// addresses, in a table of its own. NAT replies and ICMPv6 errors are in ForwardingEngine.Ipv6Nat.cs; tunnels to an
/// IPv6 server are wrapped in ForwardingEngine.Tunnel6.cs, to an IPv4 one (IPv6 in IPv4) in ForwardingEngine.Tunnel.cs.
/// </summary>
public sealed partial class ForwardingEngine
{
    private FrameReason ClassifyIpv6(ref FrameContext frame, ref FrameBuffer packet)
    {
        Span<byte> payload = frame.Ethernet.Payload;
        if (payload.Length < Ipv6Header.Length)
        {
            return FrameReason.IpTruncated;
        }
        var ip = new Ipv6Header(payload);
        if (ip.Version != 6)
        {
            return FrameReason.IpVersionInvalid;
        }
        int length = Ipv6Header.Length + ip.PayloadLength;
        if (length > payload.Length)
        {
            return FrameReason.Ipv6PayloadLengthInvalid; // longer than the frame; shorter is Ethernet padding, cut off
        }
        Span<byte> datagram = payload[..length];
        Ipv6ChainEnd end = Ipv6ExtensionHeaders.Walk(datagram, out Ipv6Transport transport);
        if (end == Ipv6ChainEnd.Truncated)
        {
            return FrameReason.Ipv6ExtensionHeadersTruncated;
        }
        if (end == Ipv6ChainEnd.NoTransport)
        {
            return FrameReason.OtherProtocol; // nothing IPVS would schedule: the kernel's (and, for a VIP, its guard's)
        }

        RuleSet rules = _snapshot.Rules;
        ServiceIndex<UInt128> services = rules.Index<UInt128>();
        UInt128 destination = ip.Destination;
        if (transport.Protocol == Ipv6NextHeader.Icmpv6 && !transport.IsLaterFragment &&
            datagram.Length > transport.Offset && datagram[transport.Offset] == Icmpv6Type.NeighborSolicitation)
        {
            return HandleNeighborSolicitation(ref frame, ref packet, ip, datagram[transport.Offset..], services);
        }
        if (!services.IsVirtualAddress(destination))
        {
            // Not for a VIP: a NAT reply from a real server on its way back to the client, or an ICMPv6 error a NAT
            // server sends a client; anything else is not udr's.
            return rules.HasMasquerade ? HandleIpv6NotForVirtualAddress(ref frame, ref packet, datagram, transport) : FrameReason.NotForVirtualAddress;
        }
        if (services.IsVirtualAddress(ip.Source))
        {
            return FrameReason.SourceIsVirtualAddress;
        }
        frame.Transport = transport.IsLaterFragment ? default : datagram[transport.Offset..];
        if (transport.IsLaterFragment)
        {
            return ForwardLaterIpv6Fragment(ref frame, ref packet, datagram, transport);
        }
        return transport.Protocol switch
        {
            IpProtocol.Tcp or IpProtocol.Udp => HandleIpv6Service(ref frame, ref packet, datagram, transport, services),
            Ipv6NextHeader.Icmpv6 => frame.Transport.Length >= IcmpHeader.Length && Icmpv6Type.IsError(frame.Transport[0])
                ? HandleIcmpv6ForVirtualAddress(ref frame, ref packet, datagram, transport)
                : FrameReason.IcmpForVirtualAddress, // echo and the rest: the kernel owns the VIP and answers
            _ => FrameReason.OtherProtocol,
        };
    }

    /// <summary>
    /// A Neighbor Solicitation: for a VIP, and with udr answering for VIPs, the advertisement; checked first as RFC 4861
    /// §7.1.1 says (hop limit 255, code 0, at least 24 bytes, options well formed, checksum, no multicast target).
    /// </summary>
    private FrameReason HandleNeighborSolicitation(ref FrameContext frame, ref FrameBuffer packet, Ipv6Header ip, ReadOnlySpan<byte> message,
        ServiceIndex<UInt128> services)
    {
        if (ip.HopLimit != Ndp.HopLimit)
        {
            return FrameReason.NdpHopLimitInvalid;
        }
        if (message.Length < Ndp.MessageLength || message[1] != 0 || !Ndp.TryRead(message, Ndp.SourceLinkLayerOption, out UInt128 target, out MacAddress sourceMac) ||
            Ndp.IsMulticast(target) || !Ipv6Checksum.Valid(ip.Source, ip.Destination, Ipv6NextHeader.Icmpv6, message) ||
            (ip.Source == UInt128.Zero && sourceMac != MacAddress.Zero))
        {
            return FrameReason.NdpMalformed;
        }
        if (!_options.AnswerArpForVirtualAddresses || !services.IsVirtualAddress(target))
        {
            return FrameReason.NeighborSolicitationNotForVirtualAddress;
        }
        frame.ReplyLength = ReplyBuilder.WriteNeighborAdvertisement(frame.Ethernet, ip.Source, target, _links[packet.Link].Mac, frame.Reply);
        return FrameReason.NeighborAdvertisement;
    }

    /// <summary>A TCP/UDP packet for an IPv6 VIP: its service, its connection, then the transmit stage.</summary>
    private FrameReason HandleIpv6Service(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport,
        ServiceIndex<UInt128> services)
    {
        byte protocol = transport.Protocol;
        if (!TryReadPorts(protocol, frame.Transport, out ushort clientPort, out ushort virtualPort, out byte tcpFlags))
        {
            return FrameReason.TransportTruncated;
        }
        var ip = new Ipv6Header(datagram);
        UInt128 vip = ip.Destination;
        long nowMs = frame.NowMs;
        // ip_vs_service_find: a firewall-mark service first, then the address/port service.
        RuleSet rules = _snapshot.Rules;
        VirtualService? service = rules.HasMarkedServices<UInt128>() ? rules.FindMarked(ip.Source, vip, protocol, clientPort, virtualPort, packet.Link) : null;
        if (service is null)
        {
            int serviceSlot = services.FindSlot(protocol, vip, virtualPort);
            if (serviceSlot < 0)
            {
                return FrameReason.NoVirtualService;
            }
            service = services.ServiceAt(serviceSlot);
        }

        ConnectionTracker<UInt128> tracker = _ipv6Tracker!; // made with the rules that hold this service (Snapshot)
        var key = new ConnectionKey<UInt128>(protocol, ip.Source, clientPort, vip, virtualPort);
        FrameReason tracked = tracker.Track(service, key, tcpFlags, nowMs, out int slot, out RealServer? server);
        if (tracked != FrameReason.Forwarded)
        {
            if (tracked == FrameReason.IcmpPortUnreachable)
            {
                // ip_vs_leave: IPv6 answers port unreachable from the VIP, for TCP too (never a RST).
                frame.ReplyLength = ReplyBuilder.WriteIcmpv6Error(frame.Ethernet, datagram, _links[packet.Link].Mac, vip,
                    Icmpv6Type.DestinationUnreachable, Icmpv6Type.CodePortUnreachable, 0, frame.Reply);
            }
            return tracked;
        }
        if (slot < 0)
        {
            // One-packet scheduling (-o): no entry outlives the datagram.
            return TransmitIpv6(ref frame, ref packet, datagram, protocol,
                new Ipv6Target(server!, server!.Address.IPv6, server.Port != 0 ? server.Port : virtualPort, server.Method));
        }

        ref Connection<UInt128> connection = ref tracker.Table.At(slot);
        if (SyncOutbox.Enabled)
        {
            tracker.CountForSync(ref connection, SyncOutbox, nowMs);
        }
        connection.ClientMac = ClientHop.Pack(frame.Ethernet.Source, packet.Link);
        if (server is null)
        {
            return FrameReason.DestinationRemoved;
        }
        ref TrafficCounters traffic = ref Counters.For(server);
        traffic.InPackets++;
        traffic.InBytes += datagram.Length;
        if (transport.IsFragment)
        {
            _ipv6Fragments.Remember(ip.Source, vip, transport.FragmentId, protocol, server, connection.DestAddress, connection.Method, nowMs);
        }
        return TransmitIpv6(ref frame, ref packet, datagram, protocol, new Ipv6Target(server, connection.DestAddress, connection.DestPort, connection.Method));
    }

    /// <summary>
    /// A later fragment for an IPv6 VIP: it has no ports, so it follows its first fragment's server (IPVS reassembles
    /// first, and never schedules a fragment on its own); without a first fragment seen it is dropped.
    /// </summary>
    private FrameReason ForwardLaterIpv6Fragment(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, Ipv6Transport transport)
    {
        var ip = new Ipv6Header(datagram);
        if (!_ipv6Fragments.TryFind(ip.Source, ip.Destination, transport.FragmentId, transport.Protocol, frame.NowMs,
            out RealServer? dest, out UInt128 destAddress, out ForwardingMethod method, out _))
        {
            return FrameReason.FragmentWithoutFirst;
        }
        ref TrafficCounters traffic = ref Counters.For(dest!);
        traffic.InPackets++;
        traffic.InBytes += datagram.Length;
        frame.Flags = FrameFlags.None;
        FrameReason result = TransmitIpv6(ref frame, ref packet, datagram, transport.Protocol, new Ipv6Target(dest!, destAddress, 0, method));
        return result == FrameReason.Forwarded ? FrameReason.ForwardedFragment : result;
    }

    /// <summary>Where an IPv6 packet goes: the server, its address and port (the NAT destination), and the method.</summary>
    private readonly record struct Ipv6Target(RealServer Server, UInt128 Address, ushort Port, ForwardingMethod Method);

    /// <summary>
    /// ip_vs_dr_xmit_v6 and ip_vs_nat_xmit_v6: to the server's MAC with the hop limit decremented, and for NAT the
    /// destination rewritten to RIP:rport. A hop limit of 1 is answered with time exceeded, a packet larger than the
    /// egress MTU with Packet Too Big (neither about an ICMPv6 error, nor Packet Too Big about a later fragment), both
    /// from the VIP. Only ICMPv6 errors being relayed come here with <paramref name="protocol"/> ICMPv6.
    /// </summary>
    private FrameReason TransmitIpv6(ref FrameContext frame, ref FrameBuffer packet, Span<byte> datagram, byte protocol, in Ipv6Target target)
    {
        RealServer dest = target.Server;
        ForwardingMethod method = target.Method;
        if (dest.Removed)
        {
            return FrameReason.DestinationRemoved;
        }
        if (method is not (ForwardingMethod.Route or ForwardingMethod.Masquerade or ForwardingMethod.Tunnel) ||
            (method != ForwardingMethod.Tunnel && !dest.Address.IsIPv6))
        {
            return FrameReason.ForwardingMethodUnavailable;
        }
        // An IPv4 tunnel server of an IPv6 service (the other family, for tunnels only): IPv6 in IPv4.
        bool outerIpv4 = method == ForwardingMethod.Tunnel && dest.Address.IsIPv4;
        TunnelEncapsulation encapsulation = method == ForwardingMethod.Tunnel ? dest.Tunnel : default;
        NextHop nextHop;
        if (!(outerIpv4 ? _snapshot.Neighbors.TryGet(dest.Address.IPv4, out nextHop) : _snapshot.Neighbors.TryGet(target.Address, out nextHop)))
        {
            return FrameReason.NeighborUnresolved;
        }
        if (nextHop.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        if (nextHop.Link == _localLink)
        {
            FinishIpv6ChecksumIfNeeded(ref frame, new Ipv6Header(datagram), protocol, finishPartial: false);
            return DeliverLocally(ref frame, ref packet, method, dest.Address, nextHop);
        }
        int egressMtu = nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu;
        uint tunnelSource = 0;
        UInt128 tunnelSource6 = UInt128.Zero;
        int tunnelMtu = 0;
        if (method == ForwardingMethod.Tunnel)
        {
            FrameReason unfit = outerIpv4
                ? CheckTunnelPath(ref frame, ref packet, dest.Address.IPv4, nextHop, encapsulation, out tunnelSource)
                : CheckIpv6TunnelPath(ref frame, ref packet, nextHop, encapsulation, out tunnelSource6, out tunnelMtu);
            if (unfit != FrameReason.Forwarded)
            {
                return unfit;
            }
            // What is left inside: an IPv6 packet is never cut on the way, so it must fit whole (IPv6 in IPv4 keeps
            // IPv6's minimum of 1280: below it, the outer IPv4 packet is the one fragmented, its DF clear).
            tunnelMtu = outerIpv4 ? PathMtu(dest.Address.IPv4, nextHop, frame.NowMs) : tunnelMtu;
            egressMtu = outerIpv4
                ? Math.Max(tunnelMtu - OuterHeaderLength - encapsulation.HeaderLength, Ipv6Header.MinimumMtu)
                : tunnelMtu - Ipv6OuterHeaderLength - encapsulation.HeaderLength;
        }
        var ip = new Ipv6Header(datagram);
        bool relayedError = protocol == Ipv6NextHeader.Icmpv6;
        if (ip.HopLimit <= 1)
        {
            if (relayedError)
            {
                return FrameReason.IcmpErrorTtlExpired;
            }
            frame.ReplyLength = ReplyBuilder.WriteIcmpv6Error(frame.Ethernet, datagram, _links[packet.Link].Mac, ip.Destination,
                Icmpv6Type.TimeExceeded, Icmpv6Type.CodeHopLimitExceeded, 0, frame.Reply);
            return FrameReason.IcmpTimeExceeded;
        }
        if (datagram.Length > egressMtu && (frame.Flags & FrameFlags.Gso) == 0)
        {
            if (relayedError || frame.Transport.IsEmpty)
            {
                return FrameReason.EgressMtuExceeded; // no Packet Too Big about an error or a later fragment (ensure_mtu_is_adequate)
            }
            frame.ReplyLength = ReplyBuilder.WriteIcmpv6Error(frame.Ethernet, datagram, _links[packet.Link].Mac, ip.Destination,
                Icmpv6Type.PacketTooBig, 0, (uint)Math.Max(egressMtu, Ipv6Header.MinimumMtu), frame.Reply);
            return FrameReason.Icmpv6PacketTooBig;
        }
        // Finished here: what nothing after udr finishes, and every partial checksum of a tunnelled packet (see
        // FinishTunnelledChecksum).
        FinishIpv6ChecksumIfNeeded(ref frame, ip, protocol, finishPartial: method == ForwardingMethod.Tunnel);
        if (method == ForwardingMethod.Masquerade)
        {
            // DNAT: VIP:vport becomes RIP:rport (a relayed ICMPv6 error: the outer address only, its checksum made for it).
            NatRewrite.Destination(ip, protocol, frame.Transport, target.Address, target.Port, (frame.Flags & FrameFlags.ChecksumPartial) != 0);
        }
        ip.HopLimit--;
        if (method == ForwardingMethod.Tunnel)
        {
            return outerIpv4
                ? WrapInIpv4(ref frame, ref packet, datagram, Ipv6NextHeader.Ipv6, ip.TrafficClass, ip.HopLimit, dontFragment: false, dest.Address.IPv4,
                    nextHop, tunnelSource, tunnelMtu, encapsulation)
                : WrapInIpv6(ref frame, ref packet, datagram, Ipv6NextHeader.Ipv6, ip.TrafficClass, ip.HopLimit, target.Address, nextHop, tunnelSource6,
                    tunnelMtu, encapsulation);
        }
        frame.Ethernet.Destination = nextHop.Mac;
        frame.Ethernet.Source = _links[nextHop.Link].Mac;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// Completes a transport checksum that nothing after udr will finish (ChecksumNotReady, ChecksumUnknown with the
    /// field holding exactly the pseudo-header seed, or any partial one when <paramref name="finishPartial"/>); it is
    /// then no longer partial.
    /// </summary>
    private static void FinishIpv6ChecksumIfNeeded(ref FrameContext frame, Ipv6Header ip, byte protocol, bool finishPartial)
    {
        FrameFlags flags = frame.Flags;
        if (!frame.Transport.IsEmpty && ((flags & FrameFlags.ChecksumNotReady) != 0 ||
            (finishPartial && (flags & FrameFlags.ChecksumPartial) != 0) ||
            ((flags & FrameFlags.ChecksumUnknown) != 0 && TransportChecksum.HoldsOnlyPseudoHeaderSeed(ip, protocol, frame.Transport))))
        {
            TransportChecksum.Finish(ip, protocol, frame.Transport);
            frame.Flags = flags & ~FrameFlags.ChecksumPartial;
        }
    }

    /// <summary>The IPv6 connections (null until rules with an IPv6 VIP were published).</summary>
    public ConnectionTable<UInt128>? Ipv6Connections => _ipv6Tracker?.Table;
}
