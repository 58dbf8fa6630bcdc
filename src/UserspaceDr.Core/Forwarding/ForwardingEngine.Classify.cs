using System.Runtime.CompilerServices;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The first stage (ip_vs_in): what the frame is, whether its headers can be trusted, and which stage it goes to.
/// A frame for a VIP service is tracked and sent on here; everything else is handed to its own stage.
/// </summary>
public sealed partial class ForwardingEngine
{
    // Never inlined into a caller: as its own root it gets the JIT's whole inlining budget for the stages under it (inlined
    // into a receive loop, the budget ran out and the per-frame counter, verdict and fragment-flag reads became calls).
    [MethodImpl(MethodImplOptions.NoInlining)]
    private FrameReason Classify(ref FrameContext frame, ref FrameBuffer packet)
    {
        if (packet.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        // Headers are parsed into locals and then stored in the context: built in a temporary and copied into the
        // context whole, a header was written field by field and read back at once, a store-forwarding stall per frame.
        if (!EthernetFrame.TryParse(packet.Frame, out EthernetFrame ethernet))
        {
            return FrameReason.EthernetTruncated;
        }
        frame.Ethernet = ethernet;
        ushort etherType = ethernet.EtherType;
        if (etherType == EtherTypes.Arp)
        {
            return HandleArp(ref frame, ref packet);
        }
        if (etherType != EtherTypes.Ipv4 && etherType != EtherTypes.Ipv6)
        {
            return FrameReason.NotIp;
        }
        ulong destinationMac = ethernet.Destination.Value;
        if (destinationMac != _links[packet.Link].Mac.Value && (destinationMac & 0x0100_0000_0000) == 0)
        {
            return FrameReason.NotForThisHost; // another host's unicast seen in promiscuous mode
        }
        if (etherType == EtherTypes.Ipv6)
        {
            return ClassifyIpv6(ref frame, ref packet);
        }

        // Structure first: a header we cannot trust ends here, whatever it is addressed to.
        Span<byte> payload = ethernet.Payload;
        if (payload.Length < Ipv4Header.MinLength)
        {
            return FrameReason.IpTruncated;
        }
        // The context gets its header from the span's registers, not as a copy of the local: that local lives on the
        // stack, and a 16-byte copy of it read back the two narrower stores just made, a store-forwarding stall per frame.
        var ip = new Ipv4Header(payload);
        frame.Ip = new Ipv4Header(payload);
        if (ip.Version != 4)
        {
            return FrameReason.IpVersionInvalid;
        }
        int headerLength = ip.HeaderLength;
        if (headerLength < Ipv4Header.MinLength)
        {
            return FrameReason.IpHeaderLengthInvalid;
        }
        if (headerLength > payload.Length)
        {
            return FrameReason.IpTruncated;
        }
        int totalLength = ip.TotalLength;
        if (totalLength < headerLength || totalLength > payload.Length)
        {
            return FrameReason.IpTotalLengthInvalid; // shorter than claimed; longer is Ethernet padding, kept
        }
        frame.Transport = payload[headerLength..totalLength];

        RuleSet rules = _snapshot.Rules;
        if (!rules.IsVirtualAddress(ip.Destination))
        {
            // Not for a VIP: a NAT reply from a real server on its way back to the client, or an ICMP error about a
            // NAT or tunnelled packet; anything else is not udr's.
            return rules.HasMasquerade || rules.HasTunnel ? HandleNotForVirtualAddress(ref frame, ref packet, rules) : FrameReason.NotForVirtualAddress;
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (rules.IsVirtualAddress(ip.Source))
        {
            return FrameReason.SourceIsVirtualAddress; // spoofed or looped: never schedule a VIP as a client
        }

        byte protocol = ip.Protocol;
        if (ip.IsFragment && !ip.IsFirstFragment)
        {
            return ForwardLaterFragment(ref frame, ref packet);
        }
        return protocol switch
        {
            IpProtocol.Tcp or IpProtocol.Udp => HandleService(ref frame, ref packet, protocol, rules),
            IpProtocol.Icmp => HandleIcmp(ref frame, ref packet),
            _ => FrameReason.OtherProtocol,
        };
    }

    private FrameReason HandleArp(ref FrameContext frame, ref FrameBuffer packet)
    {
        if (!ArpPacket.TryCreate(frame.Ethernet.Payload, out ArpPacket arp))
        {
            return FrameReason.ArpMalformed;
        }
        if (!_options.AnswerArpForVirtualAddresses || arp.Operation != ArpOperation.Request || !_snapshot.Rules.IsVirtualAddress(arp.TargetAddress))
        {
            return FrameReason.ArpNotForVirtualAddress;
        }
        frame.ReplyLength = ReplyBuilder.WriteArpReply(frame.Ethernet, arp, _links[packet.Link].Mac, frame.Reply);
        return FrameReason.ArpReply;
    }

    /// <summary>
    /// A TCP/UDP packet for a VIP: its service, its connection (found, reused or scheduled anew) and then the
    /// transmit stage to the connection's server.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private FrameReason HandleService(ref FrameContext frame, ref FrameBuffer packet, byte protocol, RuleSet rules)
    {
        if (!TryReadPorts(protocol, frame.Transport, out ushort clientPort, out ushort virtualPort, out byte tcpFlags))
        {
            return FrameReason.TransportTruncated;
        }

        Ipv4Header ip = frame.Ip;
        uint vip = ip.Destination;
        long nowMs = frame.NowMs;
        var key = new ConnectionKey<uint>(protocol, ip.Source, clientPort, vip, virtualPort);
        // ip_vs_service_find: a firewall-mark service first (udr marks the frame as the site's mangle rules would),
        // then the address/port service, which the prefetch stage found already when it read this frame under the same rules.
        VirtualService? service = rules.HasMarkedServices<uint>() ? rules.FindMarked(ip.Source, vip, protocol, clientPort, virtualPort, packet.Link) : null;
        if (service is null && !packet.Hint.TryGetService(rules, key, out service))
        {
            service = rules.Find(protocol, vip, virtualPort);
        }
        if (service is null)
        {
            return FrameReason.NoVirtualService;
        }

        ConnectionTracker<uint> tracker = _tracker;
        FrameReason tracked = tracker.Track(service, key, tcpFlags, nowMs, out int slot, out RealServer? server);
        if (tracked != FrameReason.Forwarded)
        {
            if (tracked == FrameReason.IcmpPortUnreachable)
            {
                frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, ip, _links[packet.Link].Mac, vip,
                    IcmpType.DestinationUnreachable, IcmpType.CodePortUnreachable, 0, frame.Reply);
            }
            return tracked;
        }
        if (slot < 0)
        {
            // One-packet scheduling (-o): no entry outlives the datagram.
            return Transmit(ref frame, ref packet, new ForwardingTarget(server, server!.Address.IPv4, server.Port != 0 ? server.Port : virtualPort, server.Method));
        }

        ref Connection<uint> connection = ref tracker.Table.At(slot);
        if (SyncOutbox.Enabled)
        {
            tracker.CountForSync(ref connection, SyncOutbox, nowMs);
        }
        // NAT replies (and ICMP errors udr writes for tunnelled flows) go back to where the client's frames came from:
        // that MAC, on that link.
        connection.ClientMac = ClientHop.Pack(frame.Ethernet.Source, packet.Link);
        var target = new ForwardingTarget(server, connection.DestAddress, connection.DestPort, connection.Method);
        if (target.Server is not null)
        {
            ref TrafficCounters traffic = ref Counters.For(target.Server);
            traffic.InPackets++;
            traffic.InBytes += ip.TotalLength;
            if (ip.IsFragment)
            {
                _fragments.Remember(ip.Source, ip.Destination, ip.Identification, protocol, target.Server, target.Address, target.Method, nowMs);
            }
        }
        return Transmit(ref frame, ref packet, target);
    }

    /// <summary>The ports (and TCP flags) of a TCP or UDP header; false when the header is cut short or malformed.</summary>
    private static bool TryReadPorts(byte protocol, Span<byte> transport, out ushort sourcePort, out ushort destinationPort, out byte tcpFlags)
    {
        sourcePort = destinationPort = 0;
        tcpFlags = 0;
        if (protocol == IpProtocol.Tcp)
        {
            if (!TcpHeader.TryCreate(transport, out TcpHeader tcp) || tcp.HeaderLength < TcpHeader.MinLength || tcp.HeaderLength > transport.Length)
            {
                return false;
            }
            sourcePort = tcp.SourcePort;
            destinationPort = tcp.DestinationPort;
            tcpFlags = tcp.Flags;
            return true;
        }
        if (!UdpHeader.TryCreate(transport, out UdpHeader udp))
        {
            return false;
        }
        sourcePort = udp.SourcePort;
        destinationPort = udp.DestinationPort;
        return true;
    }
}
