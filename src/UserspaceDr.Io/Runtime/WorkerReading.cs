using System.Collections.Immutable;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// One worker's counters at one moment (<see cref="DataPlane.ReadWorkers"/>): frames by reason (indexed by
/// <see cref="FrameReason"/>), the kernel's ring drops, refused transmits, its connection table's fill, the SYN-flood
/// defenses' actions, the coalescing wait it has chosen, and what its busy polling did (turns that spun and found
/// frames, turns that spun and slept).
/// </summary>
public sealed record WorkerReading(int Index, ImmutableArray<long> Frames, long RingDrops, long TransmitErrors, int Connections,
    int ConnectionCapacity, long DropEntryEvicted, long SecureTcpShortSynRecv, int CoalesceWaitMicroseconds = 0,
    long BusyPollFrames = 0, long BusyPollSlept = 0)
{
    /// <summary>Frames counted under <paramref name="reason"/>.</summary>
    public long this[FrameReason reason] => Frames[(int)reason];

    /// <summary>Every worker's frames added up, indexed by <see cref="FrameReason"/>.</summary>
    public static long[] FramesOfAll(IReadOnlyList<WorkerReading> workers)
    {
        ArgumentNullException.ThrowIfNull(workers);
        var total = new long[FrameReasons.Count];
        foreach (WorkerReading worker in workers)
        {
            for (int i = 0; i < total.Length; i++)
            {
                total[i] += worker.Frames[i];
            }
        }
        return total;
    }
}
