using UserspaceDr.Io.Engine;
using UserspaceDr.Core.Stats;

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

    /// <summary>Where another thread asks for a copy of the worker's connections (served between batches).</summary>
    ConnectionSnapshotSlot Snapshots { get; }

    void Start();

    /// <summary>The rule set's addresses changed: narrow or widen what the kernel hands this worker.</summary>
    void UpdateTraffic(TrafficSelection traffic);
}
