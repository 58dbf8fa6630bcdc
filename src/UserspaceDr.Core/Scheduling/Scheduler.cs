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

    /// <summary>
    /// Whether a server may take a new connection: weight 0 means quiesced and IP_VS_DEST_F_OVERLOAD means the upper
    /// threshold was reached. Every scheduler here applies this (the kernel's is_unavailable in ip_vs_sh.c/ip_vs_mh.c,
    /// and the same two tests written out inline in the others).
    /// </summary>
    internal static bool IsAvailable(RealServer destination) => destination.Weight > 0 && !destination.Overloaded;
}
