using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Xdp;

/// <summary>
/// The AF_XDP backend (<c>udr run --backend xdp</c>): udr's XDP program on each served link redirects the frames the
/// engine handles to an AF_XDP socket per receive queue (<see cref="XdpSteering"/>, <see cref="XskSocket"/>); one
/// worker reads every socket, runs the engine over each frame where it lies in the UMEM, and sends it on from the same
/// chunk when it leaves by the link it came in on (direct routing, a tunnel, NAT on one segment): no copy in user
/// space. A frame that leaves by another link (NAT across two segments), a trailing fragment and a reply are copied
/// into a chunk of the egress link's socket.
/// </summary>
/// <remarks>
/// <para>Checksums: XDP sees the frame's bytes only, not the skb's checksum state, and a veth peer's partial checksum
/// (CHECKSUM_PARTIAL: the pseudo-header sum in the field) reaches it unfinished. Frames are marked "checksum unknown",
/// as libpcap's are, and the engine finishes a checksum that holds only the pseudo-header seed. Frames from a real
/// NIC always carry complete checksums.</para>
/// <para>Size: without XDP multi-buffer a frame is one chunk, at most the link MTU (XDP strips GSO from a veth's peer
/// while the program is attached, so no super-frame arrives).</para>
/// <para>VLAN: a tag the NIC strips on receive is skb metadata, which XDP does not see (the bpf_xdp_metadata_rx_vlan_tag
/// kfunc exists for a few drivers only), so the engine's reply would leave untagged: on such links use AF_PACKET, which
/// puts the tag back. A tag left in the frame is handled as on the other backends.</para>
/// <para>One worker: a frame can only be redirected to a socket bound to the queue it arrived on, so workers would
/// follow the NIC's queues, and its RSS hash does not bring both directions of a NAT connection to one queue. One
/// worker serves every queue of every link here; several are future work (a symmetric RSS key, or a cpumap).</para>
/// </remarks>
public sealed unsafe class XdpWorker : IFrameWorker
{
    /// <summary>Frames taken off one socket's RX ring per turn.</summary>
    private const int Batch = 64;

    private readonly ILogger _log;
    private readonly EngineHost _host;
    private readonly CoalescingTuner _coalescing;
    private readonly BusyPoll _busyPoll;
    private readonly XdpSteering[] _steering;
    private readonly XskSocket[][] _sockets; // by link, by queue
    private readonly (XskSocket Socket, byte Link)[] _all;
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly byte[] _overflow;
    private readonly FlowHint[] _hints = new FlowHint[Batch]; // what Prefetch read of each frame of a batch
    private readonly Lock _statisticsLock = new();
    private Thread? _thread;
    private int? _cpu; // --cpus: the CPU the thread runs on
    private volatile bool _stopping;
    private bool _sentInPlace;
    private long _transmitErrors;

    /// <param name="coalesceMicroseconds">--coalesce-usecs: the longest wait after a turn of few frames (0: none), as for AF_PACKET.</param>
    public XdpWorker(IReadOnlyList<LinkInfo> links, DataPlaneState state, EngineOptions options, int maxConnections, TrafficSelection traffic, ILogger log,
        int coalesceMicroseconds = 0, int busyPollMicroseconds = 0)
    {
        _busyPoll = new BusyPoll(busyPollMicroseconds);
        _coalescing = new CoalescingTuner(coalesceMicroseconds, System.Diagnostics.Stopwatch.GetTimestamp, System.Diagnostics.Stopwatch.Frequency,
            Linux.Interop.ThreadCpuNanoseconds);
        ArgumentNullException.ThrowIfNull(links);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(traffic);
        ArgumentNullException.ThrowIfNull(options);
        _log = log;
        _host = new EngineHost(state, options, maxConnections, ExpiryPolicy.Live);
        _overflow = new byte[FrameBuffer.OverflowLengthFor(links.Max(l => l.Mtu))];
        _steering = new XdpSteering[links.Count];
        _sockets = new XskSocket[links.Count][];
        try
        {
            for (int link = 0; link < links.Count; link++)
            {
                _steering[link] = new XdpSteering(links[link].Index, options.AnswerArpForVirtualAddresses);
                int queues = ReceiveQueues(links[link].Name);
                _sockets[link] = new XskSocket[queues];
                XskSocketOptions geometry = Geometry(links[link].Name, links[link].Mtu, queues);
                for (int queue = 0; queue < queues; queue++)
                {
                    _sockets[link][queue] = new XskSocket(geometry with { Queue = queue });
                    _steering[link].Register(queue, _sockets[link][queue].Handle);
                }
                _steering[link].Select(traffic);
            }
        }
        catch
        {
            DisposeSockets();
            throw;
        }
        _all = [.. _sockets.SelectMany((sockets, link) => sockets.Select(s => (s, (byte)link)))];
    }

    public WorkerCounters Counters => _host.Counters;

    /// <summary>Frames not sent: the TX ring full, no free chunk for a copy.</summary>
    public long TransmitErrors => Interlocked.Read(ref _transmitErrors);

    public int LastTransmitErrno => 0;

