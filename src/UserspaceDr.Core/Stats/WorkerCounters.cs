using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Stats;

/// <summary>Traffic through one real server, as ipvsadm --stats counts it.</summary>
public struct TrafficCounters
{
    /// <summary>The <see cref="Services.RealServer.StatsLease"/> this row counts for (a row is handed to a new server after its old one is gone).</summary>
    public long Owner;
    public long Connections;
    public long InPackets;
    public long InBytes;
    public long OutPackets;
    public long OutBytes;

    public void Add(in TrafficCounters other)
    {
        Connections += other.Connections;
        InPackets += other.InPackets;
        InBytes += other.InBytes;
        OutPackets += other.OutPackets;
        OutBytes += other.OutBytes;
    }

    public void Subtract(in TrafficCounters other)
    {
        Connections -= other.Connections;
        InPackets -= other.InPackets;
        InBytes -= other.InBytes;
        OutPackets -= other.OutPackets;
        OutBytes -= other.OutBytes;
    }
}

/// <summary>
/// One worker's counters: plain fields, written only by that worker, summed by readers (a reader may see a
/// slightly stale value, never a torn one: each is a naturally aligned 64-bit field on a 64-bit runtime).
/// </summary>
public sealed class WorkerCounters
{
    private readonly long[] _byReason = new long[FrameReasons.Count];
    private TrafficCounters[] _byServer = new TrafficCounters[64];
    private TrafficCounters _discarded; // where counts for a server without a row of its own go

    public void Count(FrameReason reason) => _byReason[(int)reason]++;

    /// <summary>Half-open connections drop_entry removed to make room (drop-entry-evicted).</summary>
    public long DropEntryEvicted;

    /// <summary>New TCP connections armed with secure_tcp's short SYN_RECV timeout (secure-tcp-short-syn-recv).</summary>
    public long SecureTcpShortSynRecv;

    public long this[FrameReason reason] => Volatile.Read(ref _byReason[(int)reason]);

    /// <summary>Every reason's count, indexed by <see cref="FrameReason"/>, for a reader on another thread.</summary>
    public ImmutableArray<long> ReadReasons()
    {
        var counts = new long[FrameReasons.Count];
        for (int i = 0; i < counts.Length; i++)
        {
            counts[i] = Volatile.Read(ref _byReason[i]);
        }
        return ImmutableCollectionsMarshal.AsImmutableArray(counts);
    }

    public long Total(Verdict verdict)
    {
        long total = 0;
        for (int i = 0; i < FrameReasons.Count; i++)
        {
            if (FrameReasons.VerdictOf((FrameReason)i) == verdict)
            {
                total += this[(FrameReason)i];
            }
        }
        return total;
    }

    /// <summary>
    /// The row for a server; grows (off the per-frame path in practice: once per new server). A row last used by an
    /// earlier holder of the slot starts again from zero; a late count for a server whose row was handed on (or for
    /// one that never had a row) goes to a row nobody reads.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref TrafficCounters For(RealServer server)
    {
        // Per frame: the server's own row, already its own. Inlined into the engine's stage (a call here was one of
        // the cached frame's few remaining calls); anything else takes the call below.
        TrafficCounters[] rows = _byServer;
        int slot = server.StatsSlot;
        if ((uint)slot < (uint)rows.Length)
        {
            ref TrafficCounters row = ref rows[slot];
            if (row.Owner == server.StatsLease)
            {
                return ref row;
            }
        }
        return ref ClaimRow(server);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ref TrafficCounters ClaimRow(RealServer server)
    {
        int slot = server.StatsSlot;
        if (slot >= _byServer.Length)
        {
            Array.Resize(ref _byServer, Math.Max(slot + 1, _byServer.Length * 2));
        }
        ref TrafficCounters row = ref _byServer[slot];
        long lease = server.StatsLease;
        if (row.Owner != lease)
        {
            if (row.Owner > lease || lease == 0)
            {
                return ref _discarded;
            }
            row = new TrafficCounters { Owner = lease };
        }
        return ref row;
    }

    /// <summary>A copy of a server's row, for readers on other threads (zero when the row counts for another server).</summary>
    public TrafficCounters Read(RealServer server)
    {
        TrafficCounters[] rows = Volatile.Read(ref _byServer);
        TrafficCounters row = server.StatsSlot < rows.Length ? rows[server.StatsSlot] : default;
        return row.Owner == server.StatsLease && server.StatsLease != 0 ? row : default;
    }
}
