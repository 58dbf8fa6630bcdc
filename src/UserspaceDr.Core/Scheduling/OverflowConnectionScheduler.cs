using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>ovf (ip_vs_ovf.c): the highest-weight available server whose active connections do not exceed its
/// weight, so traffic overflows to the next weight down once a server holds more than weight active connections.
/// Strict comparison: on a tie the first in list order wins.</summary>
public sealed class OverflowConnectionScheduler : Scheduler
{
    public OverflowConnectionScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
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
            if (destination.ActiveConnections > weight)
            {
                continue;
            }
            if (highest is null || weight > highestWeight)
            {
                highest = destination;
                highestWeight = weight;
            }
        }
        return highest;
    }
}
