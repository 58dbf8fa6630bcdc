using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Metrics;

/// <summary>
/// What <see cref="UdrMetrics"/> reads at each scrape, on the scraping thread. Every source is a copy or a plain read of
/// fields their writers own (the workers' counters, the statistics' lock, the checkers' gate): nothing here makes a
/// worker wait. The optional ones are the capabilities a daemon may run without (checkers, VRRP, sync).
/// </summary>
public sealed record MetricsSources(Func<RuleSet> Rules, TrafficStatistics Statistics, Func<IReadOnlyList<WorkerReading>> Workers)
{
    /// <summary>Each real server and whether its next hop's MAC is known.</summary>
    public Func<IReadOnlyList<(InetAddress Server, bool Resolved)>>? Neighbors { get; init; }

    /// <summary>keepalived.conf's checkers, when the daemon runs them.</summary>
    public Func<IReadOnlyList<CheckerStatus>>? Checkers { get; init; }

    /// <summary>The VRRP roles keepalived reported through vrrp_notify_fifo.</summary>
    public Func<IReadOnlyList<(string Instance, VrrpRole Role)>>? VrrpRoles { get; init; }

    /// <summary>Connection sync, both daemons' counts since the daemon started.</summary>
    public Func<SyncReading>? Sync { get; init; }
}

/// <summary>
/// Connection sync's counts since udr started (a daemon stopped and started again adds to them): what a master sent,
/// what a backup received by outcome (<c>read</c> or why it was rejected), and what the workers did with each entry.
/// </summary>
public sealed record SyncReading(long MessagesSent, long EntriesSent, IReadOnlyDictionary<string, long> MessagesReceived,
    long EntriesReceived, IReadOnlyDictionary<string, long> EntriesApplied, long OutboxOverflows);
