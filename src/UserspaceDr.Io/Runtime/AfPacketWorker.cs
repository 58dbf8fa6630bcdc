using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// The fast path: a TPACKET_V2 ring in a PACKET_FANOUT group (flow hash: a flow always lands on the same worker) and
/// a sendmmsg batch. Frames are rewritten in place in the ring and sent straight from it; one sendmmsg per batch.
/// Both sockets carry a virtio_net_hdr, so GSO super-frames and partial checksums are passed back to the kernel,
/// which segments and finishes them on the way out (DESIGN §3): nothing oversize or half-summed is ever emitted.
/// </summary>
public sealed unsafe class AfPacketWorker : IFrameWorker
{
    private readonly int _index;
    private readonly DataPlaneState _state;
    private readonly ILogger _log;
    private readonly ForwardingEngine _engine;
    private readonly PacketRxRing _rx;
    private readonly PacketTxBatch _tx;
    private readonly byte[] _replies; // pinned: replies must stay put until the batch is flushed
    private readonly int _expiryBudget;
    private readonly ConnectionSnapshotSlot _snapshots = new();
    private readonly Lock _ringStatisticsLock = new();
    private long _ringDrops;
    private Thread? _thread;
    private volatile bool _stopping;

    public AfPacketWorker(int index, string interfaceName, DataPlaneState state, EngineOptions options, int maxConnections,
        FanoutOptions? fanout, IReadOnlyCollection<uint> virtualAddresses, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(state);
        _index = index;
        _state = state;
        _log = log;
        var table = new ConnectionTable(maxConnections);
        _engine = new ForwardingEngine(options, table);
        // A full sweep of the table about every two seconds: one twentieth every ExpiryIntervalMs, however often the
        // loop turns (with a V2 ring it turns per frame at low load; a sweep step reads megabytes of the table).
        _expiryBudget = Math.Max(1024, table.SlotCount / 20);
        // TPACKET_V2: every frame is handed over (and wakes the worker) as soon as the kernel has written it; a V3
        // block waits for its retire timer at low load, which cost each forwarded frame milliseconds (AfPacket/README.md).
        _rx = new PacketRxRing(new PacketRxRingOptions(interfaceName)
        {
            Version = RingVersion.V2,
            VirtioNetHeader = true,
            Fanout = fanout,
            Filter = ServiceTrafficFilter.Build(virtualAddresses, []),
        });
        try
        {
            _tx = new PacketTxBatch(new PacketTxBatchOptions(interfaceName) { VirtioNetHeader = true, Capacity = 256 });
        }
        catch
        {
            _rx.Dispose();
            throw;
        }
        _replies = GC.AllocateArray<byte>(_tx.Capacity * ReplySlot, pinned: true);
    }

    private const int ReplySlot = VirtioNetHeader.Size + ReplyBuilder.MaxReplyLength;
    private const int ExpiryIntervalMs = 100;

    public WorkerCounters Counters => _engine.Counters;
    public long TransmitErrors => _tx.Errors;
    public int LastTransmitErrno => _tx.LastErrno;
    public int Connections => _engine.Connections.Count;
    public int ConnectionCapacity => _engine.Connections.Capacity;