    public int Connections => _host.Connections;

    public int ConnectionCapacity => _host.ConnectionCapacity;

    public int CoalesceWaitMicroseconds => _coalescing.WaitMicroseconds;

    public (long Frames, long Slept) BusyPollTurns => (_busyPoll.Hits, _busyPoll.Misses);

    /// <summary>Frames the kernel could not hand over: the RX ring full, the fill ring empty, other drops (XDP_STATISTICS).</summary>
    public long RingDrops
    {
        get
        {
            lock (_statisticsLock)
            {
                long drops = 0;
                foreach ((XskSocket socket, _) in _all)
                {
                    XskStatistics statistics = socket.Statistics();
                    drops += statistics.Dropped + statistics.RxRingFull + statistics.FillRingEmpty;
                }
                return drops;
            }
        }
    }

    public ConnectionSnapshotSlot Snapshots => _host.Snapshots;

    public SyncInbox SyncInbox => _host.SyncInbox;

    public Core.Connections.SyncOutbox SyncOutbox => _host.Engine.SyncOutbox;

    public void Start(int? cpu = null)
    {
        _cpu = cpu;
        _thread = new Thread(Run) { IsBackground = true, Name = "udr-xdp-worker" };
        _thread.Start();
    }

    public void UpdateTraffic(TrafficSelection traffic)
    {
        foreach (XdpSteering steering in _steering)
        {
            steering.Select(traffic);
        }
    }

    /// <summary>One worker: there is no fanout group to steer.</summary>
    public void ReplaceFanoutProgram(ClassicBpfProgram program)
    {
    }

    private void Run()
    {
        WorkerPinning.PinCurrentThread(_cpu, _log);
        if (_coalescing.Enabled)
        {
            _ = Linux.Interop.SetTimerSlackNanoseconds(1000); // a wait of 12 µs must not become 62
        }
        try
        {
            Loop();
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            Log.WorkerFailed(_log, 0, e.Message);
        }
        finally
        {
            _host.Stop();
            Log.BusyPolled(_log, _busyPoll);
        }
    }

    private static readonly Func<(XskSocket Socket, byte Link)[], bool> AnySocketHasFrames = all =>
    {
        foreach ((XskSocket socket, _) in all)
        {
            if (socket.HasFrames)
            {
                return true;
            }
        }
        return false;
    };

    private void Loop()
    {
        EngineHost host = _host;
        Span<XskFrame> frames = stackalloc XskFrame[Batch];
        Linux.Interop.PollFd* polls = stackalloc Linux.Interop.PollFd[_all.Length];
        for (int i = 0; i < _all.Length; i++)
        {
            polls[i] = new Linux.Interop.PollFd { Fd = _all[i].Socket.Descriptor, Events = Linux.Interop.POLLIN };
        }
        CoalescingTuner coalescing = _coalescing;
        while (!_stopping)
        {
            long now = Environment.TickCount64;
            bool any = false;
            int turnFrames = 0;
            foreach ((XskSocket socket, byte link) in _all)
            {
                int count = socket.Receive(frames);
                if (count == 0)
                {
                    continue;
                }
                turnFrames += count;
                if (!any)
                {
                    host.BeginBatch();
                    any = true;
                }
                ForwardBatch(socket, frames[..count], link, now);
            }
            foreach ((XskSocket socket, _) in _all)
            {
                socket.Flush(); // sends, takes back the sent chunks, refills
            }
            // As the AF_PACKET worker: a wait after a short turn while busy makes the next turn's frames share one
            // kick and one wake-up (CoalescingTuner, net_dim's rules).
            int wait = coalescing.AfterTurn(turnFrames, now);
            if (any)
            {
                _busyPoll.FramesSeen();
            }
            else if (!_busyPoll.SpinForFrames(_all, AnySocketHasFrames))
            {
                _ = Linux.Interop.Poll(polls, (nuint)_all.Length, 100);
            }
            else if (wait > 0)
            {
                _ = Linux.Interop.SleepMicroseconds(wait);
            }
            host.Housekeeping(now);
        }
    }

    /// <summary>
    /// One receive batch through the engine, as the AF_PACKET worker runs it: the connection-table slots of the frame
    /// <see cref="EngineHost.PrefetchDistance"/> places ahead are prefetched before each frame is processed, so that
    /// with a million flows the table's misses overlap instead of coming one after another.
    /// </summary>
    private void ForwardBatch(XskSocket socket, ReadOnlySpan<XskFrame> frames, byte link, long now)
    {
        EngineHost host = _host;
        FlowHint[] hints = _hints;
        int count = frames.Length;
        for (int i = 0; i < Math.Min(EngineHost.PrefetchDistance, count); i++)
        {
            hints[i] = host.Prefetch(Bytes(socket, frames[i]));
        }
        for (int i = 0; i < count; i++)
        {
            if (i + EngineHost.PrefetchDistance < count)
            {
                hints[i + EngineHost.PrefetchDistance] = host.Prefetch(Bytes(socket, frames[i + EngineHost.PrefetchDistance]));
            }
            Forward(socket, frames[i], link, hints[i], now);
        }
    }

