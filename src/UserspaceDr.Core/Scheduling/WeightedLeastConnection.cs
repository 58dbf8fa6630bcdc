using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>What a weighted-least scheduler counts as a server's load (struct implementations, so the generic
/// <see cref="WeightedLeastConnection.Pick{TCost}"/> is specialised per cost without any dispatch).</summary>
internal interface IConnectionCost
{
    static abstract long Of(RealServer destination);
}

/// <summary>wlc's load: ip_vs_dest_conn_overhead, active connections weigh 256 inactive ones.</summary>
internal readonly struct ConnectionOverhead : IConnectionCost
{
    public static long Of(RealServer destination) => destination.Overhead;
}

/// <summary>sed's and nq's load: the active connections plus the one being scheduled (ip_vs_sed_dest_overhead,
/// ip_vs_nq_dest_overhead); inactive connections are ignored.</summary>
internal readonly struct ExpectedDelay : IConnectionCost
{
    public static long Of(RealServer destination) => destination.ActiveConnections + 1L;
}

/// <summary>The loop ip_vs_wlc.c, ip_vs_sed.c and ip_vs_nq.c share: the available server with the least load/weight.</summary>
internal static class WeightedLeastConnection
{
    /// <summary>
    /// Walks the list in order; a server replaces the current least only when strictly less loaded, compared as
    /// least_cost * weight &gt; cost * least_weight in 64 bits (no division), so on a tie the first in list wins.
    /// With <paramref name="takeFirstIdle"/> (nq) the first available server with no active connection is returned
    /// at once, wherever it sits in the list.
    /// </summary>
    public static RealServer? Pick<TCost>(ImmutableArray<RealServer> destinations, bool takeFirstIdle)
        where TCost : struct, IConnectionCost
    {
        RealServer? least = null;
        long leastCost = 0;
        long leastWeight = 0;
        foreach (RealServer destination in destinations)
        {
            // The kernel's first stage takes the first available server; its second stage only skips overloaded
            // ones, but a weight-0 server can never win the comparison there, so skipping it is the same.
            if (!Scheduler.IsAvailable(destination))
            {
                continue;
            }
            if (takeFirstIdle && destination.ActiveConnections == 0)
            {
                return destination;
            }
            long cost = TCost.Of(destination);
            long weight = destination.Weight;
            if (least is null || leastCost * weight > cost * leastWeight)
            {
                least = destination;
                leastCost = cost;
                leastWeight = weight;
            }
        }
        return least;
    }
}
