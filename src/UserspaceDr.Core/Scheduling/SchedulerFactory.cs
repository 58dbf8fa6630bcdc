using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

public static class SchedulerFactory
{
    /// <summary>The schedulers udr implements, by their IPVS names.</summary>
    public static readonly ImmutableArray<string> Names = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh"];

    public static bool IsKnown(string name) => Names.Contains(name);

    public static Scheduler Create(string name, ImmutableArray<RealServer> destinations, SchedulerFlags flags) => name switch
    {
        "rr" => new RoundRobinScheduler(destinations, flags),
        "wrr" => new WeightedRoundRobinScheduler(destinations, flags),
        "lc" => new LeastConnectionScheduler(destinations, flags),
        "wlc" => new WeightedLeastConnectionScheduler(destinations, flags),
        "sed" => new ShortestExpectedDelayScheduler(destinations, flags),
        "nq" => new NeverQueueScheduler(destinations, flags),
        "fo" => new WeightedFailoverScheduler(destinations, flags),
        "ovf" => new OverflowConnectionScheduler(destinations, flags),
        "sh" => new SourceHashingScheduler(destinations, flags),
        "mh" => new MaglevHashingScheduler(destinations, flags),
        _ => throw new ArgumentException($"Scheduler '{name}' is not implemented.", nameof(name)),
    };
}
