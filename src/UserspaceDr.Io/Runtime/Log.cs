using Microsoft.Extensions.Logging;

namespace UserspaceDr.Io.Runtime;

/// <summary>Every message the data plane logs (source-generated; none is on the per-frame path).</summary>
public static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "udr serving {Services} service(s), {Servers} real server(s) on {Interface} ({Mac}, MTU {Mtu}) with {Workers} {Backend} worker(s)")]
    public static partial void Started(ILogger logger, int services, int servers, string @interface, string mac, int mtu, int workers, string backend);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "rules applied: {Summary}")]
    public static partial void RulesApplied(ILogger logger, string summary);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "reload refused, the running rules stay in force: {Reason}")]
    public static partial void ReloadRefused(ILogger logger, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "neighbour {Address} is at {Mac} ({What})")]
    public static partial void NeighborLearned(ILogger logger, string address, string mac, string what);

    [LoggerMessage(EventId = 5, Level = LogLevel.Warning, Message = "neighbour {Address} does not answer ARP on {Interface}; its frames are counted as neighbor-unresolved")]
    public static partial void NeighborUnresolved(ILogger logger, string address, string @interface);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "dropped {Count} frame(s) in the last {Seconds} s: {Reasons}")]
    public static partial void Drops(ILogger logger, long count, int seconds, string reasons);

    [LoggerMessage(EventId = 7, Level = LogLevel.Error, Message = "ARP resolver: {Message}")]
    public static partial void ResolverError(ILogger logger, string message);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "kernel isolation: nftables table netdev {Table} drops service traffic for the host stack")]
    public static partial void Isolated(ILogger logger, string table);

    [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "stopped; totals: {Totals}")]
    public static partial void Stopped(ILogger logger, string totals);

    [LoggerMessage(EventId = 10, Level = LogLevel.Error, Message = "worker {Worker} failed: {Message}")]
    public static partial void WorkerFailed(ILogger logger, int worker, string message);

    [LoggerMessage(EventId = 12, Level = LogLevel.Critical, Message = "cannot start: {Message}")]
    public static partial void StartFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 13, Message = "preflight {Status}: {Check}: {Detail}{Fix}")]
    public static partial void Preflight(ILogger logger, LogLevel level, string status, string check, string detail, string fix);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "transmit errors in the last {Seconds} s: {Count} (last errno {Errno})")]
    public static partial void TransmitErrors(ILogger logger, long count, int seconds, int errno);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "real server {Address} is unreachable through udr's links, its frames are counted as neighbor-unresolved: {Problem}")]
    public static partial void RouteUnusable(ILogger logger, string address, string problem);

    [LoggerMessage(EventId = 15, Level = LogLevel.Information, Message = "route to {Address} changed: {Before} -> {After}")]
    public static partial void RouteChanged(ILogger logger, string address, string before, string after);

    [LoggerMessage(EventId = 16, Level = LogLevel.Information, Message = "link {Link}: {Interface} ({Mac}, MTU {Mtu}, address {Address})")]
    public static partial void LinkServed(ILogger logger, int link, string @interface, string mac, int mtu, string address);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "data plane: {State}")]
    public static partial void TrafficSelected(ILogger logger, string state);

    [LoggerMessage(EventId = 17, Level = LogLevel.Warning, Message = "SYN flood defense in the last {Seconds} s: {Evicted} half-open connection(s) evicted for new ones (drop_entry), {Shortened} new connection(s) given the short SYN_RECV timeout (secure_tcp)")]
    public static partial void Defense(ILogger logger, long evicted, long shortened, int seconds);

    [LoggerMessage(EventId = 18, Level = LogLevel.Information, Message = "{Service} {Scheduler} lookup table digest {Digest} (the same on every balancer with these rules)")]
    public static partial void SchedulerTable(ILogger logger, string service, string scheduler, string digest);

    [LoggerMessage(EventId = 19, Level = LogLevel.Information, Message = "{Vip} {What}: device {Device} {Why}")]
    public static partial void Announcement(ILogger logger, string vip, string what, string device, string why);

    [LoggerMessage(EventId = 20, Level = LogLevel.Error, Message = "{Vip} not announced: {Reason}")]
    public static partial void AnnouncementFailed(ILogger logger, string vip, string reason);

    [LoggerMessage(EventId = 22, Level = LogLevel.Information, Message = "real server {Address} is on the balancer itself: its frames go unchanged to this host's stack through {Device}")]
    public static partial void LocalServer(ILogger logger, string address, string device);

    [LoggerMessage(EventId = 23, Level = LogLevel.Warning, Message = "local real servers: {Warning}")]
    public static partial void LocalDeliveryWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 24, Level = LogLevel.Information, Message = "{Thread} runs on CPU {Cpu}")]
    public static partial void WorkerPinned(ILogger logger, string thread, int cpu);

    [LoggerMessage(EventId = 25, Level = LogLevel.Warning, Message = "{Thread} could not be pinned to CPU {Cpu} ({Reason}); it runs where the scheduler puts it")]
    public static partial void WorkerNotPinned(ILogger logger, string thread, int cpu, string reason);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "{Thread} busy polling: {Hits} turn(s) took frames without a wake-up, {Misses} spun to the end of the window and slept")]
    public static partial void BusyPolled(ILogger logger, string thread, long hits, long misses);

    /// <summary>What a worker's busy polling bought, when it is on (the worker's last words).</summary>
    public static void BusyPolled(ILogger logger, Linux.Host.BusyPoll poll)
    {
        ArgumentNullException.ThrowIfNull(poll);
        if (poll.Enabled)
        {
            BusyPolled(logger, Thread.CurrentThread.Name ?? "worker", poll.Hits, poll.Misses);
        }
    }

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "garbage collector: {Gen0} gen0, {Gen1} gen1, {Gen2} gen2 collections, {PausedMs} ms paused in all, {AllocatedMiB} MiB allocated")]
    public static partial void Collector(ILogger logger, int gen0, int gen1, int gen2, long pausedMs, long allocatedMiB);
}
