using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>nq (ip_vs_nq.c): the first available server with no active connection, else as sed.</summary>
public sealed class NeverQueueScheduler : Scheduler
{
    public NeverQueueScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
    }

    public override RealServer? Pick(in SchedulingKey key) =>
        WeightedLeastConnection.Pick<ExpectedDelay>(Destinations, takeFirstIdle: true);
}
