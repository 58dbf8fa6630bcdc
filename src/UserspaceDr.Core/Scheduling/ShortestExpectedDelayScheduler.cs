using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>sed (ip_vs_sed.c): least (active + 1) / weight, inactive connections ignored; ties go to the first server
/// in list order.</summary>
public sealed class ShortestExpectedDelayScheduler : Scheduler
{
    public ShortestExpectedDelayScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key) =>
        WeightedLeastConnection.Pick<ExpectedDelay>(Destinations, takeFirstIdle: false);
}
