using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>lc (ip_vs_lc.c): least active * 256 + inactive among available servers, weight otherwise ignored; the
/// comparison is strict, so on a tie the first in list order wins.</summary>
public sealed class LeastConnectionScheduler : Scheduler
{
    public LeastConnectionScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key)
    {
        RealServer? least = null;
        int leastOverhead = 0;
        foreach (RealServer destination in Destinations)
        {
            if (!IsAvailable(destination))
            {
                continue;
            }
            int overhead = destination.Overhead;
            if (least is null || overhead < leastOverhead)
            {
                least = destination;
                leastOverhead = overhead;
            }
        }
        return least;
    }
}
