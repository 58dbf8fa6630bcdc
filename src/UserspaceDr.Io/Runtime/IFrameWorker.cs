using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.PcapLive;
using UserspaceDr.Io.Xdp;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Runtime;

/// <summary>One data-plane worker thread: receives frames, runs its own engine over them, transmits the results.</summary>
public interface IFrameWorker : IDisposable
{
    WorkerCounters Counters { get; }

    /// <summary>Frames the kernel refused to send (EMSGSIZE and the like), counted, never thrown.</summary>
    long TransmitErrors { get; }

    int LastTransmitErrno { get; }

    /// <summary>Frames the kernel dropped because a receive ring was full (the worker fell behind), so far, all links together.</summary>
    long RingDrops { get; }

    /// <summary>Connections the worker's table holds now.</summary>
    int Connections { get; }

    /// <summary>How many connections the worker's table can hold.</summary>
    int ConnectionCapacity { get; }

    /// <summary>The wait after a turn of few frames the worker's coalescing has chosen now, in µs (0: none).</summary>
    int CoalesceWaitMicroseconds { get; }

    /// <summary>--busy-poll-usecs: turns that spun and found frames (a wake-up saved), and turns that spun and slept.</summary>
    (long Frames, long Slept) BusyPollTurns { get; }

    /// <summary>Where another thread asks for a copy of the worker's connections (served between batches).</summary>
    ConnectionSnapshotSlot Snapshots { get; }

    /// <summary>Where a backup's sync receiver leaves connections for this worker's table (applied between batches).</summary>
    SyncInbox SyncInbox { get; }

    /// <summary>Where this worker's engine posts connections for a sync master (idle unless enabled).</summary>
    Core.Connections.SyncOutbox SyncOutbox { get; }

    /// <summary>Starts the worker's thread(s); <paramref name="cpu"/>: the one CPU they run on (--cpus), null: anywhere.</summary>
    void Start(int? cpu = null);

    /// <summary>The rule set's addresses changed: narrow or widen what the kernel hands this worker.</summary>
    void UpdateTraffic(TrafficSelection traffic);

    /// <summary>
    /// Replaces the program that steers frames among the workers (one member's call changes its whole fanout group);
    /// nothing for a backend that has a single worker.
    /// </summary>
    void ReplaceFanoutProgram(ClassicBpfProgram program);
}

/// <summary>Makes the workers of a backend: the one place that knows which classes the backends are.</summary>
public static class FrameWorkers
{
    /// <summary>
    /// How many workers a backend runs for <paramref name="requested"/>: libpcap's one engine serves every link, and so
    /// does AF_XDP's (its sockets follow the NIC's queues, see <see cref="XdpWorker"/>).
    /// </summary>
    public static int Count(FrameBackend backend, int requested) => backend is FrameBackend.Pcap or FrameBackend.Xdp ? 1 : Math.Max(1, requested);

    /// <param name="fanouts">Each link's fanout group (AF_PACKET with several workers), or null.</param>
    /// <param name="coalesceMicroseconds">AF_PACKET and AF_XDP: --coalesce-usecs (0: off); libpcap takes frames one by one and ignores it.</param>
    /// <param name="busyPollMicroseconds">AF_PACKET and AF_XDP: --busy-poll-usecs (0: off); libpcap's readers block in libpcap.</param>
    public static IFrameWorker Create(FrameBackend backend, int index, IReadOnlyList<LinkInfo> links, DataPlaneState state,
        EngineOptions options, int maxConnections, IReadOnlyList<FanoutOptions>? fanouts, TrafficSelection traffic, ILogger log,
        int coalesceMicroseconds = 0, int busyPollMicroseconds = 0) =>
        backend switch
        {
            FrameBackend.Pcap => new PcapWorker(links, state, options, maxConnections, traffic, log),
            FrameBackend.Xdp => new XdpWorker(links, state, options, maxConnections, traffic, log, coalesceMicroseconds, busyPollMicroseconds),
            _ => new AfPacketWorker(index, links, state, options, maxConnections, fanouts, traffic, log, coalesceMicroseconds, busyPollMicroseconds),
        };
}
