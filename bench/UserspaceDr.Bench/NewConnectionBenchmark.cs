using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Bench;

/// <summary>
/// A SYN for a never-seen flow: classify, miss in the table, schedule (rr over 10 servers), insert, run the TCP state
/// machine, rewrite and forward. The table (capacity 1,100,000) already holds 500,000 established background flows,
/// so inserts probe a loaded table as on a busy balancer. One invocation processes <see cref="NewPerIteration"/>
/// SYNs of distinct new flows; the iteration setup (not measured) removes those flows again and restores the
/// frames (TTL), so every measured SYN really is new. The result is ns per new connection.
/// </summary>
[MemoryDiagnoser]
public class NewConnectionBenchmark
{
    public const int NewPerIteration = 131_072;
    private const int BackgroundFlows = 500_000;
    private const int FirstNewFlow = 1_048_576; // flows 2^20 .. 2^20 + 2^17: ports no background flow uses
    private const int Stride = 64; // 54-byte SYN frames
    private const long NowMs = 10_000;
    private const int PrefetchDistance = 8;

    private ForwardingEngine _engine = null!;
    private byte[] _pristine = null!;
    private byte[] _frames = null!;
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly FlowHint[] _hints = new FlowHint[PrefetchDistance]; // a ring, as the worker's batch holds them
    private int _frameLength;
    private long _notForwarded;

    /// <summary>The table backed by transparent huge pages, as udr run backs it (<see cref="EstablishedFlowBenchmark.HugePages"/>).</summary>
    [Params(false, true)]
    public bool HugePages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _engine = BenchEnvironment.CreateEngine(EstablishedFlowBenchmark.TableCapacity, servers: 10, scheduler: "rr");
        if (HugePages)
        {
            BenchEnvironment.BackWithHugePages(_engine);
        }
        BenchEnvironment.Establish(_engine, 0, BackgroundFlows, nowMs: 1_000);
        _pristine = new byte[NewPerIteration * Stride];
        _frames = new byte[NewPerIteration * Stride];
        for (int i = 0; i < NewPerIteration; i++)
        {
            int flow = FirstNewFlow + i;
            _frameLength = BenchFrames.WriteTcp(_pristine.AsSpan(i * Stride, Stride), BenchEnvironment.ClientAddress(flow),
                BenchEnvironment.ClientPort(flow), BenchEnvironment.Vip, BenchEnvironment.VirtualPort, TcpFlags.Syn, 0);
        }
    }

    [IterationSetup]
    public void RemoveNewFlows()
    {
        if (_notForwarded != 0)
        {
            throw new InvalidOperationException($"{_notForwarded} SYNs were not forwarded: the measurement is invalid.");
        }
        ConnectionTable<uint> table = _engine.Connections;
        for (int i = 0; i < NewPerIteration; i++)
        {
            int slot = table.Find(BenchEnvironment.Key(FirstNewFlow + i));
            if (slot >= 0)
            {
                table.Remove(slot);
            }
        }
        if (table.Count != BackgroundFlows)
        {
            throw new InvalidOperationException($"Setup: {table.Count} connections, expected {BackgroundFlows}.");
        }
        _pristine.AsSpan().CopyTo(_frames);
    }

    [Benchmark(OperationsPerInvoke = NewPerIteration)]
    public void NewConnection()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int length = _frameLength;
        long notForwarded = 0;
        for (int i = 0; i < NewPerIteration; i++)
        {
            Verdict verdict = engine.Process(frames.AsSpan(i * Stride, length), FrameFlags.None, NowMs, reply, out _);
            notForwarded += verdict == Verdict.Transmit ? 0 : 1;
        }
        _notForwarded += notForwarded;
    }

    /// <summary>
    /// As <see cref="NewConnection"/>, as a batch loop would run it: <see cref="ForwardingEngine.Prefetch"/> for the
    /// SYN <see cref="PrefetchDistance"/> places ahead before each one (the prefetch is part of the measured cost).
    /// </summary>
    [Benchmark(OperationsPerInvoke = NewPerIteration)]
    public void NewConnectionPrefetched()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int length = _frameLength;
        long notForwarded = 0;
        FlowHint[] hints = _hints;
        for (int i = 0; i < PrefetchDistance; i++)
        {
            hints[i] = engine.Prefetch(frames.AsSpan(i * Stride, length));
        }
        for (int i = 0; i < NewPerIteration; i++)
        {
            // Frame i's hint was taken PrefetchDistance frames ago, in the slot frame i + PrefetchDistance takes now.
            var packet = new FrameBuffer(frames, i * Stride, length);
            packet.Hint = hints[i & (PrefetchDistance - 1)]; // as the workers hand it over (see FrameBuffer's constructor)
            hints[i & (PrefetchDistance - 1)] = i + PrefetchDistance < NewPerIteration
                ? engine.Prefetch(frames.AsSpan((i + PrefetchDistance) * Stride, length))
                : default;
            Verdict verdict = engine.Process(ref packet, NowMs, reply, out _);
            notForwarded += verdict == Verdict.Transmit ? 0 : 1;
        }
        _notForwarded += notForwarded;
    }
}
