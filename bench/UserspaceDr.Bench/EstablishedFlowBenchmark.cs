using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Bench;

/// <summary>
/// The per-frame pipeline for an established DR TCP flow, with 1,000,000 tracked connections in a table of capacity
/// 1,100,000 (2^21 slots of 56 bytes: 112 MiB). The measured frames are ACKs with 64 bytes of payload, one per
/// flow, for <see cref="Flows"/> distinct established flows spread over the whole table, processed in order and
/// cycled, <see cref="FramesPerInvoke"/> frames per invocation: the result is ns per frame.
/// <para>
/// Flows = 256 keeps the touched connection entries in L1/L2 (the pipeline's compute cost); Flows = 1,000,000
/// visits every tracked connection once per pass, so each lookup lands on a cold slot of the 112 MiB table, as
/// on a balancer carrying a million active flows (the frames themselves stream sequentially through 122 MiB).
/// </para>
/// <para>
/// The engine rewrites each frame in place: destination MAC := the server's neighbour entry, source MAC := ours,
/// TTL − 1 with an RFC 1624 checksum patch. To feed the same frames again without a per-frame copy, the servers'
/// neighbour entries are the balancer's own MAC (same lookup, same writes; only the value differs), so the
/// rewritten frame is still addressed to us. Frames start with TTL 255 and every 250 passes over the frame set the TTL and IP checksum of all
/// frames are put back from a saved copy, so TTL never reaches 1. That restore runs inside the measured method;
/// amortised it is below 0.01 ns per frame. Nothing else is done per frame besides <c>Process</c>.
/// </para>
/// <para>
/// Three methods: <see cref="ForwardEstablished"/> (one <c>Process</c> per frame), <see cref="ForwardEstablishedPrefetched"/>
/// (the same with <see cref="ForwardingEngine.Prefetch"/> eight frames ahead and its hint handed to processing, as a batch loop does) and
/// <see cref="LookupOnly"/> (just <see cref="ConnectionTable.Find"/> for the same flows: the memory-access part).
/// </para>
/// </summary>
[MemoryDiagnoser]
public class EstablishedFlowBenchmark
{
    public const int TrackedConnections = 1_000_000;
    public const int TableCapacity = 1_100_000;
    public const int FramesPerInvoke = 256;
    private const int PayloadLength = 64;
    private const int Stride = 128; // 118-byte frames, one per 128 bytes
    private const int PassesBetweenRestores = 250;
    private const long NowMs = 10_000;
    private const int PrefetchDistance = 8;

    private ForwardingEngine _engine = null!;
    private byte[] _frames = null!;
    private ushort[] _checksums = null!;
    private ConnectionKey<uint>[] _keys = null!;
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly FlowHint[] _hints = new FlowHint[PrefetchDistance]; // a ring, as the worker's batch holds them
    private int _frameLength;
    private int _frameCount;
    private int _cursor;
    private int _passes;

    [Params(256, TrackedConnections)]
    public int Flows { get; set; }

    /// <summary>The table backed by transparent huge pages (<see cref="Linux.Host.HugePages"/>), as udr run backs it.</summary>
    [Params(false, true)]
    public bool HugePages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _engine = BenchEnvironment.CreateEngine(TableCapacity, servers: 10, serversAtLocalMac: true);
        if (HugePages)
        {
            BenchEnvironment.BackWithHugePages(_engine);
        }
        BenchEnvironment.Establish(_engine, 0, TrackedConnections, nowMs: 1_000);
        if (_engine.Connections.Count != TrackedConnections)
        {
            throw new InvalidOperationException($"Setup: {_engine.Connections.Count} connections, expected {TrackedConnections}.");
        }

        // Flows spread evenly over the million (their table slots are random: the table hashes with a seed).
        // The frame set is a whole number of invocations: 1,000,000 flows give 999,936 frames.
        _frameCount = Flows / FramesPerInvoke * FramesPerInvoke;
        _frames = new byte[_frameCount * Stride];
        _checksums = new ushort[_frameCount];
        _keys = new ConnectionKey<uint>[_frameCount];
        int step = TrackedConnections / Flows;
        for (int i = 0; i < _frameCount; i++)
        {
            int flow = i * step;
            _frameLength = BenchFrames.WriteTcp(_frames.AsSpan(i * Stride, Stride), BenchEnvironment.ClientAddress(flow),
                BenchEnvironment.ClientPort(flow), BenchEnvironment.Vip, BenchEnvironment.VirtualPort,
                Core.Packets.TcpFlags.Ack | Core.Packets.TcpFlags.Psh, PayloadLength, ttl: 255);
            _checksums[i] = BinaryPrimitives.ReadUInt16BigEndian(_frames.AsSpan((i * Stride) + BenchFrames.IpChecksumOffset));
            _keys[i] = BenchEnvironment.Key(flow);
        }

