using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Bench;

/// <summary>
/// IPv4 against IPv6, side by side in one run: one <c>Process</c> call per frame of an established DR TCP flow (an ACK+PSH
/// with 64 bytes of payload), on a dual-stack engine with one service per family (VIP 198.19.0.100:80 and
/// [2001:2::100]:80, 10 rr servers each, their neighbour entries the balancer's own MAC as in
/// <see cref="EstablishedFlowBenchmark"/>), <see cref="Flows"/> established flows of the measured family in a table of
/// capacity 131,072 per family. Frames are processed in order and cycled, 256 per invocation (ns per frame); every 250
/// passes the whole frame set is put back from a saved copy, so TTL and hop limit never reach 1. IPv4 pays the
/// header-checksum patch, IPv6 the 128-bit key: the ratio of the two rows is the IPv6 cost per frame.
/// </summary>
[MemoryDiagnoser]
public class FamilyEstablishedFlowBenchmark
{
    public const int TableCapacity = 131_072;
    public const int FramesPerInvoke = 256;
    private const int PayloadLength = 64;
    private const int Stride = 160;
    private const int PassesBetweenRestores = 250;
    private const long NowMs = 10_000;
    private const int Servers = 10;
    private const int PrefetchDistance = 8;

    private static readonly UInt128 Vip6 = InetAddress.Parse("2001:2::100").IPv6;
    private static readonly UInt128 ClientNetwork6 = InetAddress.Parse("2001:2:0:1::").IPv6;
    private static readonly UInt128 ServerNetwork6 = InetAddress.Parse("2001:2:0:2::").IPv6;

    private ForwardingEngine _engine = null!;
    private byte[] _frames = null!;
    private byte[] _original = null!;
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private int _frameLength;
    private int _cursor;
    private int _passes;
    private readonly FlowHint[] _hints = new FlowHint[PrefetchDistance];

    [Params(IpFamily.IPv4, IpFamily.IPv6)]
    public IpFamily Family { get; set; }

