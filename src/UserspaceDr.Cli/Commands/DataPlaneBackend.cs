using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.Core;
using UserspaceDr.ControlPlane.Sync;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Metrics;

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
    private SyncMasterSender? _master;
    private readonly SyncTotals _stoppedDaemons = new(); // what daemons counted before they were stopped

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

    /// <summary>
    /// The mark rules of --fwmark-rules, stamped on every rule set published (by udr adm, -R, the health checkers):
    /// they are the site's firewall's, not ipvsadm's, and change only when the file is read again.
    /// </summary>
    public FirewallMarkRules MarkRules { get; set; } = FirewallMarkRules.None;

    /// <summary>The counters and rates ipvsadm --stats and --rate print (and the metrics export).</summary>
    public TrafficStatistics Statistics => _statistics;

    /// <summary>Connection sync's counts since udr started, the running daemons' and the stopped ones' together.</summary>
    public SyncReading ReadSync()
    {
        var totals = new SyncTotals();
        lock (_stoppedDaemons)
        {
            totals.Add(_stoppedDaemons);
            totals.Add(_master);
            totals.Add(_backup);
        }
        return new SyncReading(totals.MessagesSent, totals.EntriesSent,
            Enum.GetValues<SyncMessageOutcome>().ToDictionary(KebabCase.Of, o => totals.Received[(int)o]), totals.EntriesReceived,
            Enum.GetValues<SyncApplyOutcome>().ToDictionary(KebabCase.Of, _plane.SyncCount), _plane.SyncOverflows);
    }

    public void Publish(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        _plane.Reload(rules with { MarkRules = MarkRules });
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
                s.SameService(service.Service.Protocol, service.Service.Address, service.Service.Port, service.Service.FirewallMark));
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
            : rules.Services.FirstOrDefault(s => service.SameService(s.Protocol, s.Address, s.Port, s.FirewallMark));
        if (service is null || only is not null)
        {
            _statistics.Zero(rules, only);
        }
    }

    public IReadOnlyList<IpvsConnection> Connections()
    {
        ConnectionSnapshot entries = _plane.SnapshotConnections(ConnectionSnapshotTimeout);
        long now = Environment.TickCount64;
        var connections = new List<IpvsConnection>(entries.Count);
        connections.AddRange(entries.Ipv4.Select(entry => Listed(entry, now)));
        connections.AddRange(entries.Ipv6.Select(entry => Listed(entry, now)));
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

    /// <summary>One connection as ipvsadm -L -c lists it (a template's state is ASSURED or NONE, as the kernel's).</summary>
    private static IpvsConnection Listed<TAddress>(Connection<TAddress> entry, long now)
        where TAddress : unmanaged, IEquatable<TAddress>
    {
        var protocol = (ServiceProtocol)entry.Protocol;
        string state = entry.IsTemplate
            ? ((entry.Flags & ConnectionFlags.Assured) != 0 ? "ASSURED" : "NONE")
            : protocol == ServiceProtocol.Tcp ? TcpStateMachine.Name(entry.State) : "UDP";
        return new IpvsConnection(protocol, state, AddressBits.ToInet(entry.ClientAddress), entry.ClientPort,
            AddressBits.ToInet(entry.VirtualAddress), entry.VirtualPort, AddressBits.ToInet(entry.DestAddress), entry.DestPort, (entry.ExpiresAtMs - now) / 1000);
    }

    /// <summary>
    /// --start-daemon master: the workers post connections as IPVS's master would sync them and a sender multicasts
    /// them; --start-daemon backup: receives sync messages on the interface and enters their connections in the
    /// workers' tables. Both may run at once, as in the kernel.
    /// </summary>
    public string? StartDaemon(SyncDaemonSettings settings)
    {
        bool master = settings.Role == SyncDaemonRole.Master;
        if (master ? _master is not null : _backup is not null)
        {
            return RuleSetEditor.DaemonRunning;
        }
        try
        {
            SyncDaemonConfig config = SyncDaemonConfig.Complete(settings.McastInterface, master, (byte)settings.SyncId, settings.McastGroup,
                (ushort)settings.McastPort, (byte)settings.McastTtl, settings.SyncMaxLength);
            if (master)
            {
                var sender = new SyncMasterSender(config, _plane.DrainSync, _log);
                sender.Start();
                _master = sender;
                _plane.EnableSyncMaster(true);
            }
            else
            {
                var receiver = new SyncBackupReceiver(config, connections => _plane.ApplySync(connections), _log);
                receiver.Start();
                _backup = receiver;
                if (_plane.BackupOnly)
                {
                    _plane.Standby = true;
                }
            }
        }
        catch (ArgumentException)
        {
            return "No such device"; // ipvs_strerror(ENODEV) for an unknown --mcast-interface
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return e.Message;
        }
        return null;
    }

    public string? StopDaemon(SyncDaemonRole role)
    {
        if (role == SyncDaemonRole.Master && _master is not null)
        {
            _plane.EnableSyncMaster(false);
            _master.DisposeAsync().AsTask().GetAwaiter().GetResult();
            lock (_stoppedDaemons) // with the field cleared, so that a reader never counts the daemon twice
            {
                _stoppedDaemons.Add(_master);
                _master = null;
            }
            return null;
        }
        if (role == SyncDaemonRole.Backup && _backup is not null)
        {
            if (_plane.BackupOnly)
            {
                _plane.Standby = false;
            }
            _backup.DisposeAsync().AsTask().GetAwaiter().GetResult();
            lock (_stoppedDaemons) // with the field cleared, so that a reader never counts the daemon twice
            {
                _stoppedDaemons.Add(_backup);
                _backup = null;
            }
            return null;
        }
        return RuleSetEditor.NoDaemon;
    }

    /// <summary>Master first, as the kernel lists them.</summary>
    public IReadOnlyList<SyncDaemonStatus> Daemons()
    {
        var daemons = new List<SyncDaemonStatus>(2);
        if (_master is { Config: var m })
        {
            daemons.Add(new SyncDaemonStatus(SyncDaemonRole.Master, m.Interface, m.SyncId, m.MaxLength, m.Group, m.Port, m.Ttl));
        }
        if (_backup is { Config: var b })
        {
            daemons.Add(new SyncDaemonStatus(SyncDaemonRole.Backup, b.Interface, b.SyncId, b.MaxLength, b.Group, b.Port, b.Ttl));
        }
        return daemons;
    }

    public void Dispose()
    {
        _estimator.Dispose();
        StopDaemon(SyncDaemonRole.Master);
        StopDaemon(SyncDaemonRole.Backup);
    }
}

/// <summary>Sync daemons' counts added up (a daemon's own start from 0 when it starts).</summary>
internal sealed class SyncTotals
{
    public long MessagesSent;
    public long EntriesSent;
    public long EntriesReceived;
    public readonly long[] Received = new long[Enum.GetValues<SyncMessageOutcome>().Length];

    public void Add(SyncTotals other)
    {
        MessagesSent += other.MessagesSent;
        EntriesSent += other.EntriesSent;
        EntriesReceived += other.EntriesReceived;
        for (int i = 0; i < Received.Length; i++)
        {
            Received[i] += other.Received[i];
        }
    }

    public void Add(SyncMasterSender? master)
    {
        MessagesSent += master?.MessagesSent ?? 0;
        EntriesSent += master?.EntriesSent ?? 0;
    }

    public void Add(SyncBackupReceiver? backup)
    {
        if (backup is null)
        {
            return;
        }
        EntriesReceived += backup.Entries;
        foreach (SyncMessageOutcome outcome in Enum.GetValues<SyncMessageOutcome>())
        {
            Received[(int)outcome] += backup.Messages(outcome);
        }
    }
}
