using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The per-frame pipeline of one worker: classify → look up or schedule the connection → transmit (rewrite in place)
/// or reply. One instance per worker thread; not thread-safe, and it needs no locks: its connection table belongs to
/// it alone, and the rule set and neighbour table are immutable snapshots the worker swaps in between batches.
/// Per frame it allocates nothing and throws nothing; every outcome is a <see cref="FrameReason"/> that is counted.
/// </summary>
public sealed partial class ForwardingEngine
{
    private readonly EngineOptions _options;
    private readonly FragmentTable _fragments = new();
    private readonly FragmentTable _replyFragments = new(); // NAT replies: RIP → client, remembered by their first fragment
    private readonly EngineLink[] _links;

    /// <summary>The current frame's time, for what deep in the pipeline needs it (learned path MTUs expire).</summary>
    private long _nowMs;

    public ForwardingEngine(EngineOptions options, ConnectionTable connections, WorkerCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _links = options.Links.Count > 0 ? [.. options.Links] : [new EngineLink(options.LocalMac)];
        if (_links.Length > MaxLinks)
        {
            throw new ArgumentException($"at most {MaxLinks} links, not {_links.Length}", nameof(options));
        }
        Connections = connections;
        Counters = counters ?? new WorkerCounters();
    }

    /// <summary>How many links (interfaces) one engine serves at most: a link index is kept in 8 bits.</summary>
    public const int MaxLinks = 64;

    public ConnectionTable Connections { get; }

    /// <summary>The links this engine serves, by index (<see cref="FrameBuffer.Link"/>).</summary>
    public ReadOnlySpan<EngineLink> Links => _links;
    public WorkerCounters Counters { get; }

    /// <summary>The rule set in force; the worker sets it between batches.</summary>
    public RuleSet Rules { get; set; } = RuleSet.Empty;

    /// <summary>Real-server MACs; the worker sets it between batches.</summary>
    public NeighborTable Neighbors { get; set; } = NeighborTable.Empty;

    /// <summary>Timeouts in force (--set); the worker sets it between batches.</summary>
    public Timeouts Timeouts { get; set; } = Timeouts.Default;

    /// <summary>
    /// Processes one frame (<paramref name="frame"/> starts at the MAC header, arrived on link 0, no headroom). On
    /// <see cref="Verdict.Transmit"/> the frame has been rewritten in place; on <see cref="Verdict.Reply"/> the reply is in
    /// <paramref name="reply"/>[..<paramref name="replyLength"/>] (it must hold <see cref="ReplyBuilder.MaxReplyLength"/>).
    /// Without headroom nothing can be encapsulated: frames for tunnel servers are dropped
    /// (<see cref="FrameReason.TunnelHeadroomMissing"/>); use the <see cref="FrameBuffer"/> overload for those.
    /// </summary>
    public Verdict Process(Span<byte> frame, FrameFlags flags, long nowMs, Span<byte> reply, out int replyLength)
    {
        var packet = new FrameBuffer(frame, flags);
        return Process(ref packet, nowMs, reply, out replyLength);
    }

    /// <summary>
    /// Processes one frame with its headroom and ingress link. On <see cref="Verdict.Transmit"/> the frame to send is
    /// <see cref="FrameBuffer.Frame"/> (it may have moved into the headroom and grown) on <see cref="FrameBuffer.Link"/>,
    /// followed by <see cref="FrameBuffer.Overflow"/>[..<see cref="FrameBuffer.OverflowLength"/>] when that is not 0.
    /// </summary>
    public Verdict Process(ref FrameBuffer packet, long nowMs, Span<byte> reply, out int replyLength)
    {
        FrameReason reason = Classify(ref packet, nowMs, reply, out replyLength);
        Counters.Count(reason);
        return FrameReasons.VerdictOf(reason);
    }

