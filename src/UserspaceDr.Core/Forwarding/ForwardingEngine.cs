using System.Buffers.Binary;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The per-frame pipeline of one worker, in stages that follow IPVS's own code: classify (ForwardingEngine.Classify.cs:
/// ip_vs_in) → connection tracking (<see cref="ConnectionTracker"/>: ip_vs_conn, ip_vs_schedule) → transmit
/// (ForwardingEngine.Transmit.cs, .Nat.cs, .Tunnel.cs: ip_vs_xmit.c) or reply, with ICMP errors in
/// ForwardingEngine.Icmp.cs (ip_vs_in_icmp) and the NAT reply direction in .Nat.cs (ip_vs_out). One instance per
/// worker thread; not thread-safe, and it needs no locks: its connection table belongs to it alone, and everything
/// the control side changes arrives as one immutable <see cref="EngineSnapshot"/> the worker swaps in between
/// batches. Per frame it allocates nothing and throws nothing; every outcome is a <see cref="FrameReason"/> that is
/// counted.
/// </summary>
public sealed partial class ForwardingEngine
{
    /// <summary>How many links (interfaces) one engine serves at most: a link index is kept in 8 bits.</summary>
    public const int MaxLinks = 64;

    private readonly EngineOptions _options;
    private readonly ConnectionTracker<uint> _tracker;
    private ConnectionTracker<UInt128>? _ipv6Tracker;
    private readonly FragmentTable<uint> _fragments = new();
    private readonly FragmentTable<uint> _replyFragments = new(); // NAT replies: RIP → client, remembered by their first fragment
    private readonly FragmentTable<UInt128> _ipv6Fragments = new();
    private readonly FragmentTable<UInt128> _ipv6ReplyFragments = new();
    private readonly PathMtuCache _pathMtus = new();
    private readonly EngineLink[] _links;
    private readonly int _localLink;
    private EngineSnapshot _snapshot = EngineSnapshot.Empty;

    public ForwardingEngine(EngineOptions options, ConnectionTable<uint> connections, WorkerCounters? counters = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(connections);
        _options = options;
        _links = options.Links.Count > 0 ? [.. options.Links] : [new EngineLink(options.LocalMac)];
        if (_links.Length > MaxLinks)
        {
            throw new ArgumentException($"at most {MaxLinks} links, not {_links.Length}", nameof(options));
        }
        _localLink = options.LocalLink < _links.Length ? options.LocalLink : -1;
        Counters = counters ?? new WorkerCounters();
        _tracker = new ConnectionTracker<uint>(connections, options, Counters);
        Snapshot = new EngineSnapshot(RuleSet.Empty, NeighborTable.Empty, options.Timeouts);
    }

    public ConnectionTable<uint> Connections => _tracker.Table;

    /// <summary>The links this engine serves, by index (<see cref="FrameBuffer.Link"/>).</summary>
    public ReadOnlySpan<EngineLink> Links => _links;

    public WorkerCounters Counters { get; }

    /// <summary>Where this worker posts connections for a sync master to send (idle unless <see cref="SyncOutbox.Enabled"/>).</summary>
    public SyncOutbox SyncOutbox { get; } = new();

