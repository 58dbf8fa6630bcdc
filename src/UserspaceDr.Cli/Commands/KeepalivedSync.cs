using System.Globalization;
using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.ControlPlane.Vrrp;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// keepalived.conf's <c>lvs_sync_daemon</c>, run as keepalived runs it: without a VRRP instance, both daemons (as
/// ipvsadm --start-daemon master and backup); with one, the master daemon while the instance is MASTER and the
/// backup daemon otherwise (and before keepalived has said anything), switched as keepalived reports transitions.
/// Every start and stop goes through the same serialised ipvsadm path as `udr adm --start-daemon`.
/// </summary>
internal sealed class KeepalivedSync(IpvsadmExecutor ipvsadm, KeepalivedConfig config, LvsSyncDaemon daemon, ILogger log)
{
    /// <summary>What this sync runs: the daemon's settings and the syncid they come to (which may be its instance's).</summary>
    public (LvsSyncDaemon Daemon, int SyncId) Settings { get; } = (daemon, KeepalivedRules.SyncIdOf(config, daemon));

    /// <summary>True when <paramref name="other"/> would run exactly these daemons (where in the file it is written aside).</summary>
    public bool RunsAs(KeepalivedConfig other, LvsSyncDaemon? otherDaemon) =>
        otherDaemon is not null && otherDaemon with { Place = daemon.Place } == daemon && KeepalivedRules.SyncIdOf(other, otherDaemon) == Settings.SyncId &&
        (other.Globals.VrrpNotifyFifo is null) == (config.Globals.VrrpNotifyFifo is null);

    public void Start()
    {
        if (daemon.Instance is null)
        {
            Run("--start-daemon", "master");
            Run("--start-daemon", "backup");
            return;
        }
        if (config.Globals.VrrpNotifyFifo is null)
        {
            ControlPlaneLog.SyncBackupOnly(log, daemon.Interface, daemon.Instance);
        }
        Run("--start-daemon", "backup");
    }

    /// <summary>A VRRP transition from keepalived: the instance's sync role follows it.</summary>
    public void OnRole(string instance, VrrpRole role)
    {
        if (instance != daemon.Instance)
        {
            return;
        }
        (string stop, string start) = role == VrrpRole.Master ? ("backup", "master") : ("master", "backup");
        Run("--stop-daemon", stop);
        Run("--start-daemon", start);
    }

    /// <summary>Stops whichever daemons run (a reload that changes lvs_sync_daemon, or removes it).</summary>
    public void Stop()
    {
        Run("--stop-daemon", "master");
        Run("--stop-daemon", "backup");
    }

    private void Run(string command, string role)
    {
        var args = new List<string> { command, role };
        if (command == "--start-daemon")
        {
            args.AddRange(["--mcast-interface", daemon.Interface, "--syncid", Settings.SyncId.ToString(CultureInfo.InvariantCulture)]);
            if (daemon.Group is not null)
            {
                args.AddRange(["--mcast-group", daemon.Group.ToString()]);
            }
            AddIfGiven(args, "--mcast-port", daemon.Port);
            AddIfGiven(args, "--mcast-ttl", daemon.Ttl);
            AddIfGiven(args, "--sync-maxlen", daemon.MaxLength);
        }
        IpvsadmOutcome outcome = ipvsadm.Execute("udr", args);
        // Starting what runs or stopping what does not is where a transition finds it: not a failure.
        if (outcome.ExitCode != 0 && !outcome.Stderr.Contains(RuleSetEditor.DaemonRunning, StringComparison.Ordinal) &&
            !outcome.Stderr.Contains(RuleSetEditor.NoDaemon, StringComparison.Ordinal))
        {
            ControlPlaneLog.SyncDaemonFailed(log, daemon.Interface, outcome.Stderr.Trim());
        }
    }

    private static void AddIfGiven(List<string> args, string option, int value)
    {
        if (value != 0)
        {
            args.AddRange([option, value.ToString(CultureInfo.InvariantCulture)]);
        }
    }
}
