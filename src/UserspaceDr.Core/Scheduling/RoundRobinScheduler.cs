using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>
/// rr (ip_vs_rr.c): scan on from the last pick, wrapping, for the first server that is available. The scan starts at
/// the list head when nothing was picked yet (one pass), otherwise after the last pick and ends with the last pick
/// itself, so every server is looked at exactly once.
/// </summary>
/// <remarks>
/// The position is one int swapped with <see cref="Interlocked.CompareExchange(ref int, int, int)"/>: a worker that
/// loses the race rescans from the winner's pick, so N concurrent picks advance the rotation exactly N times.
/// A new instance (any add/delete/edit) starts again at the head; the kernel keeps its pointer across edits.
/// </remarks>
public sealed class RoundRobinScheduler : Scheduler
{
    /// <summary>The list head: svc->destinations itself, where ip_vs_rr_init_svc points sched_data.</summary>
    private const int Head = -1;

    private int _lastIndex = Head;

    public RoundRobinScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags, RoundRobinScheduler? previous = null)
        : base(destinations, flags)
    {
        // ip_vs_rr keeps sched_data (the last pick) across adds and edits: carry it over by identity. If that server
        // was deleted (ip_vs_rr_del_dest steps back), start from the head.
        if (previous is not null)
        {
            int last = Volatile.Read(ref previous._lastIndex);
            if (last != Head)
            {
                _lastIndex = destinations.IndexOf(previous.Destinations[last]);
            }
        }
    }

    public override RealServer? Pick(in SchedulingKey key)
    {
        ImmutableArray<RealServer> destinations = Destinations;
        while (true)
        {
            int last = Volatile.Read(ref _lastIndex);
            int next = NextAvailable(destinations, last);
            if (next == Head)
            {
                return null;
            }
            if (Interlocked.CompareExchange(ref _lastIndex, next, last) == last)
            {
                return destinations[next];
            }
        }
    }

    private static int NextAvailable(ImmutableArray<RealServer> destinations, int last)
    {
        int count = destinations.Length;
        // From the head (last = -1) this visits 0..count-1; from index k it visits k+1..count-1, 0..k.
        for (int step = 1; step <= count; step++)
        {
            int index = (last + step) % count;
            if (IsAvailable(destinations[index]))
            {
                return index;
            }
        }
        return Head;
    }
}