    /// <summary>Rules, neighbours and timeouts in force; the worker sets the current one between batches, never during one.</summary>
    public EngineSnapshot Snapshot
    {
        get => _snapshot;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            _snapshot = value;
            _tracker.Timeouts = value.Timeouts;
            if (_ipv6Tracker is null && value.Rules.Ipv6VirtualAddresses.Length > 0)
            {
                // The IPv6 table, as large as the IPv4 one, comes with the first rules that have an IPv6 VIP: between
                // batches, never on a frame; an IPv4-only balancer never pays for it.
                _ipv6Tracker = new ConnectionTracker<UInt128>(new ConnectionTable<UInt128>(Connections.Capacity), _options, Counters);
            }
            if (_ipv6Tracker is not null)
            {
                _ipv6Tracker.Timeouts = value.Timeouts;
            }
        }
    }

    public RuleSet Rules => _snapshot.Rules;
    public NeighborTable Neighbors => _snapshot.Neighbors;
    public Timeouts Timeouts => _snapshot.Timeouts;

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
    public Verdict Process(ref FrameBuffer packet, long nowMs, Span<byte> reply, out int replyLength) =>
        FrameReasons.VerdictOf(ProcessWithReason(ref packet, nowMs, reply, out replyLength));

    /// <summary>As <see cref="Process(Span{byte}, FrameFlags, long, Span{byte}, out int)"/>, also returning the reason (tests and replay report it).</summary>
    public FrameReason ProcessWithReason(Span<byte> frame, FrameFlags flags, long nowMs, Span<byte> reply, out int replyLength)
    {
        var packet = new FrameBuffer(frame, flags);
        return ProcessWithReason(ref packet, nowMs, reply, out replyLength);
    }

    /// <summary>As <see cref="Process(ref FrameBuffer, long, Span{byte}, out int)"/>, also returning the reason.</summary>
    public FrameReason ProcessWithReason(ref FrameBuffer packet, long nowMs, Span<byte> reply, out int replyLength)
    {
        var frame = new FrameContext(packet.Flags, nowMs, reply);
        FrameReason reason = Classify(ref frame, ref packet);
        replyLength = frame.ReplyLength;
        Counters.Count(reason);
        return reason;
    }

    /// <summary>
    /// The first stage of a batch loop, run for frame i + k before frame i is processed: reads the flow key of
    /// <paramref name="frame"/> (an untagged or 802.1Q-tagged IPv4 TCP/UDP first fragment; anything else gets no hint),
    /// finds its service, and starts loading the connection-table slot that processing will look up, so the table's
    /// cache misses overlap. It changes no state and has no effect on any verdict; hand the hint back with the frame
    /// (<see cref="FrameBuffer.Hint"/>) so that neither the offload policy nor the engine reads the frame again.
    /// </summary>
    public FlowHint Prefetch(ReadOnlySpan<byte> frame)
    {
        if (!TryReadFlowKey(frame, out ConnectionKey<uint> key))
        {
            return PrefetchIpv6(frame);
        }
        Connections.Prefetch(key);
        RuleSet rules = _snapshot.Rules;
        int slot = rules.FindSlot(key.Protocol, key.VirtualAddress, key.VirtualPort);
        return new FlowHint(key, slot, rules.Generation, slot >= 0 && rules.HasTunnel && rules.SlotHasTunnel(slot));
    }

    /// <summary>The client-side key of an untagged or 802.1Q-tagged IPv4 TCP/UDP first fragment; false for anything else.</summary>
    private static bool TryReadFlowKey(ReadOnlySpan<byte> frame, out ConnectionKey<uint> key)
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
        key = new ConnectionKey<uint>(protocol, BinaryPrimitives.ReadUInt32BigEndian(ip[12..]), BinaryPrimitives.ReadUInt16BigEndian(ports),
            BinaryPrimitives.ReadUInt32BigEndian(ip[16..]), BinaryPrimitives.ReadUInt16BigEndian(ports[2..]));
        return true;
    }

    /// <summary>
    /// An IPv6 TCP/UDP frame: its connection's slot is prefetched, and the hint says only whether it may be tunnelled
    /// (so that a receive path cuts a super-frame for a tunnel server first); the IPv6 stage reads its headers itself.
    /// </summary>
    private FlowHint PrefetchIpv6(ReadOnlySpan<byte> frame)
    {
        ConnectionTracker<UInt128>? tracker = _ipv6Tracker;
        if (tracker is null || !TryReadIpv6FlowKey(frame, out ConnectionKey<UInt128> key))
        {
            return default;
        }
        tracker.Table.Prefetch(key);
        ServiceIndex<UInt128> services = _snapshot.Rules.Index<UInt128>();
        int slot = services.FindSlot(key.Protocol, key.VirtualAddress, key.VirtualPort);
        return slot >= 0 && services.SlotHasTunnel(slot) ? new FlowHint(default, -1, 0, mayBeTunnelled: true) : default;
    }

    /// <summary>The client-side key of an untagged or 802.1Q-tagged IPv6 TCP/UDP packet that carries its ports; false for anything else.</summary>
    private static bool TryReadIpv6FlowKey(ReadOnlySpan<byte> frame, out ConnectionKey<UInt128> key)
    {
        key = default;
        int ipOffset = frame.Length > 13 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan
            ? EthernetFrame.HeaderLength + EthernetFrame.VlanTagLength
            : EthernetFrame.HeaderLength;
        if (frame.Length < ipOffset + Ipv6Header.Length || BinaryPrimitives.ReadUInt16BigEndian(frame[(ipOffset - 2)..]) != EtherTypes.Ipv6)
        {
            return false;
        }
        ReadOnlySpan<byte> ip = frame[ipOffset..];
        int length = Math.Min(ip.Length, Ipv6Header.Length + BinaryPrimitives.ReadUInt16BigEndian(ip[4..]));
        if (Ipv6ExtensionHeaders.Walk(ip[..length], out Ipv6Transport transport) != Ipv6ChainEnd.Found ||
            transport.Protocol is not (IpProtocol.Tcp or IpProtocol.Udp) || length < transport.Offset + 4)
        {
            return false;
        }
        ReadOnlySpan<byte> ports = ip[transport.Offset..];
        key = new ConnectionKey<UInt128>(transport.Protocol, BinaryPrimitives.ReadUInt128BigEndian(ip[8..]), BinaryPrimitives.ReadUInt16BigEndian(ports),
            BinaryPrimitives.ReadUInt128BigEndian(ip[24..]), BinaryPrimitives.ReadUInt16BigEndian(ports[2..]));
        return true;
    }

    /// <summary>Runs expiry over part of the connection table; call between batches.</summary>
    public int ExpireConnections(long nowMs, int budget) => _tracker.Expire(nowMs, budget) + (_ipv6Tracker?.Expire(nowMs, budget) ?? 0);

    /// <summary>
    /// A backup's sync: enters a connection a master sent (<see cref="ConnectionTracker.ApplySync"/>) under the rules
    /// in force. Called by the worker that owns this engine, between batches.
    /// </summary>
    public SyncApplyOutcome ApplySync(in SyncedConnection synced, long nowMs) => synced.ClientAddress.IsIPv4
        ? _tracker.ApplySync(_snapshot.Rules, synced, nowMs)
        : _ipv6Tracker?.ApplySync(_snapshot.Rules, synced, nowMs) ?? SyncApplyOutcome.UnknownService; // no IPv6 service yet
}
