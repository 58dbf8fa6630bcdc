using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>The NAT reply direction: real server → balancer → client (ip_vs_out).</summary>
public sealed partial class ForwardingEngine
{
    /// <summary>
    /// Indexes a new NAT connection by the tuple its replies will carry (RIP:rport → client:cport). If another
    /// connection already owns that tuple (two VIPs mapping one client port to the same server port), the first
    /// keeps it, as ip_vs_conn_out_get finds the first match.
    /// </summary>
    private static void InsertReplyLink(ConnectionTable table, in Connection connection)
    {
        var key = new ConnectionKey(connection.Protocol, connection.ClientAddress, connection.ClientPort, connection.DestAddress, connection.DestPort, ReplyLink: true);
        if (table.Find(key) >= 0)
        {
            return;
        }
        int slot = table.TryInsert(key);
        if (slot < 0)
        {
            return; // cannot happen: the caller reserved room for it
        }
        ref Connection link = ref table.At(slot);
        link.DestAddress = connection.VirtualAddress;
        link.DestPort = connection.VirtualPort;
        link.Method = ForwardingMethod.Masquerade;
        link.ExpiresAtMs = long.MaxValue; // goes with its connection, never on its own
    }

    /// <summary>
    /// A frame not addressed to a VIP (the rule set has NAT or tunnel servers): a NAT reply, an ICMP error a NAT server
    /// sends a client, or an ICMP error about a tunnelled packet; anything else is not udr's (the kernel's copy goes
    /// its own way).
    /// </summary>
    private FrameReason HandleNotForVirtualAddress(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> transport, FrameFlags flags,
        RuleSet rules, long nowMs, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        byte protocol = ip.Protocol;
        if (protocol != IpProtocol.Icmp)
        {
            return rules.HasMasquerade ? HandlePossibleNatReply(ref packet, ethernet, ip, transport, flags, nowMs, reply, out replyLength) : FrameReason.NotForVirtualAddress;
        }
        // An ICMP error is one whole datagram (at most 576 bytes); a fragment of one is not worth reassembling here.
        if (ip.IsFragment || !IcmpHeader.TryCreate(transport, out IcmpHeader icmp) || !IcmpType.IsErrorIpvsTracks(icmp.Type))
        {
            return FrameReason.NotForVirtualAddress;
        }
        Span<byte> quote = icmp.Quoted;
        if (quote.Length >= Ipv4Header.MinLength && quote[9] == IpProtocol.IpInIp)
        {
            return rules.HasTunnel ? HandleIcmpAboutTunnel(ref packet, ethernet, ip, transport, nowMs, reply, out replyLength) : FrameReason.NotForVirtualAddress;
        }
        return rules.HasMasquerade ? HandleNatIcmpFromServer(ref packet, ethernet, ip, transport, nowMs) : FrameReason.NotForVirtualAddress;
    }

    /// <summary>
    /// The live NAT connection whose replies carry (<paramref name="protocol"/>, RIP:rport → client:cport), found through
    /// its reply link; -1 when there is none.
    /// </summary>
    private int FindNatConnection(byte protocol, uint client, ushort clientPort, uint server, ushort serverPort, long nowMs)
    {
        ConnectionTable table = Connections;
        int linkSlot = table.Find(new ConnectionKey(protocol, client, clientPort, server, serverPort, ReplyLink: true));
        if (linkSlot < 0)
        {
            return -1;
        }
        ref Connection link = ref table.At(linkSlot);
        return FindLive(new ConnectionKey(protocol, client, clientPort, link.DestAddress, link.DestPort), nowMs); // -1: expired just now (its link went with it)
    }

