using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>wlc (ip_vs_wlc.c, the ipvsadm default): least (active * 256 + inactive) / weight; ties go to the first
/// server in list order.</summary>
public sealed class WeightedLeastConnectionScheduler : Scheduler
{
    public WeightedLeastConnectionScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key) =>
        WeightedLeastConnection.Pick<ConnectionOverhead>(Destinations, takeFirstIdle: false);
}
