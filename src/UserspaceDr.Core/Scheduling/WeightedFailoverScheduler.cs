using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>fo (ip_vs_fo.c): the available server with the highest weight; strict comparison, so on a tie the first
/// in list order wins. Connection counts are not looked at.</summary>
public sealed class WeightedFailoverScheduler : Scheduler
{
    public WeightedFailoverScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key)
    {
        RealServer? highest = null;
        int highestWeight = 0;
        foreach (RealServer destination in Destinations)
        {
            if (!IsAvailable(destination))
            {
                continue;
            }
            int weight = destination.Weight;
            if (weight > highestWeight)
            {
                highest = destination;
                highestWeight = weight;
            }
        }
        return highest;
    }
}
