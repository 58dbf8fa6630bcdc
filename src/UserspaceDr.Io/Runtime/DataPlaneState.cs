using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// The snapshots every worker reads once per batch: rules, neighbours, timeouts. Each is immutable and replaced
/// whole (RCU by immutability), so a worker never sees half of a change and never waits for one.
/// </summary>
public sealed class DataPlaneState
{
    private RuleSet _rules = RuleSet.Empty;
    private NeighborTable _neighbors = NeighborTable.Empty;
    private Timeouts _timeouts = Timeouts.Default;

    public RuleSet Rules { get => Volatile.Read(ref _rules); set => Volatile.Write(ref _rules, value); }
    public NeighborTable Neighbors { get => Volatile.Read(ref _neighbors); set => Volatile.Write(ref _neighbors, value); }
    public Timeouts Timeouts { get => Volatile.Read(ref _timeouts); set => Volatile.Write(ref _timeouts, value); }

    /// <summary>Hands the current snapshots to an engine (between batches).</summary>
    public void ApplyTo(ForwardingEngine engine)
    {
        engine.Rules = Rules;
        engine.Neighbors = Neighbors;
        engine.Timeouts = Timeouts;
    }
}
