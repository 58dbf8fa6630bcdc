using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Stats;

/// <summary>Traffic through one real server, as ipvsadm --stats counts it.</summary>
public struct TrafficCounters
{
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

    public void Count(FrameReason reason) => _byReason[(int)reason]++;

    public long this[FrameReason reason] => Volatile.Read(ref _byReason[(int)reason]);

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

    /// <summary>The row for a server; grows (off the per-frame path in practice: once per new server).</summary>
    public ref TrafficCounters For(RealServer server)
    {
        int slot = server.StatsSlot;
        if (slot >= _byServer.Length)
        {
            Array.Resize(ref _byServer, Math.Max(slot + 1, _byServer.Length * 2));
        }
        return ref _byServer[slot];
    }

    /// <summary>A copy of a server's row, for readers on other threads.</summary>
    public TrafficCounters Read(RealServer server)
    {
        TrafficCounters[] rows = Volatile.Read(ref _byServer);
        return server.StatsSlot < rows.Length ? rows[server.StatsSlot] : default;
    }
}