    /// <summary>Addresses a frame to the client's next hop, on the link the client's frames arrive by.</summary>
    private FrameReason SendToClient(ref FrameBuffer packet, EthernetFrame ethernet, ulong clientHop, FrameFlags flags, FrameReason sent)
    {
        byte link = ClientHop.Link(clientHop);
        if (link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        ethernet.Destination = ClientHop.Mac(clientHop);
        ethernet.Source = _links[link].Mac;
        packet.Link = link;
        packet.Flags = flags;
        return sent;
    }

    /// <summary>
    /// If the frame is a reply of a tracked NAT connection, SNAT it to VIP:vport and send it to the client's MAC;
    /// otherwise it is not udr's.
    /// </summary>
    private FrameReason HandlePossibleNatReply(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> transport, FrameFlags flags, long nowMs,
        Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        byte protocol = ip.Protocol;
        if (protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (ip.IsFragment && !ip.IsFirstFragment)
        {
            return ForwardLaterReplyFragment(ref packet, ethernet, ip, protocol, flags, nowMs);
        }
        if (!TryReadPorts(protocol, transport, out ushort serverPort, out ushort clientPort, out byte tcpFlags))
        {
            return FrameReason.NotForVirtualAddress;
        }

        int slot = FindNatConnection(protocol, ip.Destination, clientPort, ip.Source, serverPort, nowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (ip.TimeToLive <= 1)
        {
            // The kernel's ip_forward answers before IPVS's FORWARD hook sees the reply: time-exceeded to the server,
            // from the balancer's address on its side.
            uint source = _links[packet.Link].Address;
            if (source == 0)
            {
                return FrameReason.ReplyTtlExpired;
            }
            replyLength = ReplyBuilder.WriteIcmpError(ethernet, ip, _links[packet.Link].Mac, source,
                IcmpType.TimeExceeded, IcmpType.CodeTtlExceeded, 0, reply);
            return FrameReason.IcmpTimeExceeded;
        }

        ref Connection entry = ref Connections.At(slot);
        byte clientLink = ClientHop.Link(entry.ClientMac);
        if (clientLink < _links.Length && ip.TotalLength > _links[clientLink].Mtu && (flags & FrameFlags.Gso) == 0)
        {
            // The client's link is narrower than the server's: the server hears of it from the balancer's address on
            // its side, as a forwarding kernel would tell it.
            return RefuseTooBig(packet.Link, ethernet, ip, _links[clientLink].Mtu, _links[packet.Link].Address, reply, out replyLength);
        }
        if (protocol == IpProtocol.Tcp)
        {
            AdvanceTcpState(ref entry, tcpFlags, reply: true);
        }
        entry.ExpiresAtMs = nowMs + (TimeoutOf(entry) * 1000L);
        CountReply(entry.Dest, ip);
        if (ip.IsFragment && entry.Dest is not null)
        {
            // The rest of this datagram carries no ports: it follows its first fragment (IPVS reassembles first).
            _replyFragments.Remember(ip.Source, ip.Destination, ip.Identification, protocol, entry.Dest, entry.VirtualAddress,
                ForwardingMethod.Masquerade, nowMs, entry.ClientMac);
        }
        FinishChecksumIfNeeded(ip, transport, ref flags);
        NatRewrite.Source(ip, transport, entry.VirtualAddress, entry.VirtualPort, (flags & FrameFlags.ChecksumPartial) != 0);
        ip.DecrementTimeToLive();
        return SendToClient(ref packet, ethernet, entry.ClientMac, flags, FrameReason.ForwardedReply);
    }

    /// <summary>
    /// A later fragment of a NAT reply: its first fragment named the connection; only the IPv4 source (RIP → VIP) is
    /// rewritten, the ports and transport checksum being in the first fragment. Unknown ones are not udr's.
    /// </summary>
    private FrameReason ForwardLaterReplyFragment(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, byte protocol, FrameFlags flags, long nowMs)
    {
        if (!_replyFragments.TryFind(ip.Source, ip.Destination, ip.Identification, protocol, nowMs, out RealServer? dest, out uint vip, out _, out ulong clientHop))
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
        CountReply(dest, ip);
        NatRewrite.Source(ip, default, vip, 0, checksumPartial: false);
        ip.DecrementTimeToLive();
        return SendToClient(ref packet, ethernet, clientHop, flags & ~FrameFlags.ChecksumPartial, FrameReason.ForwardedFragment);
    }

    /// <summary>
    /// ip_vs_out_icmp: an ICMP error from a NAT real server (or a router beside it) to a client, about the client's
    /// packet as the server saw it (client:cport → RIP:rport). The client must see it come from the VIP about its own
    /// packet (client:cport → VIP:vport): outer source, quoted destination address and port are translated
    /// (ip_vs_nat_icmp), and it goes to the client's next hop like any reply. The connection's state and timer are
    /// left alone, as the kernel leaves them.
    /// </summary>
    private FrameReason HandleNatIcmpFromServer(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> icmp, long nowMs)
    {
        if (!TryReadQuotedPorts(icmp[IcmpHeader.Length..], out Ipv4Header quoted, out ushort clientPort, out ushort serverPort) ||
            ip.Destination != quoted.Source)
        {
            return FrameReason.NotForVirtualAddress; // not about a packet of the client it is sent to
        }
        int slot = FindNatConnection(quoted.Protocol, quoted.Source, clientPort, quoted.Destination, serverPort, nowMs);
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
        ref Connection entry = ref Connections.At(slot);
        CountReply(entry.Dest, ip);
        NatRewrite.IcmpQuotedDestination(icmp, quoted, entry.VirtualAddress, entry.VirtualPort);
        NatRewrite.Source(ip, default, entry.VirtualAddress, 0, checksumPartial: false); // outer source; ICMP has no pseudo-header
        ip.DecrementTimeToLive();
        return SendToClient(ref packet, ethernet, entry.ClientMac, FrameFlags.None, FrameReason.ForwardedReplyIcmpError);
    }

    /// <summary>OutPkts/OutBytes of a real server: what it sent back through the balancer.</summary>
    private void CountReply(RealServer? dest, Ipv4Header ip)
    {
        if (dest is not null)
        {
            ref TrafficCounters traffic = ref Counters.For(dest);
            traffic.OutPackets++;
            traffic.OutBytes += ip.TotalLength;
        }
    }
}