    [Params(256, 65_536)]
    public int Flows { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _engine = CreateDualStackEngine();
        _frames = new byte[Flows * Stride];
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        for (int flow = 0; flow < Flows; flow++)
        {
            Span<byte> frame = _frames.AsSpan(flow * Stride, Stride);
            foreach (byte flags in (ReadOnlySpan<byte>)[TcpFlags.Syn, TcpFlags.Ack])
            {
                int length = Write(frame, flow, flags, 0);
                Require(_engine.ProcessWithReason(frame[..length], FrameFlags.None, 1_000, reply, out _), flow);
            }
            _frameLength = Write(frame, flow, TcpFlags.Ack | TcpFlags.Psh, PayloadLength);
        }
        _original = (byte[])_frames.Clone();
        for (int flow = 0; flow < Flows; flow++)
        {
            Require(_engine.ProcessWithReason(_frames.AsSpan(flow * Stride, _frameLength), FrameFlags.None, NowMs, reply, out _), flow);
        }
        Restore();
    }

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int ForwardEstablished()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int length = _frameLength;
        int start = _cursor;
        int transmitted = 0;
        for (int i = start; i < start + FramesPerInvoke; i++)
        {
            Verdict verdict = engine.Process(frames.AsSpan(i * Stride, length), FrameFlags.None, NowMs, reply, out _);
            transmitted += verdict == Verdict.Transmit ? 1 : 0;
        }
        Advance(start);
        return transmitted;
    }

    /// <summary>
    /// As <see cref="ForwardEstablished"/>, as the AF_PACKET worker's batch loop runs it: <see cref="ForwardingEngine.Prefetch"/>
    /// for frame i + 8 (cyclically) before frame i, so the table's cache misses overlap; the prefetch is part of the cost.
    /// </summary>
    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int ForwardEstablishedPrefetched()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int length = _frameLength;
        int start = _cursor;
        int ahead = (start + PrefetchDistance) % Flows;
        FlowHint[] hints = _hints;
        int transmitted = 0;
        for (int i = start; i < start + FramesPerInvoke; i++)
        {
            var packet = new FrameBuffer(frames, i * Stride, length);
            packet.Hint = hints[i & (PrefetchDistance - 1)]; // as the workers hand it over (see FrameBuffer's constructor)
            hints[ahead & (PrefetchDistance - 1)] = engine.Prefetch(frames.AsSpan(ahead * Stride, length));
            if (++ahead == Flows)
            {
                ahead = 0;
            }
            Verdict verdict = engine.Process(ref packet, NowMs, reply, out _);
            transmitted += verdict == Verdict.Transmit ? 1 : 0;
        }
        Advance(start);
        return transmitted;
    }

    private void Advance(int start)
    {
        int next = start + FramesPerInvoke;
        if (next >= Flows)
        {
            next = 0;
            if (++_passes == PassesBetweenRestores)
            {
                Restore();
            }
        }
        _cursor = next;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        long forwarded = _engine.Counters[FrameReason.Forwarded];
        long total = _engine.Counters.Total(Verdict.Transmit) + _engine.Counters.Total(Verdict.Reply) +
            _engine.Counters.Total(Verdict.Pass) + _engine.Counters.Total(Verdict.Drop);
        if (forwarded != total)
        {
            throw new InvalidOperationException($"{total - forwarded} frames were not forwarded: the measurement is invalid.");
        }
    }

    private int Write(Span<byte> frame, int flow, byte flags, int payloadLength) => Family == IpFamily.IPv4
        ? BenchFrames.WriteTcp(frame, BenchEnvironment.ClientAddress(flow), BenchEnvironment.ClientPort(flow), BenchEnvironment.Vip,
            BenchEnvironment.VirtualPort, flags, payloadLength, ttl: 255)
        : BenchFrames.WriteTcp6(frame, ClientNetwork6 + (UInt128)flow, BenchEnvironment.ClientPort(flow), Vip6, BenchEnvironment.VirtualPort,
            flags, payloadLength, hopLimit: 255);

    private static void Require(FrameReason reason, int flow)
    {
        if (reason != FrameReason.Forwarded)
        {
            throw new InvalidOperationException($"Setup: flow {flow} gave {reason}.");
        }
    }

    private void Restore()
    {
        _passes = 0;
        _original.CopyTo(_frames, 0);
    }

    private static ForwardingEngine CreateDualStackEngine()
    {
        var ipv4Servers = ImmutableArray.CreateBuilder<RealServerSpec>(Servers);
        var ipv6Servers = ImmutableArray.CreateBuilder<RealServerSpec>(Servers);
        var ipv4Neighbors = new Dictionary<uint, NextHop>();
        var ipv6Neighbors = new Dictionary<UInt128, NextHop>();
        for (int i = 0; i < Servers; i++)
        {
            UInt128 server6 = ServerNetwork6 + (UInt128)(11 + i);
            ipv4Servers.Add(new RealServerSpec(InetAddress.FromIPv4(BenchEnvironment.ServerAddress(i)), BenchEnvironment.VirtualPort, ForwardingMethod.Route, Weight: 1));
            ipv6Servers.Add(new RealServerSpec(InetAddress.FromIPv6(server6), BenchEnvironment.VirtualPort, ForwardingMethod.Route, Weight: 1));
            ipv4Neighbors[BenchEnvironment.ServerAddress(i)] = new NextHop(BenchFrames.BalancerMac);
            ipv6Neighbors[server6] = new NextHop(BenchFrames.BalancerMac);
        }
        RuleSetSpec rules = new(
        [
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(BenchEnvironment.Vip), BenchEnvironment.VirtualPort, "rr") { RealServers = ipv4Servers.MoveToImmutable() },
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv6(Vip6), BenchEnvironment.VirtualPort, "rr") { RealServers = ipv6Servers.MoveToImmutable() },
        ]);
        return new ForwardingEngine(new EngineOptions { LocalMac = BenchFrames.BalancerMac }, new ConnectionTable<uint>(TableCapacity, seed: 42))
        {
            Snapshot = new EngineSnapshot(RuleSet.Build(rules), new NeighborTable(ipv4Neighbors, ipv6Neighbors), Timeouts.Default),
        };
    }
}
