namespace UserspaceDr.Core.Stats;

/// <summary>Rates as ipvsadm --rate prints them: per second, rounded the kernel's way.</summary>
public readonly record struct TrafficRates(long ConnectionsPerSecond, long InPacketsPerSecond, long OutPacketsPerSecond,
    long InBytesPerSecond, long OutBytesPerSecond);

/// <summary>
/// IPVS's rate estimator (net/netfilter/ipvs/ip_vs_est.c), one per service and per real server. Every
/// <see cref="PeriodSeconds"/> seconds <see cref="Sample"/> takes the cumulative counters; each rate is an exponentially
/// weighted moving average with weight 1/4 (avg += (rate - avg) / 4), kept in fixed point: connections and packets
/// scaled by 2^10, bytes by 2^5. The per-period delta is shifted by 9 (2^10 / 2 s) and by 4 (2^5 / 2 s) respectively,
/// and <see cref="Read"/> rounds back as ip_vs_read_estimator does. A struct with plain fields: its owner serialises
/// access (one timer thread and readers under the owner's lock).
/// </summary>
public struct RateEstimator
{
    /// <summary>The kernel samples every 2 seconds.</summary>
    public const int PeriodSeconds = 2;

    private long _lastConnections;
    private long _lastInPackets;
    private long _lastOutPackets;
    private long _lastInBytes;
    private long _lastOutBytes;
    private long _connectionsScaled;
    private long _inPacketsScaled;
    private long _outPacketsScaled;
    private long _inBytesScaled;
    private long _outBytesScaled;

    /// <summary>An estimator whose first period starts at <paramref name="now"/>.</summary>
    public static RateEstimator StartingAt(in TrafficCounters now)
    {
        var estimator = default(RateEstimator);
        estimator.Reset(now);
        return estimator;
    }

    /// <summary>One period has passed: fold the counters' growth since the last sample into the averages.</summary>
    public void Sample(in TrafficCounters now)
    {
        Fold(ref _connectionsScaled, ref _lastConnections, now.Connections, 9);
        Fold(ref _inPacketsScaled, ref _lastInPackets, now.InPackets, 9);
        Fold(ref _outPacketsScaled, ref _lastOutPackets, now.OutPackets, 9);
        Fold(ref _inBytesScaled, ref _lastInBytes, now.InBytes, 4);
        Fold(ref _outBytesScaled, ref _lastOutBytes, now.OutBytes, 4);
    }

    /// <summary>ip_vs_zero_estimator: the rates go to 0 and the next period starts from <paramref name="now"/>.</summary>
    public void Reset(in TrafficCounters now)
    {
        _lastConnections = now.Connections;
        _lastInPackets = now.InPackets;
        _lastOutPackets = now.OutPackets;
        _lastInBytes = now.InBytes;
        _lastOutBytes = now.OutBytes;
        _connectionsScaled = 0;
        _inPacketsScaled = 0;
        _outPacketsScaled = 0;
        _inBytesScaled = 0;
        _outBytesScaled = 0;
    }

    /// <summary>ip_vs_read_estimator: back from fixed point, rounding half up.</summary>
    public readonly TrafficRates Read() => new(
        (_connectionsScaled + 0x1FF) >> 10,
        (_inPacketsScaled + 0x1FF) >> 10,
        (_outPacketsScaled + 0x1FF) >> 10,
        (_inBytesScaled + 0xF) >> 5,
        (_outBytesScaled + 0xF) >> 5);

    private static void Fold(ref long average, ref long last, long now, int shift)
    {
        long rate = (now - last) << shift;
        last = now;
        // An arithmetic shift of the signed difference, as the kernel's ((s64)rate - (s64)avg) >> 2.
        average += (rate - average) >> 2;
    }
}
