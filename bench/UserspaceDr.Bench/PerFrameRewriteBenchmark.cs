using BenchmarkDotNet.Attributes;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Bench;

/// <summary>
/// What one frame of an established flow costs per forwarding method's rewrite: NAT inbound (DNAT VIP:80 →
/// RIP:8080, incremental IP and TCP checksums), the NAT reply (SNAT back to VIP:80, client's hop), and IP-in-IP
/// (20 bytes into the headroom, a new outer header with its own checksum). <see cref="Flows"/> = 256 established
/// TCP flows (10 servers, rr), so the touched connection entries stay in cache and the number is the pipeline's
/// compute cost (as <see cref="EstablishedFlowBenchmark"/> with Flows = 256).
/// <para>
/// NAT and tunnelling change the frame so that it cannot be fed to the engine again (its addresses, or its place
/// in the buffer), so each operation first copies a pristine 118-byte frame (ACK+PSH, 64 bytes of payload) into a
/// working buffer behind <see cref="FrameBuffer.RecommendedHeadroom"/> bytes of headroom, then calls
/// <c>Process(ref FrameBuffer, ...)</c>. The copy is part of every measured operation; <see cref="CopyOnly"/>
/// measures it alone, to subtract. GlobalCleanup throws if any measured frame took another path than the intended one.
/// </para>
/// </summary>
[MemoryDiagnoser]
public class PerFrameRewriteBenchmark
{
    public const int Flows = 256;
    public const int FramesPerInvoke = 256;
    private const int PayloadLength = 64;
    private const int Stride = 128;
    private const long NowMs = 10_000;
    private const int Headroom = FrameBuffer.RecommendedHeadroom;

    private ForwardingEngine _nat = null!;
    private ForwardingEngine _tunnel = null!;
    private byte[] _inbound = null!;
    private byte[] _replies = null!;
    private readonly byte[] _work = new byte[Headroom + Stride];
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private int _frameLength;

    [GlobalSetup]
    public void Setup()
    {
        _nat = BenchEnvironment.CreateEngine(4096, servers: 10, method: ForwardingMethod.Masquerade);
        _tunnel = BenchEnvironment.CreateEngine(4096, servers: 10, method: ForwardingMethod.Tunnel);
        BenchEnvironment.Establish(_nat, 0, Flows, nowMs: 1_000);
        BenchEnvironment.Establish(_tunnel, 0, Flows, nowMs: 1_000);

        _inbound = new byte[Flows * Stride];
        _replies = new byte[Flows * Stride];
        for (int flow = 0; flow < Flows; flow++)
        {
            _frameLength = BenchFrames.WriteTcp(_inbound.AsSpan(flow * Stride, Stride), BenchEnvironment.ClientAddress(flow), BenchEnvironment.ClientPort(flow),
                BenchEnvironment.Vip, BenchEnvironment.VirtualPort, TcpFlags.Ack | TcpFlags.Psh, PayloadLength);
            // The reply comes from the server rr gave this flow, as the DNAT of the inbound frame shows it.
            uint server = ForwardedDestination(_nat, _inbound.AsSpan(flow * Stride, _frameLength), FrameReason.Forwarded);
            BenchFrames.WriteTcp(_replies.AsSpan(flow * Stride, Stride), server, BenchEnvironment.NatServerPort,
                BenchEnvironment.ClientAddress(flow), BenchEnvironment.ClientPort(flow), TcpFlags.Ack | TcpFlags.Psh, PayloadLength);
            ForwardedDestination(_nat, _replies.AsSpan(flow * Stride, _frameLength), FrameReason.ForwardedReply);
            ForwardedDestination(_tunnel, _inbound.AsSpan(flow * Stride, _frameLength), FrameReason.Forwarded);
        }
    }

    /// <summary>Runs one frame (copied) through <paramref name="engine"/>, requires <paramref name="expected"/>, returns the IPv4 destination sent to.</summary>
    private uint ForwardedDestination(ForwardingEngine engine, ReadOnlySpan<byte> frame, FrameReason expected)
    {
        frame.CopyTo(_work.AsSpan(Headroom));
        var packet = new FrameBuffer(_work, Headroom, frame.Length);
        FrameReason reason = engine.ProcessWithReason(ref packet, NowMs, _reply, out _);
        if (reason != expected)
        {
            throw new InvalidOperationException($"Setup: a measured frame gave {reason}, not {expected}.");
        }
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(packet.Frame[(BenchFrames.IpOffset + 16)..]);
    }

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int NatInbound() => Run(_nat, _inbound);

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int NatReply() => Run(_nat, _replies);

    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int TunnelEncapsulate() => Run(_tunnel, _inbound);

    /// <summary>Only the per-operation copy of the pristine frame into the working buffer (included in the three above).</summary>
    [Benchmark(OperationsPerInvoke = FramesPerInvoke)]
    public int CopyOnly()
    {
        byte[] frames = _inbound;
        Span<byte> work = _work.AsSpan(Headroom);
        int length = _frameLength;
        int sum = 0;
        for (int i = 0; i < FramesPerInvoke; i++)
        {
            frames.AsSpan(i * Stride, length).CopyTo(work);
            sum += work[BenchFrames.TtlOffset];
        }
        return sum;
    }

    private int Run(ForwardingEngine engine, byte[] frames)
    {
        Span<byte> work = _work;
        Span<byte> reply = _reply;
        int length = _frameLength;
        int transmitted = 0;
        for (int i = 0; i < FramesPerInvoke; i++)
        {
            frames.AsSpan(i * Stride, length).CopyTo(work[Headroom..]);
            var packet = new FrameBuffer(work, Headroom, length);
            transmitted += engine.Process(ref packet, NowMs, reply, out _) == Verdict.Transmit ? 1 : 0;
        }
        return transmitted;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (ForwardingEngine engine in new[] { _nat, _tunnel })
        {
            long other = engine.Counters.Total(Verdict.Reply) + engine.Counters.Total(Verdict.Pass) + engine.Counters.Total(Verdict.Drop) +
                engine.Counters[FrameReason.ForwardedAsFragments];
            if (other != 0)
            {
                throw new InvalidOperationException($"{other} measured frames were not forwarded as one frame: the measurement is invalid.");
            }
        }
    }
}
