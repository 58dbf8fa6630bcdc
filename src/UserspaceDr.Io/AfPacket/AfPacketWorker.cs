using System.Diagnostics;
using System.Numerics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// The fast path: one TPACKET_V2 ring per served link, each in that link's PACKET_FANOUT group (AF_PACKET groups are
/// per device; worker i joins every group i-th, so the steering program's index i is this worker on every link), and
/// one sendmmsg batch for all links. Frames are rewritten in place in the ring and sent straight from it.
/// Both sockets carry a virtio_net_hdr, so GSO super-frames and partial checksums are passed back to the kernel,
/// which segments and finishes them on the way out (DESIGN §3): nothing oversize or half-summed is ever emitted.
/// </summary>
/// <remarks>
/// <para>Transmit: one socket that is bound to no interface; each message names its interface in a sockaddr_ll
/// (msg_name). One sendmmsg then carries a batch whatever links its frames leave by (NAT: requests leave by the
/// servers' link, replies by the clients'), where a socket per link would need one syscall per link per batch and
/// would split the batch's order. QDISC_BYPASS and the vnet header are socket options, so they hold for every link.</para>
/// <para>Headroom: the ring reserves room before each frame (PACKET_RESERVE); the engine gets the frame as a
/// <see cref="FrameBuffer"/> whose buffer starts virtio_net_hdr-size bytes after the first free byte, so that after
/// an encapsulation moved the frame into the headroom the header still fits right before it.</para>
/// </remarks>
public sealed unsafe class AfPacketWorker : IFrameWorker
{
    private const int VnetSize = VirtioNetHeader.Size;
    private const int ReplySlot = VnetSize + ReplyBuilder.MaxReplyLength;
    /// <summary>
    /// Segments of one cut super-frame: 64 KiB at an MSS of 536 is 123. Each may produce a trailing fragment, so
    /// there are as many overflow slots: a cut frame never makes <see cref="Forward"/> flush half-way through it,
    /// which would recycle segment slots that are still queued.
    /// </summary>
    private const int SegmentSlots = 128;
    private const int OverflowSlots = SegmentSlots;

    /// <summary>Frames collected from the ring before processing, so that lookups can be prefetched ahead.</summary>
    private const int PrefetchBatch = 128;

    /// <summary>How long the worker waits after a turn of few frames while it is busy (--coalesce-usecs).</summary>
    private readonly CoalescingTuner _coalescing;
    private readonly BusyPoll _busyPoll;

    /// <summary>Each link's RX ring: 16 MiB in 1 MiB blocks (the kernel allocates a block as one page run).</summary>
    private const int RingBytes = 16 << 20;
    private const int RingBlockBytes = 1 << 20;

    /// <summary>A copied oversized frame: headroom, a re-inserted tag, the virtio_net_hdr and a 64 KiB super-frame.</summary>
    private const int CopyBufferBytes = 1024 + 4 + VnetSize + (68 << 10);

    private readonly int _index;
    private readonly ILogger _log;
    private readonly EngineHost _host;
    private readonly PacketRxRing[] _rings;
    private readonly int[] _interfaceIndexes;
    private readonly PacketTxBatch _tx;
    private readonly byte[] _replies; // pinned: replies must stay put until the batch is flushed
    private readonly byte[] _overflow; // pinned: trailing fragments of encapsulated packets, one slot each
    private readonly int _overflowSlotSize;
    private readonly byte[] _segments; // pinned: software-segmented GSO frames (tunnel servers), with headroom
    private readonly int _segmentSlotSize;
    private readonly byte[] _copy; // pinned: the one oversized frame (PACKET_COPY_THRESH) being forwarded
    private readonly byte* _copyBase;
    private readonly byte* _replyBase;
    private readonly byte* _overflowBase;
    private readonly byte* _segmentBase;
    private readonly FlowHint[] _hints = new FlowHint[PrefetchBatch]; // what Prefetch read of each frame of the batch
    private readonly Lock _ringStatisticsLock = new();
    private long _ringDrops;
    private long _segmentationFailures;
    private int _repliesUsed;
    private int _overflowUsed;
    private int _segmentsUsed;
    private Thread? _thread;
    private int? _cpu; // --cpus: the CPU the thread runs on
    private volatile bool _stopping;

