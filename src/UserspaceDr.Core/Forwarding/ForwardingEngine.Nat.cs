using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>The NAT reply direction: real server → balancer → client (ip_vs_out), and what is not addressed to a VIP.</summary>
public sealed partial class ForwardingEngine
{
    /// <summary>
    /// A frame not addressed to a VIP (the rule set has NAT or tunnel servers): a NAT reply, an ICMP error a NAT server
    /// sends a client, or an ICMP error about a tunnelled packet; anything else is not udr's (the kernel's copy goes
    /// its own way).
    /// </summary>
    private FrameReason HandleNotForVirtualAddress(ref FrameContext frame, ref FrameBuffer packet, RuleSet rules)
    {
        Ipv4Header ip = frame.Ip;
        if (ip.Protocol != IpProtocol.Icmp)
        {
            return rules.HasMasquerade ? HandlePossibleNatReply(ref frame, ref packet) : FrameReason.NotForVirtualAddress;
        }
        // An ICMP error is one whole datagram (at most 576 bytes); a fragment of one is not worth reassembling here.
        if (ip.IsFragment || !IcmpHeader.TryCreate(frame.Transport, out IcmpHeader icmp) || !IcmpType.IsErrorIpvsTracks(icmp.Type))
        {
            return FrameReason.NotForVirtualAddress;
        }
        Span<byte> quote = icmp.Quoted;
        if (quote.Length >= Ipv4Header.MinLength && quote[9] == IpProtocol.IpInIp)
        {
            return rules.HasTunnel ? HandleIcmpAboutTunnel(ref frame, ref packet) : FrameReason.NotForVirtualAddress;
        }
        if (quote.Length >= Ipv4Header.MinLength && quote[9] is IpProtocol.Udp or IpProtocol.Gre && rules.HasTunnel)
        {
            // About a GUE or GRE packet udr tunnelled, or (UDP) about a client's datagram to a NAT server: the first
            // when its outer source and server are udr's own, else the second.
            FrameReason tunnelled = HandleIcmpAboutTunnel(ref frame, ref packet);
            if (tunnelled != FrameReason.IcmpErrorNotTracked || !rules.HasMasquerade)
            {
                return tunnelled;
            }
        }
        return rules.HasMasquerade ? HandleNatIcmpFromServer(ref frame, ref packet) : FrameReason.NotForVirtualAddress;
    }

