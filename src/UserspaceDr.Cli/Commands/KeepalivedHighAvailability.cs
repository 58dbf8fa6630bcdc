using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// keepalived.conf's high-availability half as udr runs it: the VRRP states read from <c>vrrp_notify_fifo</c> and the
/// <c>lvs_sync_daemon</c> role that follows them. <see cref="Apply"/> runs a configuration at start and again on each
/// SIGHUP, where only what changed is redone: a changed lvs_sync_daemon (or syncid) restarts the sync daemons in the
/// role keepalived last reported, a changed FIFO path moves the reader; an unchanged one keeps running untouched.
/// </summary>
internal sealed class KeepalivedHighAvailability(IpvsadmExecutor ipvsadm, ILoggerFactory loggers) : IDisposable
{
    private readonly ILogger _log = loggers.CreateLogger("udr");
    private readonly Lock _gate = new();
    private KeepalivedSync? _sync;
    private VrrpRoleReader? _vrrp;
    private string? _fifo;

    /// <summary>
    /// Runs <paramref name="config"/>'s FIFO reader and sync daemons. At start (<paramref name="reload"/> false) a FIFO
    /// that cannot be made or opened throws <see cref="HostException"/>; on a reload it is logged and the reader of the
    /// previous path stays.
    /// </summary>
    public void Apply(KeepalivedConfig config, bool reload)
    {
        ArgumentNullException.ThrowIfNull(config);
        string? fifo = config.Globals.VrrpNotifyFifo;
        if (fifo != _fifo)
        {
            try
            {
                VrrpRoleReader? reader = fifo is null ? null : new VrrpRoleReader(fifo, OnRole, loggers.CreateLogger("udr.vrrp"));
                reader?.Start();
                _vrrp?.Dispose();
                (_vrrp, _fifo) = (reader, fifo);
            }
            catch (HostException e) when (reload)
            {
                ControlPlaneLog.VrrpFifoKept(_log, fifo ?? "", e.Message, _fifo ?? "(none)");
            }
        }

        LvsSyncDaemon? daemon = config.Globals.SyncDaemon;
        lock (_gate)
        {
            if (_sync?.RunsAs(config, daemon) == true || (_sync is null && daemon is null))
            {
                return;
            }
            _sync?.Stop();
            _sync = daemon is null ? null : new KeepalivedSync(ipvsadm, config, daemon, _log);
            _sync?.Start();
            // keepalived reports transitions only: a restarted daemon takes the role last reported for its instance.
            if (daemon?.Instance is { } instance && _vrrp?.RoleOf(instance) is VrrpRole.Master)
            {
                _sync!.OnRole(instance, VrrpRole.Master);
            }
        }
    }

    /// <summary>A transition from the FIFO's thread; never between a reload's stop and start.</summary>
    private void OnRole(string instance, VrrpRole role)
    {
        lock (_gate)
        {
            _sync?.OnRole(instance, role);
        }
    }

    /// <summary>The VRRP roles keepalived reported through the FIFO (none without one).</summary>
    public IReadOnlyList<(string Instance, VrrpRole Role)> VrrpRoles() => _vrrp?.Roles() ?? [];

    public void Dispose() => _vrrp?.Dispose();
}
