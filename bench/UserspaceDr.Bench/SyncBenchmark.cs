using BenchmarkDotNet.Attributes;
using UserspaceDr.ControlPlane.Sync;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Bench;

/// <summary>
/// What connection sync costs a master. <see cref="EstablishedFrame"/>: a worker's frame of an established flow (256
/// flows, cached) with the sync master off and on (on: a packet count per frame, a post to the outbox on the 3rd and
/// every 50th packet of each flow; the outbox drained as the sender would, every 256 frames). <see cref="SenderEntry"/>:
/// the sender's work per synced connection (the entry made from what a worker posted and packed into a message).
/// At 10,000 new connections per second a DR connection is synced about twice (ESTABLISHED, then FIN_WAIT), so the
/// master's cost is about 20,000 × SenderEntry plus every client packet's share of EstablishedFrame's difference.
/// </summary>
[MemoryDiagnoser]
public class SyncBenchmark
{
    private const int Flows = 256;
    private const int Stride = 128;
    private const long NowMs = 10_000;

    private ForwardingEngine _engine = null!;
    private byte[] _frames = null!;
    private byte[] _checksums = null!;
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly List<SyncedConnection> _drained = new(SyncOutbox.Capacity);
    private SyncedConnection[] _posted = null!;
    private SyncMessageWriter _writer = null!;
    private int _frameLength;

    [Params(false, true)]
    public bool Master { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _engine = BenchEnvironment.CreateEngine(EstablishedFlowBenchmark.TableCapacity, servers: 10, serversAtLocalMac: true);
        BenchEnvironment.Establish(_engine, 0, Flows, nowMs: 1_000);
        _engine.SyncOutbox.Enabled = Master;
        _frames = new byte[Flows * Stride];
        _checksums = new byte[Flows * 2];
        for (int i = 0; i < Flows; i++)
        {
            _frameLength = BenchFrames.WriteTcp(_frames.AsSpan(i * Stride, Stride), BenchEnvironment.ClientAddress(i), BenchEnvironment.ClientPort(i),
                BenchEnvironment.Vip, BenchEnvironment.VirtualPort, TcpFlags.Ack | TcpFlags.Psh, 64, ttl: 255);
            _frames.AsSpan((i * Stride) + BenchFrames.IpChecksumOffset, 2).CopyTo(_checksums.AsSpan(i * 2));
        }
        _posted = [.. Enumerable.Range(0, 1024).Select(i => new SyncedConnection(IpProtocol.Tcp, false, false, 1,
            InetAddress.FromIPv4(BenchEnvironment.ClientAddress(i)), BenchEnvironment.ClientPort(i), InetAddress.FromIPv4(BenchEnvironment.Vip), BenchEnvironment.VirtualPort,
            InetAddress.FromIPv4(BenchEnvironment.ServerAddress(i % 10)), 80, 900) { Method = Core.Services.ForwardingMethod.Route })];
        _writer = new SyncMessageWriter(1);
    }

    [Benchmark(OperationsPerInvoke = Flows)]
    public int EstablishedFrame()
    {
        ForwardingEngine engine = _engine;
        byte[] frames = _frames;
        Span<byte> reply = _reply;
        int transmitted = 0;
        for (int i = 0; i < Flows; i++)
        {
            Verdict verdict = engine.Process(frames.AsSpan(i * Stride, _frameLength), FrameFlags.None, NowMs, reply, out _);
            transmitted += verdict == Verdict.Transmit ? 1 : 0;
        }
        // Each frame's TTL was decremented: put it (and its checksum) back so the next pass forwards again.
        for (int i = 0; i < Flows; i++)
        {
            frames[(i * Stride) + BenchFrames.IpChecksumOffset - 2] = 255;
            _checksums.AsSpan(i * 2, 2).CopyTo(frames.AsSpan((i * Stride) + BenchFrames.IpChecksumOffset, 2));
        }
        _drained.Clear();
        engine.SyncOutbox.Drain(_drained);
        return transmitted;
    }

    [Benchmark(OperationsPerInvoke = 1024)]
    public int SenderEntry()
    {
        SyncMessageWriter writer = _writer;
        int messages = 0;
        foreach (SyncedConnection connection in _posted)
        {
            SyncEntry entry = SyncMasterSender.ToEntry(connection);
            if (!writer.TryAppend(entry))
            {
                writer.Reset();
                writer.TryAppend(entry);
                messages++;
            }
        }
        return messages;
    }
}