    /// <summary>Addresses a frame to the client's next hop, on the link the client's frames arrive by.</summary>
    private FrameReason SendToClient(ref FrameContext frame, ref FrameBuffer packet, ulong clientHop, FrameFlags flags, FrameReason sent)
    {
        byte link = ClientHop.Link(clientHop);
        if (link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        frame.Ethernet.Destination = ClientHop.Mac(clientHop);
        frame.Ethernet.Source = _links[link].Mac;
        packet.Link = link;
        packet.Flags = flags;
        return sent;
    }

    /// <summary>
    /// If the frame is a reply of a tracked NAT connection, SNAT it to VIP:vport and send it to the client's MAC;
    /// otherwise it is not udr's.
    /// </summary>
    private FrameReason HandlePossibleNatReply(ref FrameContext frame, ref FrameBuffer packet)
    {
        Ipv4Header ip = frame.Ip;
        byte protocol = ip.Protocol;
        if (protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (ip.IsFragment && !ip.IsFirstFragment)
        {
            return ForwardLaterReplyFragment(ref frame, ref packet);
        }
        if (!TryReadPorts(protocol, frame.Transport, out ushort serverPort, out ushort clientPort, out byte tcpFlags))
        {
            return FrameReason.NotForVirtualAddress;
        }

        long nowMs = frame.NowMs;
        int slot = _tracker.FindNatConnection(protocol, ip.Destination, clientPort, ip.Source, serverPort, nowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        byte ingress = packet.Link;
        if (ip.TimeToLive <= 1)
        {
            // The kernel's ip_forward answers before IPVS's FORWARD hook sees the reply: time-exceeded to the server,
            // from the balancer's address on its side.
            uint source = _links[ingress].Address;
            if (source == 0)
            {
                return FrameReason.ReplyTtlExpired;
            }
            frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, ip, _links[ingress].Mac, source,
                IcmpType.TimeExceeded, IcmpType.CodeTtlExceeded, 0, frame.Reply);
            return FrameReason.IcmpTimeExceeded;
        }

        ref Connection<uint> entry = ref Connections.At(slot);
        byte clientLink = ClientHop.Link(entry.ClientMac);
        if (clientLink < _links.Length && ip.TotalLength > _links[clientLink].Mtu && (frame.Flags & FrameFlags.Gso) == 0)
        {
            // The client's link is narrower than the server's: the server hears of it from the balancer's address on
            // its side, as a forwarding kernel would tell it.
            return RefuseTooBig(ref frame, ref packet, _links[clientLink].Mtu, _links[ingress].Address);
        }
        if (protocol == IpProtocol.Tcp)
        {
            _tracker.AdvanceTcpState(ref entry, tcpFlags, reply: true);
        }
        _tracker.Arm(ref entry, nowMs);
        CountReply(entry.Dest, ip.TotalLength);
        if (ip.IsFragment && entry.Dest is not null)
        {
            // The rest of this datagram carries no ports: it follows its first fragment (IPVS reassembles first).
            _replyFragments.Remember(ip.Source, ip.Destination, ip.Identification, protocol, entry.Dest, entry.VirtualAddress,
                ForwardingMethod.Masquerade, nowMs, entry.ClientMac);
        }
        FinishChecksumIfNeeded(ref frame, ref packet);
        NatRewrite.Source(ip, frame.Transport, entry.VirtualAddress, entry.VirtualPort, (frame.Flags & FrameFlags.ChecksumPartial) != 0);
        ip.DecrementTimeToLive();
        return SendToClient(ref frame, ref packet, entry.ClientMac, frame.Flags, FrameReason.ForwardedReply);
    }

    /// <summary>
    /// A later fragment of a NAT reply: its first fragment named the connection; only the IPv4 source (RIP → VIP) is
    /// rewritten, the ports and transport checksum being in the first fragment. Unknown ones are not udr's.
    /// </summary>
    private FrameReason ForwardLaterReplyFragment(ref FrameContext frame, ref FrameBuffer packet)
    {
        Ipv4Header ip = frame.Ip;
        if (!_replyFragments.TryFind(ip.Source, ip.Destination, ip.Identification, ip.Protocol, frame.NowMs, out RealServer? dest, out uint vip, out _,
            out ulong clientHop))
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (ip.TimeToLive <= 1)
        {
            return FrameReason.ReplyTtlExpired;
        }
        CountReply(dest, ip.TotalLength);
        NatRewrite.Source(ip, default, vip, 0, checksumPartial: false);
        ip.DecrementTimeToLive();
        return SendToClient(ref frame, ref packet, clientHop, frame.Flags & ~FrameFlags.ChecksumPartial, FrameReason.ForwardedFragment);
    }

    /// <summary>
    /// ip_vs_out_icmp: an ICMP error from a NAT real server (or a router beside it) to a client, about the client's
    /// packet as the server saw it (client:cport → RIP:rport). The client must see it come from the VIP about its own
    /// packet (client:cport → VIP:vport): outer source, quoted destination address and port are translated
    /// (ip_vs_nat_icmp), and it goes to the client's next hop like any reply. The connection's state and timer are
    /// left alone, as the kernel leaves them.
    /// </summary>
    private FrameReason HandleNatIcmpFromServer(ref FrameContext frame, ref FrameBuffer packet)
    {
        Ipv4Header ip = frame.Ip;
        Span<byte> icmp = frame.Transport;
        if (!TryReadQuotedPorts(icmp[IcmpHeader.Length..], out Ipv4Header quoted, out ushort clientPort, out ushort serverPort) ||
            ip.Destination != quoted.Source)
        {
            return FrameReason.NotForVirtualAddress; // not about a packet of the client it is sent to
        }
        int slot = _tracker.FindNatConnection(quoted.Protocol, quoted.Source, clientPort, quoted.Destination, serverPort, frame.NowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (!IcmpChecksumValid(icmp))
        {
            return FrameReason.IcmpChecksumInvalid; // its checksum is about to be recomputed: never launder a corrupt one
        }
        if (ip.TimeToLive <= 1)
        {
            return FrameReason.IcmpErrorTtlExpired;
        }
        ref Connection<uint> entry = ref Connections.At(slot);
        CountReply(entry.Dest, ip.TotalLength);
        NatRewrite.IcmpQuotedDestination(icmp, quoted, entry.VirtualAddress, entry.VirtualPort);
        NatRewrite.Source(ip, default, entry.VirtualAddress, 0, checksumPartial: false); // outer source; ICMP has no pseudo-header
        ip.DecrementTimeToLive();
        return SendToClient(ref frame, ref packet, entry.ClientMac, FrameFlags.None, FrameReason.ForwardedReplyIcmpError);
    }

    /// <summary>OutPkts/OutBytes of a real server: what it sent back through the balancer.</summary>
    private void CountReply(RealServer? dest, int length)
    {
        if (dest is not null)
        {
            ref TrafficCounters traffic = ref Counters.For(dest);
            traffic.OutPackets++;
            traffic.OutBytes += length;
        }
    }
}