    /// <summary>
    /// A hint for batch loops: starts loading the connection-table slot that <see cref="Process"/> will look up for
    /// <paramref name="frame"/> (an untagged or 802.1Q-tagged IPv4 TCP/UDP frame; anything else is ignored). Call it
    /// for frame i + k before processing frame i, so the table's cache misses overlap. It only reads the frame's
    /// headers (which also brings them into cache), changes no state and has no effect on any verdict.
    /// </summary>
    public void Prefetch(ReadOnlySpan<byte> frame)
    {
        if (TryReadFlowKey(frame, out ConnectionKey key))
        {
            Connections.Prefetch(key);
        }
    }

    /// <summary>
    /// True when <paramref name="frame"/> (as for <see cref="Prefetch"/>) is TCP/UDP to a service with an IP-in-IP
    /// server. A receive path cuts a GSO super-frame in software before the engine only then (an encapsulated
    /// super-frame cannot be handed to the kernel to segment); everything else keeps the kernel's segmentation.
    /// </summary>
    public bool MayBeTunnelled(ReadOnlySpan<byte> frame)
    {
        RuleSet rules = Rules;
        if (!rules.HasTunnel || !TryReadFlowKey(frame, out ConnectionKey key))
        {
            return false;
        }
        VirtualService? service = rules.Find(key.Protocol, key.VirtualAddress, key.VirtualPort);
        if (service is null)
        {
            return false;
        }
        foreach (RealServer server in service.Destinations)
        {
            if (server.Method == ForwardingMethod.Tunnel)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The client-side key of an untagged or 802.1Q-tagged IPv4 TCP/UDP first fragment; false for anything else.</summary>
    private static bool TryReadFlowKey(ReadOnlySpan<byte> frame, out ConnectionKey key)
    {
        key = default;
        int ipOffset = EthernetFrame.HeaderLength;
        if (frame.Length < ipOffset + Ipv4Header.MinLength + 4)
        {
            return false;
        }
        if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan)
        {
            ipOffset += EthernetFrame.VlanTagLength;
        }
        ReadOnlySpan<byte> ip = frame[ipOffset..];
        if (ip.Length < Ipv4Header.MinLength + 4 || BinaryPrimitives.ReadUInt16BigEndian(frame[(ipOffset - 2)..]) != EtherTypes.Ipv4)
        {
            return false;
        }
        int headerLength = (ip[0] & 0x0F) * 4;
        byte protocol = ip[9];
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || headerLength < Ipv4Header.MinLength ||
            ip.Length < headerLength + 4 || (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & Ipv4Header.OffsetMask) != 0)
        {
            return false; // not TCP/UDP, malformed, or a later fragment (no ports)
        }
        ReadOnlySpan<byte> ports = ip[headerLength..];
        key = new ConnectionKey(protocol, BinaryPrimitives.ReadUInt32BigEndian(ip[12..]), BinaryPrimitives.ReadUInt16BigEndian(ports),
            BinaryPrimitives.ReadUInt32BigEndian(ip[16..]), BinaryPrimitives.ReadUInt16BigEndian(ports[2..]));
        return true;
    }

    /// <summary>As <see cref="Process(Span{byte}, FrameFlags, long, Span{byte}, out int)"/>, also returning the reason (tests and replay report it).</summary>
    public FrameReason ProcessWithReason(Span<byte> frame, FrameFlags flags, long nowMs, Span<byte> reply, out int replyLength)
    {
        var packet = new FrameBuffer(frame, flags);
        return ProcessWithReason(ref packet, nowMs, reply, out replyLength);
    }

    /// <summary>As <see cref="Process(ref FrameBuffer, long, Span{byte}, out int)"/>, also returning the reason.</summary>
    public FrameReason ProcessWithReason(ref FrameBuffer packet, long nowMs, Span<byte> reply, out int replyLength)
    {
        FrameReason reason = Classify(ref packet, nowMs, reply, out replyLength);
        Counters.Count(reason);
        return reason;
    }