    private static ReadOnlySpan<byte> Bytes(XskSocket socket, XskFrame frame) => new(socket.Data(frame.Address), frame.Length);

    /// <summary>Runs one frame through the engine where it lies in its chunk; the chunk goes back unless it was sent on.</summary>
    private void Forward(XskSocket socket, XskFrame frame, byte link, FlowHint hint, long now)
    {
        ulong chunk = frame.Address - (frame.Address % (ulong)socket.FrameSize);
        int offset = (int)(frame.Address - chunk);
        var packet = new FrameBuffer(new Span<byte>(socket.Data(chunk), socket.FrameSize), offset, frame.Length,
            OffloadPolicy.ReceiveFlagsWithoutHeader(isSuperFrame: false), link, _overflow);
        packet.Hint = hint; // a statement of its own: see the constructor
        _sentInPlace = false;
        var sink = new UmemSink(this, socket, link, chunk);
        _host.Forward(ref packet, now, _reply, ref sink);
        if (!_sentInPlace)
        {
            socket.Release(frame.Address);
        }
    }

    /// <summary>Sends the engine's output: in place when it leaves by the ingress link, else copied into the egress link's UMEM.</summary>
    private readonly struct UmemSink(XdpWorker worker, XskSocket ingress, byte ingressLink, ulong chunk) : IFrameSink
    {
        public void Transmit(ref FrameBuffer packet)
        {
            if (packet.Link == ingressLink)
            {
                worker._sentInPlace = true; // queued, or (the TX ring full) its chunk released by Transmit
                if (!ingress.Transmit(chunk + (ulong)packet.Offset, packet.Length))
                {
                    Interlocked.Increment(ref worker._transmitErrors);
                }
            }
            else
            {
                worker.SendCopy(packet.Frame, packet.Link);
            }
            if (packet.OverflowLength > 0)
            {
                worker.SendCopy(packet.Overflow[..packet.OverflowLength], packet.Link);
            }
        }

        public void Reply(ReadOnlySpan<byte> reply, byte link) => worker.SendCopy(reply, link);
    }

    /// <summary>Copies a frame into a free chunk of <paramref name="link"/>'s first socket and queues it there.</summary>
    private void SendCopy(ReadOnlySpan<byte> frame, byte link)
    {
        XskSocket socket = _sockets[link < _sockets.Length ? link : 0][0];
        if (frame.Length > socket.MaxFrameLength || !socket.TryAllocate(out ulong address))
        {
            Interlocked.Increment(ref _transmitErrors);
            return;
        }
        frame.CopyTo(new Span<byte>(socket.Data(address), frame.Length));
        if (!socket.Transmit(address, frame.Length))
        {
            Interlocked.Increment(ref _transmitErrors);
        }
    }

    /// <summary>RX ring entries per link, shared out among its queues: 8,192 hold 164 ms at 50,000 frames/s, as the AF_PACKET ring's slots do.</summary>
    private const int RingEntriesPerLink = 8192;

    /// <summary>
    /// A socket's geometry on a link of <paramref name="mtu"/> with <paramref name="queues"/> receive queues: the link's
    /// ring entries shared among its queues (at least 1,024 each), twice as many UMEM chunks as ring entries (the fill
    /// ring full and as many again in the RX and TX rings and in flight), 2 KiB chunks where a frame fits in one after
    /// the headroom, else 4 KiB: 32 MiB of UMEM for a single-queue link at MTU 1500.
    /// </summary>
    internal static XskSocketOptions Geometry(string interfaceName, int mtu, int queues)
    {
        int ring = Math.Max(1024, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(RingEntriesPerLink / Math.Max(1, queues))));
        int largestFrame = mtu + Core.Packets.EthernetFrame.HeaderLength + Core.Packets.EthernetFrame.VlanTagLength;
        return new XskSocketOptions(interfaceName)
        {
            RingSize = Math.Min(ring, RingEntriesPerLink),
            FrameCount = 2 * Math.Min(ring, RingEntriesPerLink),
            FrameSize = largestFrame <= 2048 - XskSocket.Headroom ? 2048 : 4096,
        };
    }

    /// <summary>The receive queues of an interface (/sys/class/net/NAME/queues/rx-N); 1 when that cannot be read.</summary>
    internal static int ReceiveQueues(string interfaceName)
    {
        try
        {
            int queues = Directory.GetDirectories($"/sys/class/net/{interfaceName}/queues", "rx-*").Length;
            return Math.Clamp(queues, 1, XdpSteering.MaxQueues);
        }
        catch (IOException)
        {
            return 1;
        }
        catch (UnauthorizedAccessException)
        {
            return 1;
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        _host.Clear();
        DisposeSockets();
    }

    private void DisposeSockets()
    {
        foreach (XskSocket[]? sockets in _sockets)
        {
            foreach (XskSocket? socket in sockets ?? [])
            {
                socket?.Dispose();
            }
        }
        foreach (XdpSteering? steering in _steering)
        {
            steering?.Dispose();
        }
    }
}
