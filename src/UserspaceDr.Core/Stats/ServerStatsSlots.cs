namespace UserspaceDr.Core.Stats;

/// <summary>
/// The rows of the per-worker traffic counters (<see cref="WorkerCounters.For"/>), handed to real servers by the rule
/// sets of one data plane (each <see cref="Services.RuleSet"/> built from a previous one shares its allocator). A row
/// whose server is gone for good (deleted, and no connection holds it) is handed out again from the next rule set
/// on, so the counter arrays are as large as the most servers alive at once, not every server ever configured. Each
/// hand-out has a new lease number: a worker's row remembers the lease it counts for, so a row handed to a new server
/// starts from zero and a late count for the old one is dropped.
/// </summary>
public sealed class ServerStatsSlots
{
    private readonly Lock _lock = new();
    private readonly Stack<int> _free = new();
    private int _next;
    private long _lastLease;

    /// <summary>How many rows have ever been handed out at once (the counter arrays' needed length).</summary>
    public int HighWater
    {
        get
        {
            lock (_lock)
            {
                return _next;
            }
        }
    }

    /// <summary>Rows given back and not yet handed out again.</summary>
    public int Available
    {
        get
        {
            lock (_lock)
            {
                return _free.Count;
            }
        }
    }

    /// <summary>A row for a new server, and the lease (never 0) that tells this hand-out from earlier ones of the row.</summary>
    public (int Slot, long Lease) Take()
    {
        lock (_lock)
        {
            int slot = _free.Count > 0 ? _free.Pop() : _next++;
            return (slot, ++_lastLease);
        }
    }

    /// <summary>The server holding <paramref name="slot"/> is gone for good: the row may be handed out again.</summary>
    public void Release(int slot)
    {
        lock (_lock)
        {
            _free.Push(slot);
        }
    }
}
