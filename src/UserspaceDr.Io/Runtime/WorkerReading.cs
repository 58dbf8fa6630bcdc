using System.Collections.Immutable;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// One worker's counters at one moment (<see cref="DataPlane.ReadWorkers"/>): frames by reason (indexed by
/// <see cref="FrameReason"/>), the kernel's ring drops, refused transmits, its connection table's fill, and the SYN-flood
/// defenses' actions.
/// </summary>
public sealed record WorkerReading(int Index, ImmutableArray<long> Frames, long RingDrops, long TransmitErrors, int Connections,
    int ConnectionCapacity, long DropEntryEvicted, long SecureTcpShortSynRecv)
{
    /// <summary>Frames counted under <paramref name="reason"/>.</summary>
    public long this[FrameReason reason] => Frames[(int)reason];
}
