using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>rr (ip_vs_rr.c): scan on from the last pick for a server with weight &gt; 0 that is not overloaded.</summary>
public sealed class RoundRobinScheduler : Scheduler
{
    private int _last = -1;

    public RoundRobinScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key)
    {
        ImmutableArray<RealServer> dests = Destinations;
        int count = dests.Length;
        while (true)
        {
            int last = Volatile.Read(ref _last);
            for (int step = 1; step <= count; step++)
            {
                int index = (last + step) % count;
                RealServer dest = dests[index];
                if (dest.Weight > 0 && !dest.Overloaded)
                {
                    if (Interlocked.CompareExchange(ref _last, index, last) == last)
                    {
                        return dest;
                    }
                    goto retry;
                }
            }
            return null;
        retry:;
        }
    }
}