    /// <summary>Runs expiry over part of the connection table; call between batches.</summary>
    public int ExpireConnections(long nowMs, int budget) => Connections.Expire(nowMs, budget);

    private FrameReason Classify(ref FrameBuffer packet, long nowMs, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        _nowMs = nowMs;
        if (packet.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        Span<byte> frame = packet.Frame;
        FrameFlags flags = packet.Flags;
        if (!EthernetFrame.TryParse(frame, out EthernetFrame ethernet))
        {
            return FrameReason.EthernetTruncated;
        }
        ushort etherType = ethernet.EtherType;
        if (etherType == EtherTypes.Arp)
        {
            return HandleArp(ethernet, _links[packet.Link].Mac, reply, out replyLength);
        }
        if (etherType != EtherTypes.Ipv4)
        {
            return FrameReason.NotIpv4;
        }
        ulong destinationMac = ethernet.Destination.Value;
        if (destinationMac != _links[packet.Link].Mac.Value && (destinationMac & 0x0100_0000_0000) == 0)
        {
            return FrameReason.NotForThisHost; // another host's unicast seen in promiscuous mode
        }

        // Structure first: a header we cannot trust ends here, whatever it is addressed to.
        Span<byte> payload = ethernet.Payload;
        if (!Ipv4Header.TryCreate(payload, out Ipv4Header ip))
        {
            return FrameReason.IpTruncated;
        }
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

        RuleSet rules = Rules;
        uint destination = ip.Destination;
        if (!rules.IsVirtualAddress(destination))
        {
            // Not for a VIP: a NAT reply from a real server on its way back to the client, or an ICMP error about a
            // NAT or tunnelled packet; anything else is not udr's.
            return rules.HasMasquerade || rules.HasTunnel
                ? HandleNotForVirtualAddress(ref packet, ethernet, ip, payload[headerLength..totalLength], flags, rules, nowMs, reply, out replyLength)
                : FrameReason.NotForVirtualAddress;
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
            return ForwardLaterFragment(ref packet, ethernet, ip, protocol, nowMs, reply, out replyLength);
        }
        Span<byte> transport = payload[headerLength..totalLength];
        return protocol switch
        {
            IpProtocol.Tcp or IpProtocol.Udp => HandleService(ref packet, ethernet, ip, protocol, transport, flags, rules, nowMs, reply, out replyLength),
            IpProtocol.Icmp => HandleIcmp(ref packet, ethernet, ip, transport, nowMs, reply, out replyLength),
            _ => FrameReason.OtherProtocol,
        };
    }

    private FrameReason HandleArp(EthernetFrame ethernet, MacAddress linkMac, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (!ArpPacket.TryCreate(ethernet.Payload, out ArpPacket arp))
        {
            return FrameReason.ArpMalformed;
        }
        if (!_options.AnswerArpForVirtualAddresses || arp.Operation != ArpOperation.Request || !Rules.IsVirtualAddress(arp.TargetAddress))
        {
            return FrameReason.ArpNotForVirtualAddress;
        }
        replyLength = ReplyBuilder.WriteArpReply(ethernet, arp, linkMac, reply);
        return FrameReason.ArpReply;
    }

    private FrameReason HandleService(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, byte protocol, Span<byte> transport, FrameFlags flags,
        RuleSet rules, long nowMs, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (!TryReadPorts(protocol, transport, out ushort clientPort, out ushort virtualPort, out byte tcpFlags))
        {
            return FrameReason.TransportTruncated;
        }

        uint client = ip.Source;
        uint vip = ip.Destination;
        VirtualService? service = rules.Find(protocol, vip, virtualPort);
        if (service is null)
        {
            return FrameReason.NoVirtualService;
        }

        var key = new ConnectionKey(protocol, client, clientPort, vip, virtualPort);
        ConnectionTable table = Connections;
        int slot = FindLive(key, nowMs);
        bool isSyn = (tcpFlags & (TcpFlags.Syn | TcpFlags.Rst)) == TcpFlags.Syn;
        if (slot >= 0)
        {
            slot = CheckExistingEntry(slot, protocol, isSyn);
        }

        if (slot < 0)
        {
            // No entry: only a SYN (any non-RST with sloppy_tcp) or a UDP datagram starts a connection (tcp_conn_schedule).
            if (protocol == IpProtocol.Tcp && !isSyn && !(_options.SloppyTcp && (tcpFlags & TcpFlags.Rst) == 0))
            {
                return FrameReason.TcpNotSyn;
            }
            FrameReason scheduled = Schedule(service, key, protocol, tcpFlags, nowMs, out slot, out RealServer? oneShot);
            if (scheduled == FrameReason.IcmpPortUnreachable)
            {
                replyLength = ReplyBuilder.WriteIcmpError(ethernet, ip, _links[packet.Link].Mac, vip,
                    IcmpType.DestinationUnreachable, IcmpType.CodePortUnreachable, 0, reply);
                return scheduled;
            }
            if (scheduled != FrameReason.Forwarded)
            {
                return scheduled;
            }
            if (oneShot is not null)
            {
                // One-packet scheduling (-o): no entry outlives the datagram.
                return Transmit(ref packet, ethernet, ip, transport, flags, oneShot, oneShot.Address, oneShot.Port != 0 ? oneShot.Port : virtualPort,
                    oneShot.Method, reply, out replyLength);
            }
        }
        else
        {
            ref Connection entry = ref table.At(slot);
            if (protocol == IpProtocol.Tcp)
            {
                AdvanceTcpState(ref entry, tcpFlags, reply: false);
            }
            entry.ExpiresAtMs = nowMs + (TimeoutOf(entry) * 1000L);
        }

        ref Connection connection = ref table.At(slot);
        // NAT replies (and ICMP errors udr writes for tunnelled flows) go back to where the client's frames came from:
        // that MAC, on that link.
        connection.ClientMac = ClientHop.Pack(ethernet.Source, packet.Link);
        RealServer? dest = connection.Dest;
        uint destAddress = connection.DestAddress;
        ushort destPort = connection.DestPort;
        ForwardingMethod method = connection.Method;
        if (dest is not null)
        {
            ref TrafficCounters traffic = ref Counters.For(dest);
            traffic.InPackets++;
            traffic.InBytes += ip.TotalLength;
        }
        if (ip.IsFragment && dest is not null)
        {
            _fragments.Remember(ip.Source, ip.Destination, ip.Identification, protocol, dest, destAddress, method, nowMs);
        }
        return Transmit(ref packet, ethernet, ip, transport, flags, dest, destAddress, destPort, method, reply, out replyLength);
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

    /// <summary>
    /// Finds an entry that has not expired. The sweep removes expired entries only when it reaches them; an entry whose
    /// time has passed is gone for IPVS (its timer fired), so it is removed here and not matched. A template that
    /// still controls connections is the exception: the kernel re-arms it, and it keeps serving new connections.
    /// </summary>
    private int FindLive(in ConnectionKey key, long nowMs)
    {
        ConnectionTable table = Connections;
        int slot = table.Find(key);
        if (slot >= 0 && table.At(slot).ExpiresAtMs <= nowMs)
        {
            ref Connection entry = ref table.At(slot);
            if (entry.IsTemplate && entry.ControlCount > 0)
            {
                entry.ExpiresAtMs = nowMs + (Timeouts.TemplateRecheckSeconds * 1000L);
                return slot;
            }
            table.Remove(slot);
            return -1;
        }
        return slot;
    }

    /// <summary>
    /// Applies conn_reuse_mode and expire_nodest_conn to an existing entry; returns the slot, or -1 when the entry
    /// was expired so that the packet is scheduled afresh.
    /// </summary>
    private int CheckExistingEntry(int slot, byte protocol, bool isSyn)
    {
        ref Connection entry = ref Connections.At(slot);
        RealServer? dest = entry.Dest;
        bool reschedule = false;
        if (dest is not null && dest.Removed)
        {
            // A deleted server: drop (0), or forget the entry and treat the packet as new (1).
            if (!_options.ExpireNoDestinationConnection)
            {
                return slot; // Transmit() turns a removed destination into DestinationRemoved
            }
            reschedule = true;
        }
        else if (isSyn && _options.ConnectionReuseMode != 0)
        {
            if (_options.ExpireNoDestinationConnection && dest is not null && dest.Weight == 0)
            {
                reschedule = true;
            }
            else if ((entry.Flags & ConnectionFlags.Controlled) == 0 && protocol == IpProtocol.Tcp)
            {
                // is_new_conn_expected: the old connection is over.
                reschedule = entry.State is TcpState.TimeWait or TcpState.Close ||
                    ((_options.ConnectionReuseMode & 2) != 0 && entry.State == TcpState.FinWait && (entry.Flags & ConnectionFlags.NoOutput) != 0);
            }
        }
        if (!reschedule)
        {
            return slot;
        }
        Connections.Remove(slot);
        return -1;
    }

    private FrameReason Schedule(VirtualService service, in ConnectionKey key, byte protocol, byte tcpFlags, long nowMs,
        out int slot, out RealServer? oneShot)
    {
        slot = -1;
        oneShot = null;
        ConnectionTable table = Connections;
        RealServer? dest;
        ushort templatePort = service.Port;
        uint templateClient = key.ClientAddress & service.PersistenceNetmask;
        int templateSlot = -1;
        if (service.Persistent)
        {
            // ip_vs_sched_persist: reuse the client network's server while its template is valid.
            var templateKey = new ConnectionKey(protocol, templateClient, 0, key.VirtualAddress, templatePort, Template: true);
            templateSlot = FindLive(templateKey, nowMs);
            if (templateSlot >= 0 && TemplateValid(table.At(templateSlot).Dest))
            {
                dest = table.At(templateSlot).Dest;
            }
            else
            {
                dest = service.Scheduler.Pick(new SchedulingKey(key.ClientAddress, key.ClientPort, key.VirtualAddress, key.VirtualPort));
                if (dest is null)
                {
                    return FrameReason.IcmpPortUnreachable;
                }
                if (templateSlot < 0)
                {
                    if (table.Count + 2 > table.Capacity)
                    {
                        return FrameReason.ConnectionTableFull;
                    }
                    templateSlot = table.TryInsert(templateKey);
                    table.At(templateSlot).Flags |= ConnectionFlags.NoOutput;
                }
                else
                {
                    // An invalid template (server deleted or quiesced): the kernel unhashes it and makes a new one.
                    // Re-pointing it is the same for new connections, and the ones it controls keep their server.
                    table.At(templateSlot).Dest?.UnbindConnection(active: false, template: true);
                }
                ref Connection template = ref table.At(templateSlot);
                template.Dest = dest;
                template.DestAddress = dest.Address;
                template.DestPort = dest.Port;
                template.Method = dest.Method;
                dest.BindConnection(active: false, template: true);
            }
            // Using a template re-arms it for the full persistence timeout.
            table.At(templateSlot).ExpiresAtMs = nowMs + (service.PersistenceTimeout * 1000L);
        }
        else
        {
            dest = service.Scheduler.Pick(new SchedulingKey(key.ClientAddress, key.ClientPort, key.VirtualAddress, key.VirtualPort));
            if (dest is null)
            {
                return FrameReason.IcmpPortUnreachable;
            }
        }

        ref TrafficCounters traffic = ref Counters.For(dest!);
        traffic.Connections++;
        if (service.OnePacket && protocol == IpProtocol.Udp)
        {
            oneShot = dest;
            traffic.InPackets++;
            return FrameReason.Forwarded;
        }

        bool nat = dest!.Method == ForwardingMethod.Masquerade;
        slot = nat && table.Count + 2 > table.Capacity ? -1 : table.TryInsert(key);
        if (slot < 0)
        {
            traffic.Connections--;
            return FrameReason.ConnectionTableFull;
        }
        ref Connection entry = ref table.At(slot);
        entry.Dest = dest;
        entry.DestAddress = dest!.Address;
        // A port-0 (all ports) persistent service keeps the packet's port; otherwise the server's.
        entry.DestPort = dest.Port != 0 ? dest.Port : key.VirtualPort;
        entry.Method = dest.Method;
        entry.State = TcpState.None;
        entry.Flags |= ConnectionFlags.Inactive | (dest.Method != ForwardingMethod.Masquerade ? ConnectionFlags.NoOutput : 0);
        if (templateSlot >= 0)
        {
            entry.Flags |= ConnectionFlags.Controlled;
            entry.TemplateClientAddress = templateClient;
            entry.TemplateVirtualPort = templatePort;
            // The template slot is still valid: the insert above never moves existing entries.
            table.At(templateSlot).ControlCount++;
        }
        dest.BindConnection(active: false, template: false);
        if (protocol == IpProtocol.Tcp)
        {
            AdvanceTcpState(ref entry, tcpFlags, reply: false);
        }
        entry.ExpiresAtMs = nowMs + (TimeoutOf(entry) * 1000L);
        if (nat)
        {
            InsertReplyLink(table, in entry);
        }
        return FrameReason.Forwarded;
    }

    /// <summary>ip_vs_check_template: the server must still be in its service (and not quiesced, if so configured).</summary>
    private bool TemplateValid(RealServer? dest) =>
        dest is not null && !dest.Removed && !(_options.ExpireQuiescentTemplate && dest.Weight == 0);

    /// <summary>
    /// set_tcp_state: the table by direction (a reply clears NOOUTPUT; without one, DR/TUN use INPUT_ONLY), counters
    /// moved between active and inactive.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AdvanceTcpState(ref Connection entry, byte tcpFlags, bool reply)
    {
        PacketDirection direction;
        if (reply)
        {
            entry.Flags &= ~ConnectionFlags.NoOutput;
            direction = PacketDirection.Output;
        }
        else
        {
            direction = (entry.Flags & ConnectionFlags.NoOutput) != 0 ? PacketDirection.InputOnly : PacketDirection.Input;
        }
        TcpState next = TcpStateMachine.Next(entry.State, direction, tcpFlags);
        if (next == entry.State)
        {
            return;
        }
        bool active = TcpStateMachine.IsActive(next);
        if (active == entry.IsInactive)
        {
            entry.Dest?.MoveConnection(toActive: active);
            entry.Flags ^= ConnectionFlags.Inactive;
        }
        entry.State = next;
    }

    /// <summary>
    /// Completes a transport checksum that nothing after udr will finish (ChecksumNotReady, or ChecksumUnknown with
    /// the field holding exactly the pseudo-header seed); it is then no longer partial.
    /// </summary>
    private static void FinishChecksumIfNeeded(Ipv4Header ip, Span<byte> transport, ref FrameFlags flags)
    {
        if (!transport.IsEmpty && ((flags & FrameFlags.ChecksumNotReady) != 0 ||
            ((flags & FrameFlags.ChecksumUnknown) != 0 && TransportChecksum.HoldsOnlyPseudoHeaderSeed(ip, transport))))
        {
            TransportChecksum.Finish(ip, transport);
            flags &= ~FrameFlags.ChecksumPartial;
        }
    }

    private int TimeoutOf(in Connection entry) =>
        entry.Protocol == IpProtocol.Tcp ? Timeouts.ForTcpState(entry.State) : Timeouts.Udp;

    private FrameReason ForwardLaterFragment(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, byte protocol, long nowMs, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (!_fragments.TryFind(ip.Source, ip.Destination, ip.Identification, protocol, nowMs, out RealServer? dest, out uint destAddress, out ForwardingMethod method, out _))
        {
            return FrameReason.FragmentWithoutFirst;
        }
        ref TrafficCounters traffic = ref Counters.For(dest!);
        traffic.InPackets++;
        traffic.InBytes += ip.TotalLength;
        FrameReason result = Transmit(ref packet, ethernet, ip, default, FrameFlags.None, dest, destAddress, 0, method, reply, out replyLength);
        return result == FrameReason.Forwarded ? FrameReason.ForwardedFragment : result;
    }

    /// <summary>
    /// ip_vs_in_icmp: an ICMP error addressed to a VIP that quotes a packet of a tracked connection (a reply the real
    /// server sent, VIP:vport → client) is relayed to that connection's server: as it is for direct routing, inside
    /// an outer header for a tunnel (ip_vs_icmp_xmit uses the connection's own transmitter), and translated for NAT
    /// (the server knows the reply as RIP:rport → client).
    /// </summary>
    private FrameReason HandleIcmp(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> transport, long nowMs, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (!IcmpHeader.TryCreate(transport, out IcmpHeader icmp) || !IcmpType.IsErrorIpvsTracks(icmp.Type))
        {
            return FrameReason.IcmpForVirtualAddress; // echo and the rest: the kernel owns the VIP and answers
        }
        if (!TryReadQuotedPorts(icmp.Quoted, out Ipv4Header inner, out ushort innerSourcePort, out ushort innerDestinationPort))
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        // The quoted packet went VIP:vport → client:cport; the connection is keyed the other way round.
        int slot = FindLive(new ConnectionKey(inner.Protocol, inner.Destination, innerDestinationPort, inner.Source, innerSourcePort), nowMs);
        if (slot < 0)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        ref Connection entry = ref Connections.At(slot);
        if (entry.Method == ForwardingMethod.Masquerade)
        {
            if (!IcmpChecksumValid(transport))
            {
                return FrameReason.IcmpChecksumInvalid; // its checksum is about to be recomputed: never launder a corrupt one
            }
            NatRewrite.IcmpQuotedSource(transport, inner, entry.DestAddress, entry.DestPort);
        }
        // Not counted in the server's InPkts (the kernel's ip_vs_in_stats would): the replay fixtures pin the DR counts.
        FrameReason result = Transmit(ref packet, ethernet, ip, default, FrameFlags.None, entry.Dest, entry.DestAddress, entry.DestPort, entry.Method, reply, out replyLength);
        return result == FrameReason.Forwarded ? FrameReason.ForwardedIcmpError : result;
    }

    /// <summary>
    /// Reads the header and ports of the packet an ICMP error quotes: false unless it is an IPv4 TCP or UDP packet
    /// whose ports are inside the quote and that is not a later fragment (which has no ports), as ip_vs_in_icmp
    /// requires.
    /// </summary>
    private static bool TryReadQuotedPorts(Span<byte> quote, out Ipv4Header quoted, out ushort sourcePort, out ushort destinationPort)
    {
        sourcePort = destinationPort = 0;
        if (!Ipv4Header.TryCreate(quote, out quoted) || quoted.Version != 4 || quoted.HeaderLength < Ipv4Header.MinLength ||
            quote.Length < quoted.HeaderLength + 4 || (quoted.Protocol != IpProtocol.Tcp && quoted.Protocol != IpProtocol.Udp) ||
            !quoted.IsFirstFragment)
        {
            return false;
        }
        Span<byte> ports = quote[quoted.HeaderLength..];
        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(ports);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(ports[2..]);
        return true;
    }

    /// <summary>True when the ICMP message (header and body) sums to the all-ones checksum.</summary>
    private static bool IcmpChecksumValid(ReadOnlySpan<byte> icmp) => Checksum.Fold(Checksum.Add(icmp)) == 0xFFFF;

    /// <summary>
    /// A packet that does not fit the link it would leave by (a GSO super-frame is the kernel's to segment, so never
    /// this): with DF set the sender is told the MTU, from <paramref name="source"/> (the VIP it addressed, or the
    /// balancer's own address toward a real server), as IPVS and a forwarding kernel do; without DF it is dropped,
    /// since udr does not fragment plain packets.
    /// </summary>
    private FrameReason RefuseTooBig(byte ingressLink, EthernetFrame ethernet, Ipv4Header ip, int mtu, uint source, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (!ip.DontFragmentSet || ip.Protocol == IpProtocol.Icmp || source == 0)
        {
            return FrameReason.EgressMtuExceeded;
        }
        replyLength = ReplyBuilder.WriteIcmpError(ethernet, ip, _links[ingressLink].Mac, source,
            IcmpType.DestinationUnreachable, IcmpType.CodeFragmentationNeeded, (uint)mtu, reply);
        return FrameReason.IcmpFragmentationNeeded;
    }

    /// <summary>
    /// The transmit methods. Direct routing: the L2 header is rewritten and TTL decremented; nothing else changes.
    /// NAT: the same after DNAT to RIP:rport. Tunnel: the same inner packet inside an outer IPv4 header to the RIP.
    /// </summary>
    private FrameReason Transmit(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> transport, FrameFlags flags,
        RealServer? dest, uint destAddress, ushort destPort, ForwardingMethod method, Span<byte> reply, out int replyLength)
    {
        replyLength = 0;
        if (dest is not null && dest.Removed)
        {
            return FrameReason.DestinationRemoved;
        }
        if (method is not (ForwardingMethod.Route or ForwardingMethod.Masquerade or ForwardingMethod.Tunnel))
        {
            return FrameReason.ForwardingMethodUnavailable;
        }
        if (!Neighbors.TryGet(destAddress, out NextHop nextHop))
        {
            return FrameReason.NeighborUnresolved;
        }
        if (nextHop.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        uint tunnelSource = 0;
        if (method == ForwardingMethod.Tunnel)
        {
            FrameReason unfit = CheckTunnelPath(packet, flags, destAddress, nextHop, out tunnelSource);
            if (unfit != FrameReason.Forwarded)
            {
                return unfit;
            }
        }
        if (ip.TimeToLive <= 1)
        {
            if (ip.Protocol == IpProtocol.Icmp)
            {
                return FrameReason.IcmpErrorTtlExpired; // only relayed ICMP errors get here, and no error is sent about an error
            }
            // The route to the server is not local, so IPVS decrements TTL and answers an expired one (ip_vs_xmit.c).
            replyLength = ReplyBuilder.WriteIcmpError(ethernet, ip, _links[packet.Link].Mac, ip.Destination,
                IcmpType.TimeExceeded, IcmpType.CodeTtlExceeded, 0, reply);
            return FrameReason.IcmpTimeExceeded;
        }
        if (method != ForwardingMethod.Tunnel &&
            ip.TotalLength > (nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu) && (flags & FrameFlags.Gso) == 0)
        {
            // ensure_mtu_is_adequate: the server's link is narrower than the one the packet came by.
            return RefuseTooBig(packet.Link, ethernet, ip, nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu, ip.Destination, reply, out replyLength);
        }
        FinishChecksumIfNeeded(ip, transport, ref flags);
        if (method == ForwardingMethod.Masquerade)
        {
            // DNAT: VIP:vport becomes RIP:rport (ip_vs_nat_xmit).
            NatRewrite.Destination(ip, transport, destAddress, destPort, (flags & FrameFlags.ChecksumPartial) != 0);
        }
        ip.DecrementTimeToLive();
        if (method == ForwardingMethod.Tunnel)
        {
            return Encapsulate(ref packet, ethernet, ip, transport, flags, destAddress, nextHop, tunnelSource, reply, out replyLength);
        }
        ethernet.Destination = nextHop.Mac;
        ethernet.Source = _links[nextHop.Link].Mac;
        packet.Link = nextHop.Link;
        packet.Flags = flags;
        return FrameReason.Forwarded;
    }
}
