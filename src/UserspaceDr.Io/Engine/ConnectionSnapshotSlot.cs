using System.Runtime.CompilerServices;
using UserspaceDr.Core.Connections;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// Hands a copy of one worker's connection table to another thread (ipvsadm -L -c) without ever touching the table
/// from that thread: <see cref="ConnectionTable"/> is single-threaded by design. A reader posts a request in a
/// one-entry slot; the worker looks at the slot once per loop (between batches, never per frame: one volatile read),
/// copies its table when a request is there, and completes it. A worker that has stopped closes the slot, and
/// requests then complete at once with nothing.
/// </summary>
public sealed class ConnectionSnapshotSlot
{
    private readonly Lock _readers = new();
    private TaskCompletionSource<ConnectionSnapshot>? _pending;
    private volatile bool _closed;

    /// <summary>
    /// Worker side, once per loop: answers a pending request, if any, with a copy of its tables (the IPv6 one only once
    /// IPv6 traffic made it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Serve(ConnectionTable<uint> ipv4, ConnectionTable<UInt128>? ipv6 = null)
    {
        if (Volatile.Read(ref _pending) is { } request)
        {
            Answer(request, ipv4, ipv6);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Answer(TaskCompletionSource<ConnectionSnapshot> request, ConnectionTable<uint> ipv4, ConnectionTable<UInt128>? ipv6)
    {
        var copy = new ConnectionSnapshot(ipv4.Snapshot(), ipv6?.Snapshot() ?? []);
        Interlocked.CompareExchange(ref _pending, null, request);
        request.TrySetResult(copy);
    }

    /// <summary>Worker side, when its loop ends: no one will answer from now on.</summary>
    public void Close()
    {
        _closed = true;
        Interlocked.Exchange(ref _pending, null)?.TrySetResult(ConnectionSnapshot.Empty);
    }

    /// <summary>
    /// Reader side: the worker's connections as of its next pause between batches; null when it did not answer in
    /// time (it is stuck in a long batch or gone without closing). Readers queue behind one another.
    /// </summary>
    public ConnectionSnapshot? Take(TimeSpan timeout)
    {
        lock (_readers)
        {
            if (_closed)
            {
                return ConnectionSnapshot.Empty;
            }
            var request = new TaskCompletionSource<ConnectionSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _pending, request);
            if (_closed)
            {
                // Closed between the check and the post: nobody will serve it.
                Interlocked.CompareExchange(ref _pending, null, request);
                return ConnectionSnapshot.Empty;
            }
            if (request.Task.Wait(timeout))
            {
                return request.Task.Result;
            }
            Interlocked.CompareExchange(ref _pending, null, request);
            return null;
        }
    }
}

/// <summary>A copy of connection tables, one list per address family.</summary>
public sealed record ConnectionSnapshot(IReadOnlyList<Connection<uint>> Ipv4, IReadOnlyList<Connection<UInt128>> Ipv6)
{
    public static readonly ConnectionSnapshot Empty = new([], []);

    public int Count => Ipv4.Count + Ipv6.Count;
}