        // Every measured frame must take the established, forwarded path.
        for (int i = 0; i < _frameCount; i++)
        {
            FrameReason reason = _engine.ProcessWithReason(_frames.AsSpan(i * Stride, _frameLength), FrameFlags.None, NowMs, _reply, out _);
            if (reason != FrameReason.Forwarded)
            {
                throw new InvalidOperationException($"Setup: measured frame {i} gave {reason}.");
            }
        }
        RestoreTtl();
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
        Advance();
        return transmitted;
    }

    /// <summary>
    /// As <see cref="ForwardEstablished"/>, as a batch loop would run it: before frame i it calls
    /// <see cref="ForwardingEngine.Prefetch"/> for frame i + <see cref="PrefetchDistance"/> (cyclically), so the
    /// table's cache misses overlap. The prefetch call is part of the measured cost.
    /// </summary>
    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int ForwardEstablishedPrefetched()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int length = _frameLength;
        int count = _frameCount;
        int start = _cursor;
        int ahead = start + PrefetchDistance;
        if (ahead >= count)
        {
            ahead -= count;
        }
        int transmitted = 0;
        FlowHint[] hints = _hints;
        for (int i = start; i < start + FramesPerInvoke; i++)
        {
            // Frame i's hint was taken PrefetchDistance frames ago, in the slot frame i + PrefetchDistance takes now.
            var packet = new FrameBuffer(frames, i * Stride, length);
            packet.Hint = hints[i & (PrefetchDistance - 1)]; // as the workers hand it over (see FrameBuffer's constructor)
            hints[ahead & (PrefetchDistance - 1)] = engine.Prefetch(frames.AsSpan(ahead * Stride, length));
            if (++ahead == count)
            {
                ahead = 0;
            }
            Verdict verdict = engine.Process(ref packet, NowMs, reply, out _);
            transmitted += verdict == Verdict.Transmit ? 1 : 0;
        }
        Advance();
        return transmitted;
    }

    /// <summary>
    /// Only the connection-table lookup for the same flows in the same order (key built from precomputed fields):
    /// how much of <see cref="ForwardEstablished"/> is the table's memory access rather than the pipeline's work.
    /// </summary>
    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int LookupOnly()
    {
        ConnectionTable<uint> table = _engine.Connections;
        ConnectionKey<uint>[] keys = _keys;
        int start = _cursor;
        int found = 0;
        for (int i = start; i < start + FramesPerInvoke; i++)
        {
            found += table.Find(keys[i]) >= 0 ? 1 : 0;
        }
        Advance();
        return found;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        long other = _engine.Counters.Total(Verdict.Reply) + _engine.Counters.Total(Verdict.Pass) + _engine.Counters.Total(Verdict.Drop);
        if (other != 0)
        {
            var reasons = new System.Text.StringBuilder();
            for (int i = 0; i < FrameReasons.Count; i++)
            {
                long n = _engine.Counters[(FrameReason)i];
                if (n != 0 && (FrameReason)i != FrameReason.Forwarded)
                {
                    reasons.Append(System.Globalization.CultureInfo.InvariantCulture, $" {(FrameReason)i}={n}");
                }
            }
            throw new InvalidOperationException($"{other} frames were not forwarded ({reasons}): the measurement is invalid.");
        }
    }

    private void Advance()
    {
        int next = _cursor + FramesPerInvoke;
        if (next >= _frameCount)
        {
            next = 0;
            if (++_passes == PassesBetweenRestores)
            {
                RestoreTtl();
            }
        }
        _cursor = next;
    }

    private void RestoreTtl()
    {
        _passes = 0;
        for (int i = 0; i < _checksums.Length; i++)
        {
            Span<byte> frame = _frames.AsSpan(i * Stride);
            frame[BenchFrames.TtlOffset] = 255;
            BinaryPrimitives.WriteUInt16BigEndian(frame[BenchFrames.IpChecksumOffset..], _checksums[i]);
        }
    }
}
