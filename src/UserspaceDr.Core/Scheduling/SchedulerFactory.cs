using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

public static class SchedulerFactory
{
    /// <summary>The schedulers udr implements, by their IPVS names.</summary>
    public static readonly ImmutableArray<string> Names = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh"];

    public static bool IsKnown(string name) => Names.Contains(name);

    /// <summary>The class implementing <paramref name="name"/> (to tell whether a previous instance can hand over its state).</summary>
    public static Type? TypeOf(string name) => name switch
    {
        "rr" => typeof(RoundRobinScheduler),
        "wrr" => typeof(WeightedRoundRobinScheduler),
        _ => null,
    };

    /// <summary>
    /// A scheduler for a service's new destination list. <paramref name="previous"/> is the instance it replaces (same
    /// service, same scheduler name), whose position state carries over as the kernel's add/del/upd_dest hooks keep it;
    /// null for a new service.
    /// </summary>
    public static Scheduler Create(string name, ImmutableArray<RealServer> destinations, SchedulerFlags flags, Scheduler? previous = null) => name switch
    {
        "rr" => new RoundRobinScheduler(destinations, flags, previous as RoundRobinScheduler),
        "wrr" => new WeightedRoundRobinScheduler(destinations, flags, previous as WeightedRoundRobinScheduler),
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
