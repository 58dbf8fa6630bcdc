using System.Collections.Immutable;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>An engine over a small DR rule set, with the lab's addresses and neighbours.</summary>
internal sealed class EngineHarness
{
    public EngineHarness(VirtualServiceSpec service, int capacity = 1024, EngineOptions? options = null)
        : this(new RuleSetSpec([service]), capacity, options)
    {
    }

    public EngineHarness(RuleSetSpec spec, int capacity = 1024, EngineOptions? options = null)
    {
        Rules = RuleSet.Build(spec);
        Engine = new ForwardingEngine(options ?? new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac) }, new ConnectionTable<uint>(capacity, seed: 42));
        Engine.Snapshot = new EngineSnapshot(Rules, new NeighborTable(new Dictionary<uint, MacAddress>
        {
            [Ipv4Address.Parse(Frames.Rs1)] = Frames.UdrMac(Frames.Rs1Mac),
            [Ipv4Address.Parse(Frames.Rs2)] = Frames.UdrMac(Frames.Rs2Mac),
        }), Engine.Timeouts);
    }

    /// <summary>The engine's neighbour table; setting it publishes a new snapshot, as the resolver does.</summary>
    public NeighborTable Neighbors
    {
        get => Engine.Neighbors;
        set => Engine.Snapshot = Engine.Snapshot.WithNeighbors(value);
    }

    public RuleSet Rules { get; }
    public ForwardingEngine Engine { get; }
    public byte[] Reply { get; } = new byte[ReplyBuilder.MaxReplyLength];
    public int ReplyLength { get; private set; }

    public FrameReason Process(byte[] frame, long nowMs = 1000, FrameFlags flags = FrameFlags.None)
    {
        FrameReason reason = Engine.ProcessWithReason(frame, flags, nowMs, Reply, out int length);
        ReplyLength = length;
        return reason;
    }

    /// <summary>
    /// Runs <paramref name="frame"/> through the <see cref="FrameBuffer"/> overload: <paramref name="headroom"/> bytes in
    /// front of it, arrived on <paramref name="link"/>, with an <paramref name="overflow"/>-byte overflow frame. The
    /// frame is not changed; the outcome holds copies of what the engine produced.
    /// </summary>
    public Outcome ProcessBuffer(byte[] frame, int headroom = FrameBuffer.RecommendedHeadroom, FrameFlags flags = FrameFlags.None, byte link = 0,
        int overflow = 2048, long nowMs = 1000)
    {
        byte[] buffer = new byte[headroom + frame.Length];
        frame.CopyTo(buffer, headroom);
        byte[] overflowFrame = new byte[overflow];
        var packet = new FrameBuffer(buffer, headroom, frame.Length, flags, link, overflowFrame);
        FrameReason reason = Engine.ProcessWithReason(ref packet, nowMs, Reply, out int length);
        ReplyLength = length;
        return new Outcome(reason, packet.Frame.ToArray(), packet.Offset, packet.Link, packet.Flags, overflowFrame.AsSpan(0, packet.OverflowLength).ToArray(),
            Reply.AsSpan(0, length).ToArray());
    }

    /// <summary>What one <see cref="ProcessBuffer"/> call produced: the frame (as the buffer now describes it) and any second frame or reply.</summary>
    internal sealed record Outcome(FrameReason Reason, byte[] Frame, int Offset, byte Link, FrameFlags Flags, byte[] Overflow, byte[] Reply);

    public RealServer Server(string address) =>
        Rules.Services.SelectMany(s => s.Destinations).First(d => d.Address == InetAddress.Parse(address));

    public static VirtualServiceSpec Service(string scheduler = "rr", ServiceProtocol protocol = ServiceProtocol.Tcp, ushort port = 80,
        int persistence = 0, uint netmask = 0xFFFFFFFF, params (string Address, int Weight)[] servers) =>
        new(protocol, InetAddress.Parse(Frames.Vip), port, scheduler, PersistenceTimeout: persistence, PersistenceNetmask: netmask)
        {
            RealServers = servers.Select(s => new RealServerSpec(InetAddress.Parse(s.Address), port, ForwardingMethod.Route, s.Weight)).ToImmutableArray(),
        };
}