    public long RingDrops
    {
        get
        {
            // PACKET_STATISTICS resets on read; any thread may ask, so the reads add up under a lock.
            lock (_ringStatisticsLock)
            {
                try
                {
                    _ringDrops += _rx.ReadAndResetStatistics().Drops;
                }
                catch (System.ComponentModel.Win32Exception)
                {
                    // The socket is closing; the total so far stands.
                }
                return _ringDrops;
            }
        }
    }
    public ConnectionSnapshotSlot Snapshots => _snapshots;

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = $"udr-worker-{_index}" };
        _thread.Start();
    }

    public void UpdateVirtualAddresses(IReadOnlyCollection<uint> virtualAddresses) =>
        _rx.ReplaceFilter(ServiceTrafficFilter.Build(virtualAddresses, []));

    private void Run()
    {
        try
        {
            Loop();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            Log.WorkerFailed(_log, _index, e.Message);
        }
        finally
        {
            _snapshots.Close(); // nothing will answer a -L -c request from here on
        }
    }

    private void Loop()
    {
        ForwardingEngine engine = _engine;
        PacketTxBatch tx = _tx;
        long nextExpiry = 0;
        RxFrame* batch = stackalloc RxFrame[PrefetchBatch];
        fixed (byte* replies = _replies)
        {
            while (!_stopping)
            {
                long now = Environment.TickCount64;
                if (_rx.WaitForBlock(100))
                {
                    _state.ApplyTo(engine);
                    int replySlot = 0;
                    int count = 0;
                    foreach (RxFrame frame in _rx.CurrentBlockFrames)
                    {
                        batch[count++] = frame;
                        if (count == PrefetchBatch)
                        {
                            ForwardFrames(batch, count, now, replies, ref replySlot);
                            count = 0;
                        }
                    }
                    ForwardFrames(batch, count, now, replies, ref replySlot);
                    if (tx.Count > 0)
                    {
                        tx.Flush();
                    }
                    _rx.ReleaseBlock();
                }
                if (now >= nextExpiry)
                {
                    engine.ExpireConnections(now, _expiryBudget);
                    nextExpiry = now + ExpiryIntervalMs;
                }
                _snapshots.Serve(engine.Connections); // ipvsadm -L -c: copied between batches, never per frame
            }
        }
    }

    /// <summary>Frames collected from the ring before processing, so that lookups can be prefetched ahead.</summary>
    private const int PrefetchBatch = 128;

    /// <summary>
    /// How far ahead the connection-table slot of a later frame is prefetched: with a million flows each lookup is
    /// a cold miss (~250 ns on the bench machine), and issuing it 8 frames early overlaps the misses
    /// (bench/README.md: 426 → 198 ns per established frame).
    /// </summary>
    private const int PrefetchDistance = 8;

    private void ForwardFrames(RxFrame* frames, int count, long now, byte* replies, ref int replySlot)
    {
        ForwardingEngine engine = _engine;
        PacketTxBatch tx = _tx;
        for (int i = 0; i < Math.Min(PrefetchDistance, count); i++)
        {
            engine.Prefetch(frames[i].Bytes);
        }
        for (int i = 0; i < count; i++)
        {
            if (i + PrefetchDistance < count)
            {
                engine.Prefetch(frames[i + PrefetchDistance].Bytes);
            }
            RxFrame frame = frames[i];
            if (frame.IsTruncated)
            {
                engine.Counters.Count(FrameReason.TruncatedInRing); // a cut frame must never go out
                continue;
            }
            if (tx.Count == tx.Capacity)
            {
                tx.Flush();
            }
            if (tx.Count == 0)
            {
                replySlot = 0; // nothing queued: every reply slot is free again
            }
            byte* slot = replies + (replySlot * ReplySlot);
            Span<byte> reply = new(slot + VirtioNetHeader.Size, ReplyBuilder.MaxReplyLength);
            // With a vnet header, NEEDS_CSUM frames go back out with it and the kernel finishes the checksum;
            // the engine only has to keep the pseudo-header seed in step when NAT rewrites addresses.
            FrameFlags flags = frame.VirtioNetHeader != null && frame.VirtioNetHeader->NeedsChecksum
                ? FrameFlags.ChecksumPartial : FrameFlags.None;
            Verdict verdict = engine.Process(frame.Bytes, flags, now, reply, out int replyLength);
            if (verdict == Verdict.Transmit)
            {
                tx.Add(frame.TransmitStart, frame.TransmitLength);
            }
            else if (verdict == Verdict.Reply)
            {
                new Span<byte>(slot, VirtioNetHeader.Size).Clear(); // no GSO, checksums complete
                tx.Add(slot, VirtioNetHeader.Size + replyLength);
                replySlot++;
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        _engine.Connections.Clear();
        _rx.Dispose();
        _tx.Dispose();
    }
}
