using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane.Sync;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// The running <see cref="DataPlane"/> as ipvsadm's commands see it: rule changes go through its hitless reload,
/// --set through its timeout snapshot, counters are summed over the workers at read time, and the rate estimator
/// (<see cref="TrafficStatistics"/>) is sampled by a timer every 2 seconds, as the kernel's estimation timer.
/// </summary>
internal sealed class DataPlaneBackend : IIpvsBackend, IDisposable
{
    private static readonly TimeSpan ConnectionSnapshotTimeout = TimeSpan.FromSeconds(2);

    private readonly DataPlane _plane;
    private readonly TrafficStatistics _statistics;
    private readonly Timer _estimator;
    private readonly ILogger _log;
    private SyncBackupReceiver? _backup;

    public DataPlaneBackend(DataPlane plane, ILogger log)
    {
        _plane = plane;
        _log = log;
        _statistics = new TrafficStatistics(plane.Traffic);
        _statistics.Sync(plane.Rules);
        TimeSpan period = TimeSpan.FromSeconds(RateEstimator.PeriodSeconds);
        _estimator = new Timer(_ => _statistics.Sample(_plane.Rules), null, period, period);
    }

    public RuleSetSpec Rules => _plane.Rules.Spec;

    public void Publish(RuleSetSpec rules)
    {
        _plane.Reload(rules);
        _statistics.Sync(_plane.Rules);
    }

    public IpvsTimeouts Timeouts
    {
        get
        {
            Timeouts timeouts = _plane.Timeouts;
            return new IpvsTimeouts(timeouts.Tcp, timeouts.TcpFin, timeouts.Udp);
        }
    }

    public void SetTimeouts(IpvsTimeouts timeouts) =>
        _plane.Timeouts = _plane.Timeouts.With(timeouts.Tcp, timeouts.TcpFin, timeouts.Udp);

    public IpvsState State()
    {
        RuleSet rules = _plane.Rules;
        var services = new List<VirtualServiceState>(rules.Services.Length);
        foreach (ServiceStatistics service in _statistics.Read(rules))
        {
            VirtualServiceSpec spec = rules.Spec.Services.First(s =>
                s.SameService(service.Service.Protocol, service.Service.Address, service.Service.Port));
            var servers = new List<RealServerState>(service.Servers.Length);
            foreach (ServerStatistics server in service.Servers)
            {
                RealServer live = server.Server;
                RealServerSpec serverSpec = spec.RealServers.First(r => r.Address == live.Address && r.Port == live.Port);
                servers.Add(new RealServerState(serverSpec)
                {
                    ActiveConnections = live.ActiveConnections,
                    InactiveConnections = live.InactiveConnections,
                    PersistentConnections = live.PersistentConnections,
                    Stats = server.Counters,
                    Rates = server.Rates,
                });
            }
            services.Add(new VirtualServiceState(spec) { RealServers = [.. servers], Stats = service.Counters, Rates = service.Rates });
        }
        return new IpvsState([.. services]) { ConnectionTableSize = _plane.ConnectionCapacity };
    }

    public void Zero(VirtualServiceSpec? service)
    {
        RuleSet rules = _plane.Rules;
        VirtualService? only = service is null
            ? null
            : rules.Services.FirstOrDefault(s => service.SameService(s.Protocol, s.Address, s.Port));
        if (service is null || only is not null)
        {
            _statistics.Zero(rules, only);
        }
    }

    public IReadOnlyList<IpvsConnection> Connections()
    {
        List<Connection> entries = _plane.SnapshotConnections(ConnectionSnapshotTimeout);
        long now = Environment.TickCount64;
        var connections = new List<IpvsConnection>(entries.Count);
        foreach (Connection entry in entries)
        {
            var protocol = (ServiceProtocol)entry.Protocol;
            string state = entry.IsTemplate
                ? ((entry.Flags & ConnectionFlags.Assured) != 0 ? "ASSURED" : "NONE")
                : protocol == ServiceProtocol.Tcp ? TcpStateMachine.Name(entry.State) : "UDP";
            connections.Add(new IpvsConnection(protocol, state, entry.ClientAddress, entry.ClientPort, entry.VirtualAddress,
                entry.VirtualPort, entry.DestAddress, entry.DestPort, (entry.ExpiresAtMs - now) / 1000));
        }
        // The kernel lists its hash table in bucket order; a stable order reads better and tests better.
        connections.Sort((a, b) =>
        {
            int order = a.VirtualAddress.CompareTo(b.VirtualAddress);
            order = order != 0 ? order : a.VirtualPort.CompareTo(b.VirtualPort);
            order = order != 0 ? order : a.Protocol.CompareTo(b.Protocol);
            order = order != 0 ? order : a.ClientAddress.CompareTo(b.ClientAddress);
            return order != 0 ? order : a.ClientPort.CompareTo(b.ClientPort);
        });
        return connections;
    }

    /// <summary>
    /// --start-daemon backup: receives IPVS sync messages on the interface and enters their connections in the
    /// workers' tables. The master role (sending) is not built yet and is refused.
    /// </summary>
    public string? StartDaemon(SyncDaemonSettings settings)
    {
        if (settings.Role == SyncDaemonRole.Master)
        {
            return "udr cannot be a sync master yet: only --start-daemon backup is implemented";
        }
        if (_backup is not null)
        {
            return RuleSetEditor.DaemonRunning;
        }
        if (settings.McastGroup is { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 })
        {
            return "udr's sync daemon uses IPv4 multicast for now (--mcast-group)";
        }
        SyncBackupReceiver receiver;
        try
        {
            SyncDaemonConfig config = SyncBackupReceiver.Complete(settings.McastInterface, (byte)settings.SyncId, settings.McastGroup,
                (ushort)settings.McastPort, (byte)settings.McastTtl, settings.SyncMaxLength);
            receiver = new SyncBackupReceiver(config, connections => _plane.ApplySync(connections), _log);
            receiver.Start();
        }
        catch (ArgumentException)
        {
            return "No such device"; // ipvs_strerror(ENODEV) for an unknown --mcast-interface
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return e.Message;
        }
        _backup = receiver;
        return null;
    }

    public string? StopDaemon(SyncDaemonRole role)
    {
        if (role != SyncDaemonRole.Backup || _backup is null)
        {
            return RuleSetEditor.NoDaemon;
        }
        _backup.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _backup = null;
        return null;
    }

    public IReadOnlyList<SyncDaemonStatus> Daemons() => _backup is { Config: var c }
        ? [new SyncDaemonStatus(SyncDaemonRole.Backup, c.Interface, c.SyncId, c.MaxLength, c.Group, c.Port, c.Ttl)]
        : [];

    public void Dispose()
    {
        _estimator.Dispose();
        _backup?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
