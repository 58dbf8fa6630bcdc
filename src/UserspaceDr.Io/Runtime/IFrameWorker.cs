using UserspaceDr.Core.Stats;

namespace UserspaceDr.Io.Runtime;

/// <summary>One data-plane worker thread: receives frames, runs its own engine over them, transmits the results.</summary>
public interface IFrameWorker : IDisposable
{
    WorkerCounters Counters { get; }

    /// <summary>Frames the kernel refused to send (EMSGSIZE and the like), counted, never thrown.</summary>
    long TransmitErrors { get; }

    int LastTransmitErrno { get; }

    /// <summary>Connections the worker's table holds now.</summary>
    int Connections { get; }

    void Start();

    /// <summary>The VIP set changed: narrow or widen what the kernel hands this worker.</summary>
    void UpdateVirtualAddresses(IReadOnlyCollection<uint> virtualAddresses);
}
