using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>What a scheduler may look at: the new connection's addresses (host order).</summary>
public readonly record struct SchedulingKey(uint ClientAddress, ushort ClientPort, uint VirtualAddress, ushort VirtualPort);

/// <summary>
/// One IPVS scheduler bound to one service's destination list (kernel order, newest first). A new instance is
/// built whenever the list or a weight changes (the kernel's update_service); <see cref="Pick"/> runs on every
/// worker at once and must be lock-free. It is called once per new connection, never per frame.
/// </summary>
public abstract class Scheduler
{
    protected Scheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags)
    {
        Destinations = destinations;
        Flags = flags;
    }

    public ImmutableArray<RealServer> Destinations { get; }
    public SchedulerFlags Flags { get; }

    /// <summary>The chosen real server, or null when none is available (IPVS then answers port-unreachable).</summary>
    public abstract RealServer? Pick(in SchedulingKey key);
}
