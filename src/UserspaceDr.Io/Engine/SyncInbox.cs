using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// Hands connections a master synced to the worker whose table they belong in, without another thread touching the
/// table (<see cref="ConnectionTable"/> is single-threaded by design): the sync receiver posts, the worker applies
/// what is waiting between batches (one volatile read per loop when nothing is; at most
/// <see cref="BatchLimit"/> entries per loop, so a burst of sync never stalls forwarding). Bounded: past
/// <see cref="Capacity"/> waiting entries a post is refused and counted.
/// </summary>
public sealed class SyncInbox
{
    public const int Capacity = 1 << 16;
    public const int BatchLimit = 1024;

    private readonly ConcurrentQueue<SyncedConnection> _queue = new();
    private readonly long[] _outcomes = new long[Enum.GetValues<SyncApplyOutcome>().Length];
    private int _waiting;
    private long _refused;

    /// <summary>Posts refused because the inbox was full.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>How many synced connections ended with <paramref name="outcome"/> (read from any thread; written by the worker).</summary>
    public long Count(SyncApplyOutcome outcome) => Volatile.Read(ref _outcomes[(int)outcome]);

    /// <summary>Receiver side: queues <paramref name="synced"/> for the worker; false when the inbox is full.</summary>
    public bool Post(in SyncedConnection synced)
    {
        if (Volatile.Read(ref _waiting) >= Capacity)
        {
            Interlocked.Increment(ref _refused);
            return false;
        }
        _queue.Enqueue(synced);
        Interlocked.Increment(ref _waiting);
        return true;
    }

    /// <summary>Worker side, once per loop: applies what is waiting to <paramref name="engine"/>'s table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Serve(ForwardingEngine engine, long now)
    {
        if (Volatile.Read(ref _waiting) != 0)
        {
            Apply(engine, now);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Apply(ForwardingEngine engine, long now)
    {
        for (int i = 0; i < BatchLimit && _queue.TryDequeue(out SyncedConnection synced); i++)
        {
            Interlocked.Decrement(ref _waiting);
            SyncApplyOutcome outcome = engine.ApplySync(synced, now);
            Volatile.Write(ref _outcomes[(int)outcome], _outcomes[(int)outcome] + 1);
        }
    }
}
