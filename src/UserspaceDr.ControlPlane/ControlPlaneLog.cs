using Microsoft.Extensions.Logging;

namespace UserspaceDr.ControlPlane;

/// <summary>Every message the control plane (configuration, checkers) logs; event ids from 100, apart from the data plane's.</summary>
public static partial class ControlPlaneLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "config: {Warning}")]
    public static partial void ConfigWarning(ILogger logger, string warning);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "real server {Server} of {Service} is down: {Checker} {Reason}")]
    public static partial void ServerDown(ILogger logger, string server, string service, string checker, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Information, Message = "real server {Server} of {Service} is up: {Reason}")]
    public static partial void ServerUp(ILogger logger, string server, string service, string reason);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "{Service} lost its quorum: live weight {Live} < {Quorum} - {Hysteresis}{Sorry}")]
    public static partial void QuorumLost(ILogger logger, string service, long live, int quorum, int hysteresis, string sorry);

    [LoggerMessage(EventId = 104, Level = LogLevel.Information, Message = "{Service} regained its quorum: live weight {Live} >= {Quorum} + {Hysteresis}")]
    public static partial void QuorumGained(ILogger logger, string service, long live, int quorum, int hysteresis);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "real server {Server} of {Service}: weight {Weight} ({Reason})")]
    public static partial void WeightChanged(ILogger logger, string server, string service, int weight, string reason);

    [LoggerMessage(EventId = 106, Level = LogLevel.Information, Message = "script {Script} ({Why}) exited {ExitCode}{Output}")]
    public static partial void ScriptFinished(ILogger logger, string script, string why, int exitCode, string output);

    [LoggerMessage(EventId = 107, Level = LogLevel.Error, Message = "the checkers' change was not applied: {Message}")]
    public static partial void PublishFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 108, Level = LogLevel.Information, Message = "health checks: {Checkers} checker(s) on {Servers} real server(s) of {Services} service(s); {Kept} kept from before the reload")]
    public static partial void CheckersStarted(ILogger logger, int checkers, int servers, int services, int kept);

    [LoggerMessage(EventId = 109, Level = LogLevel.Error, Message = "checker {Checker} of {Server} failed unexpectedly (counted as a failed check): {Message}")]
    public static partial void ProbeCrashed(ILogger logger, string checker, string server, string message);

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "config: lvs_sync_daemon {Interface}: the sync role cannot follow VRRP instance {Instance} without vrrp_notify_fifo in global_defs; running the backup daemon only")]
    public static partial void SyncBackupOnly(ILogger logger, string @interface, string instance);

    [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "config: lvs_sync_daemon {Interface}: {Reason}")]
    public static partial void SyncDaemonFailed(ILogger logger, string @interface, string reason);

    [LoggerMessage(EventId = 112, Level = LogLevel.Error, Message = "config: vrrp_notify_fifo {Path}: {Reason}; VRRP states are still read from {Kept}")]
    public static partial void VrrpFifoKept(ILogger logger, string path, string reason, string kept);
}