    /// <param name="links">The served interfaces, by link index (the engine's <see cref="EngineOptions.Links"/> order).</param>
    /// <param name="fanouts">The fanout group of each link (same order), or null for a lone worker.</param>
    public AfPacketWorker(int index, IReadOnlyList<LinkInfo> links, DataPlaneState state, EngineOptions options, int maxConnections,
        IReadOnlyList<FanoutOptions>? fanouts, TrafficSelection traffic, ILogger log, int coalesceMicroseconds = 0, int busyPollMicroseconds = 0)
    {
        _busyPoll = new BusyPoll(busyPollMicroseconds);
        _coalescing = new CoalescingTuner(coalesceMicroseconds, Stopwatch.GetTimestamp, Stopwatch.Frequency, Linux.Interop.ThreadCpuNanoseconds);
        ArgumentNullException.ThrowIfNull(links);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(traffic);
        if (links.Count is 0 or > PacketRxRing.MaxPolledRings || (fanouts is not null && fanouts.Count != links.Count))
        {
            throw new ArgumentException("one ring (and one fanout group) per link, 1 to 64 links", nameof(links));
        }
        _index = index;
        _log = log;
        // Expiry on a clock, not per loop: with a V2 ring the loop turns per frame at low load.
        _host = new EngineHost(state, options, maxConnections, ExpiryPolicy.Live);
        int largestMtu = links.Max(l => l.Mtu);
        _rings = new PacketRxRing[links.Count];
        _interfaceIndexes = new int[links.Count];
        ClassicBpfProgram filter = traffic.SocketFilter();
        try
        {
            for (int i = 0; i < links.Count; i++)
            {
                // TPACKET_V2: every frame is handed over (and wakes the worker) as soon as the kernel has written it; a
                // V3 block waits for its retire timer at low load, which cost each forwarded frame milliseconds.
                // Slots sized for the link's MTU, not for a 64 KiB super-frame: 16 MiB hold 8,192 frames at MTU 1500
                // (164 ms at 50,000 frames/s) instead of 240; the rare larger frame (GSO) comes whole through the
                // socket queue (PACKET_COPY_THRESH).
                _rings[i] = new PacketRxRing(new PacketRxRingOptions(links[i].Name)
                {
                    Version = RingVersion.V2,
                    FrameSize = SlotSizeFor(largestMtu),
                    BlockSize = RingBlockBytes,
                    BlockCount = RingBytes / RingBlockBytes,
                    CopyOversizedFrames = true,
                    VirtioNetHeader = true,
                    // The engine needs RecommendedHeadroom before the frame, plus the vnet header before that, plus
                    // a re-inserted VLAN tag: the default reserve (64) leaves 78 bytes (PacketRxRingOptions).
                    MinimumHeadroom = Math.Max(64, FrameBuffer.RecommendedHeadroom + VnetSize + 4),
                    Fanout = fanouts?[i],
                    Filter = filter,
                });
                _interfaceIndexes[i] = _rings[i].InterfaceIndex;
            }
            _tx = new PacketTxBatch(new PacketTxBatchOptions(null) { VirtioNetHeader = true, Capacity = 256 });
        }
        catch
        {
            foreach (PacketRxRing? ring in _rings)
            {
                ring?.Dispose();
            }
            throw;
        }
        _replies = GC.AllocateArray<byte>(_tx.Capacity * ReplySlot, pinned: true);
        // An overflow frame is the trailing fragment of an outer packet: at most a path MTU plus link header and tag.
        _overflowSlotSize = AlignUp(VnetSize + largestMtu + 64, 64);
        _overflow = GC.AllocateArray<byte>(OverflowSlots * _overflowSlotSize, pinned: true);
        _segmentSlotSize = AlignUp(VnetSize + FrameBuffer.RecommendedHeadroom + largestMtu + 64, 64);
        _segments = GC.AllocateArray<byte>(SegmentSlots * _segmentSlotSize, pinned: true);
        _replyBase = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_replies, 0);
        _copy = GC.AllocateArray<byte>(CopyBufferBytes, pinned: true);
        _copyBase = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_copy, 0);
        _overflowBase = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_overflow, 0);
        _segmentBase = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_segments, 0);
    }

    private static int AlignUp(int value, int alignment) => (value + alignment - 1) / alignment * alignment;

    public WorkerCounters Counters => _host.Counters;
    public long TransmitErrors => _tx.Errors + Interlocked.Read(ref _segmentationFailures);
    public int LastTransmitErrno => _tx.LastErrno;
    public int Connections => _host.Connections;
    public int ConnectionCapacity => _host.ConnectionCapacity;
    public int CoalesceWaitMicroseconds => _coalescing.WaitMicroseconds; // a plain read: only this worker changes it

    public (long Frames, long Slept) BusyPollTurns => (_busyPoll.Hits, _busyPoll.Misses); // plain reads, as above

    /// <summary>The interface index of each link (what a frame's sockaddr_ll names).</summary>
    public IReadOnlyList<int> InterfaceIndexes => _interfaceIndexes;

    public long RingDrops
    {
        get
        {
            // PACKET_STATISTICS resets on read; any thread may ask, so the reads add up under a lock.
            lock (_ringStatisticsLock)
            {
                foreach (PacketRxRing ring in _rings)
                {
                    try
                    {
                        _ringDrops += ring.ReadAndResetStatistics().Drops;
                    }
                    catch (Exception e) when (e is System.ComponentModel.Win32Exception or ObjectDisposedException)
                    {
                        // The socket is closing; the total so far stands.
                    }
                }
                return _ringDrops;
            }
        }
    }

    public ConnectionSnapshotSlot Snapshots => _host.Snapshots;

    public SyncInbox SyncInbox => _host.SyncInbox;

    public Core.Connections.SyncOutbox SyncOutbox => _host.Engine.SyncOutbox;

    public void Start(int? cpu = null)
    {
        _cpu = cpu;
        _thread = new Thread(Run) { IsBackground = true, Name = $"udr-worker-{_index}" };
        _thread.Start();
    }

    public void UpdateTraffic(TrafficSelection traffic)
    {
        ArgumentNullException.ThrowIfNull(traffic);
        ClassicBpfProgram filter = traffic.SocketFilter();
        foreach (PacketRxRing ring in _rings)
        {
            ring.ReplaceFilter(filter);
        }
    }

    /// <summary>Replaces the steering program of every link's fanout group (one member's call changes the group's).</summary>
    public void ReplaceFanoutProgram(ClassicBpfProgram program)
    {
        foreach (PacketRxRing ring in _rings)
        {
            ring.ReplaceFanoutProgram(program);
        }
    }

    private void Run()
    {
        WorkerPinning.PinCurrentThread(_cpu, _log);
        if (_coalescing.Enabled)
        {
            // A coalescing wait of 12 µs must not become 62 (the default slack is 50 µs).
            _ = Linux.Interop.SetTimerSlackNanoseconds(1000);
        }
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
            _host.Stop(); // nothing will answer a -L -c request from here on
            Log.BusyPolled(_log, _busyPoll);
        }
    }

    private void Loop()
    {
        EngineHost host = _host;
        PacketRxRing[] rings = _rings;
        RxFrame* batch = stackalloc RxFrame[PrefetchBatch];
        CoalescingTuner coalescing = _coalescing;
        BusyPoll busyPoll = _busyPoll;
        while (!_stopping)
        {
            long now = Environment.TickCount64;
            int turnFrames = 0;
            bool any = false;
            for (int link = 0; link < rings.Length; link++)
            {
                PacketRxRing ring = rings[link];
                if (!ring.TryHoldBatch())
                {
                    continue;
                }
                any = true;
                host.BeginBatch();
                int count = 0;
                turnFrames += ring.CurrentBlockFrameCount;
                foreach (RxFrame frame in ring.CurrentBlockFrames)
                {
                    batch[count++] = frame;
                    if (count == PrefetchBatch)
                    {
                        ForwardFrames(batch, count, (byte)link, now);
                        count = 0;
                    }
                }
                ForwardFrames(batch, count, (byte)link, now);
                if (_tx.Count > 0)
                {
                    FlushAndRecycle(); // before the release: the batch points into the ring
                }
                ring.ReleaseBlock();
            }
            int wait = coalescing.AfterTurn(turnFrames, now);
            if (any)
            {
                busyPoll.FramesSeen();
            }
            else if (!busyPoll.SpinForFrames(rings, AnyRingHasFrames))
            {
                PacketRxRing.PollAny(rings, 100);
            }
            else if (wait > 0)
            {
                _ = Linux.Interop.SleepMicroseconds(wait); // cut short by a signal: the next turn comes sooner
            }
            host.Housekeeping(now);
        }
    }

    private static readonly Func<PacketRxRing[], bool> AnyRingHasFrames = rings =>
    {
        foreach (PacketRxRing ring in rings)
        {
            if (ring.HasFrames)
            {
                return true;
            }
        }
        return false;
    };

    private void FlushAndRecycle()
    {
        _tx.Flush();
        _repliesUsed = 0;
        _overflowUsed = 0;
        _segmentsUsed = 0;
    }

    private void ForwardFrames(RxFrame* frames, int count, byte link, long now)
    {
        EngineHost engine = _host;
        FlowHint[] hints = _hints;
        for (int i = 0; i < Math.Min(EngineHost.PrefetchDistance, count); i++)
        {
            hints[i] = engine.Prefetch(frames[i].Bytes);
        }
        for (int i = 0; i < count; i++)
        {
            if (i + EngineHost.PrefetchDistance < count)
            {
                hints[i + EngineHost.PrefetchDistance] = engine.Prefetch(frames[i + EngineHost.PrefetchDistance].Bytes);
            }
            RxFrame frame = frames[i];
            FlowHint hint = hints[i];
            bool copied = false;
            if (frame.IsTruncated)
            {
                // Larger than its slot: the whole frame is queued on the socket, else (no room for the copy) it is lost.
                if (_rings[link].ReceiveCopy(frame, _copyBase, CopyBufferBytes, _rings[link].Options.MinimumHeadroom) is not { } whole)
                {
                    engine.Counters.Count(FrameReason.TruncatedInRing); // a cut frame must never go out
                    continue;
                }
                frame = whole;
                copied = true;
            }
            VirtioNetHeader vnet = frame.VirtioNetHeader != null ? *frame.VirtioNetHeader : default;
            if (OffloadPolicy.CutBeforeEngine(vnet.IsGso, hint))
            {
                SegmentAndForward(frame, vnet.GsoSize, link, now);
            }
            else
            {
                Forward(frame.Mac - frame.Headroom, frame.Headroom, frame.Length, OffloadPolicy.ReceiveFlags(vnet), link, vnet, hint, now);
            }
            if (copied && _tx.Count > 0)
            {
                FlushAndRecycle(); // the next copied frame reuses the buffer this one is sent from
            }
        }
    }

    /// <summary>A V2 slot for frames up to <paramref name="mtu"/> (with tag, headers and headroom), a power of two.</summary>
    internal static int SlotSizeFor(int mtu) => (int)BitOperations.RoundUpToPowerOf2((uint)(mtu + 512));

    /// <summary>
    /// Runs one frame through the engine and queues what comes out. <paramref name="buffer"/> starts right after the
    /// room a virtio_net_hdr needs; the frame is at <paramref name="headroom"/> in it.
    /// </summary>
    private void Forward(byte* buffer, int headroom, int length, FrameFlags flags, byte link, VirtioNetHeader vnet, FlowHint hint, long now)
    {
        if (_tx.Count > _tx.Capacity - 2 || _overflowUsed == OverflowSlots)
        {
            FlushAndRecycle(); // room for the frame and a trailing fragment, or a reply
        }
        var sink = new RingSink(this, buffer, headroom, vnet, _replyBase + (_repliesUsed * ReplySlot), _overflowBase + (_overflowUsed * _overflowSlotSize));
        var packet = new FrameBuffer(new Span<byte>(buffer, headroom + length), headroom, length, flags, link,
            new Span<byte>(sink.OverflowSlot + VnetSize, _overflowSlotSize - VnetSize));
        packet.Hint = hint; // a statement of its own: see the constructor
        _host.Forward(ref packet, now, new Span<byte>(sink.ReplySlot + VnetSize, ReplyBuilder.MaxReplyLength), ref sink);
    }

    /// <summary>
    /// Queues what the engine made of one frame in the sendmmsg batch, each message starting with its virtio_net_hdr:
    /// the frame where it lies in the ring (it may have grown into the headroom), a trailing fragment from an overflow
    /// slot, a reply from a reply slot.
    /// </summary>
    private readonly struct RingSink(AfPacketWorker worker, byte* buffer, int headroom, VirtioNetHeader received, byte* replySlot, byte* overflowSlot)
        : IFrameSink
    {
        public byte* ReplySlot => replySlot;

        public byte* OverflowSlot => overflowSlot;

        public void Transmit(ref FrameBuffer packet)
        {
            byte* start = buffer + packet.Offset;
            int growth = headroom - packet.Offset; // bytes the engine put in front (an outer IPv4 header)
            *(VirtioNetHeader*)(start - VnetSize) = OffloadPolicy.TransmitHeader(received, packet.Flags, growth);
            int interfaceIndex = worker._interfaceIndexes[packet.Link];
            worker._tx.Add(start - VnetSize, packet.Length + VnetSize, interfaceIndex);
            if (packet.OverflowLength > 0)
            {
                *(VirtioNetHeader*)overflowSlot = default; // a plain frame with finished checksums
                worker._tx.Add(overflowSlot, packet.OverflowLength + VnetSize, interfaceIndex);
                worker._overflowUsed++;
            }
        }

        public void Reply(ReadOnlySpan<byte> reply, byte link)
        {
            new Span<byte>(replySlot, VnetSize).Clear(); // no GSO, checksums complete
            worker._tx.Add(replySlot, VnetSize + reply.Length, worker._interfaceIndexes[link]);
            worker._repliesUsed++;
        }
    }

    /// <summary>
    /// Cuts a TCP GSO super-frame into the segments its sender meant (gso_size, within the ingress link's MTU; each with
    /// headroom, full checksums) and forwards each one. A frame that cannot be cut (UDP GSO, not TCP) is counted as a
    /// transmit error.
    /// </summary>
    private void SegmentAndForward(RxFrame frame, ushort segmentSize, byte link, long now)
    {
        ReadOnlySpan<byte> bytes = frame.Bytes;
        int segments = OffloadPolicy.TunnelSegmentCount(bytes, _host.Engine.Links[link].Mtu, segmentSize, _host.Engine.Snapshot, out int payloadPerSegment);
        int room = _segmentSlotSize - VnetSize - FrameBuffer.RecommendedHeadroom;
        if (segments is 0 or > SegmentSlots)
        {
            Interlocked.Increment(ref _segmentationFailures);
            return;
        }
        if (_segmentsUsed + segments > SegmentSlots || _overflowUsed + segments > OverflowSlots || _tx.Count + (2 * segments) > _tx.Capacity)
        {
            FlushAndRecycle();
        }
        for (int i = 0; i < segments; i++)
        {
            byte* slot = _segmentBase + (_segmentsUsed * _segmentSlotSize);
            _segmentsUsed++;
            byte* buffer = slot + VnetSize;
            int length = TcpSegmentation.WriteSegment(bytes, i, payloadPerSegment,
                new Span<byte>(buffer + FrameBuffer.RecommendedHeadroom, room));
            if (length == 0)
            {
                Interlocked.Increment(ref _segmentationFailures);
                return;
            }
            Forward(buffer, FrameBuffer.RecommendedHeadroom, length, FrameFlags.None, link, default, default, now);
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        _host.Clear();
        foreach (PacketRxRing ring in _rings)
        {
            ring.Dispose();
        }
        _tx.Dispose();
    }
}
