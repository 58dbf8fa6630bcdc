using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// The one <see cref="EngineSnapshot"/> every worker reads once per batch. The control side (rules, timeouts) and the
/// neighbour resolver each replace it whole with their part changed (RCU by immutability), so a worker never sees
/// half of a change and never waits for one.
/// </summary>
public sealed class DataPlaneState
{
    private EngineSnapshot _current = EngineSnapshot.Empty;

    public EngineSnapshot Current => Volatile.Read(ref _current);

    /// <summary>The way into the host's own stack, for real servers on the balancer itself; null where there is none (replay).</summary>
    public LocalDelivery? LocalDelivery { get; init; }

    public RuleSet Rules => Current.Rules;
    public NeighborTable Neighbors => Current.Neighbors;
    public Timeouts Timeouts => Current.Timeouts;

    /// <summary>Publishes <paramref name="change"/> applied to the current snapshot; a change racing another is applied again on the winner's.</summary>
    public void Update(Func<EngineSnapshot, EngineSnapshot> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        EngineSnapshot seen = Current;
        while (true)
        {
            EngineSnapshot next = change(seen);
            EngineSnapshot found = Interlocked.CompareExchange(ref _current, next, seen);
            if (ReferenceEquals(found, seen))
            {
                return;
            }
            seen = found;
        }
    }

    /// <summary>Hands the current snapshot to an engine (between batches).</summary>
    public void ApplyTo(ForwardingEngine engine)
    {
        EngineSnapshot current = Current;
        if (!ReferenceEquals(engine.Snapshot, current))
        {
            engine.Snapshot = current;
        }
    }
}
