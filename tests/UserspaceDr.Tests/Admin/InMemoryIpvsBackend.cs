using System.Globalization;
using UserspaceDr.Admin;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

/// <summary>
/// A stand-in for the running data plane: holds the published rules, lets a test set what the listings show
/// (connection counts, counters, rates, connection entries) and records -Z and --set.
/// </summary>
public sealed class InMemoryIpvsBackend : IIpvsBackend
{
    private readonly Dictionary<string, Func<VirtualServiceState, VirtualServiceState>> _services = [];
    private readonly Dictionary<string, Func<RealServerState, RealServerState>> _servers = [];

    public RuleSetSpec Rules { get; private set; } = RuleSetSpec.Empty;

    private readonly List<SyncDaemonStatus> _daemons = [];

    /// <summary>Whether --start-daemon works here (the default is the interface's refusal).</summary>
    public bool RunsDaemons { get; init; }

    public string? StartDaemon(SyncDaemonSettings settings)
    {
        if (!RunsDaemons)
        {
            return "udr has no connection sync daemon here";
        }
        if (_daemons.Any(d => d.Role == settings.Role))
        {
            return RuleSetEditor.DaemonRunning;
        }
        _daemons.Add(new SyncDaemonStatus(settings.Role, settings.McastInterface, settings.SyncId,
            settings.SyncMaxLength == 0 ? 1472 : settings.SyncMaxLength, settings.McastGroup ?? System.Net.IPAddress.Parse("224.0.0.81"),
            settings.McastPort == 0 ? 8848 : settings.McastPort, settings.McastTtl == 0 ? 1 : settings.McastTtl));
        _daemons.Sort((a, b) => a.Role.CompareTo(b.Role));
        return null;
    }

    public string? StopDaemon(SyncDaemonRole role) => _daemons.RemoveAll(d => d.Role == role) > 0 ? null : RuleSetEditor.NoDaemon;

    public IReadOnlyList<SyncDaemonStatus> Daemons() => _daemons;

    public IpvsTimeouts Timeouts { get; private set; } = new(900, 120, 300);

    public int Publishes { get; private set; }

    /// <summary>When set, the next publish throws it (as a refused nftables change would) and changes nothing.</summary>
    public Exception? RefuseNextPublish { get; set; }

    public List<IpvsConnection> ConnectionEntries { get; } = [];

    /// <summary>Each -Z: the service's "TCP a.b.c.d:port", or "*" for all.</summary>
    public List<string> Zeroed { get; } = [];

    public int ConnectionTableSize { get; set; } = IpvsState.DefaultConnectionTableSize;

    public void Publish(RuleSetSpec rules)
    {
        if (RefuseNextPublish is Exception refusal)
        {
            RefuseNextPublish = null;
            throw refusal;
        }
        Rules = rules;
        Publishes++;
    }

    public void SetTimeouts(IpvsTimeouts timeouts) => Timeouts = new IpvsTimeouts(
        timeouts.Tcp == 0 ? Timeouts.Tcp : timeouts.Tcp,
        timeouts.TcpFin == 0 ? Timeouts.TcpFin : timeouts.TcpFin,
        timeouts.Udp == 0 ? Timeouts.Udp : timeouts.Udp);

    public void Zero(VirtualServiceSpec? service) => Zeroed.Add(service is null ? "*" : Key(service));

    public IReadOnlyList<IpvsConnection> Connections() => ConnectionEntries;

    /// <summary>Changes what a service shows: <paramref name="service"/> is "TCP 198.18.0.100:80".</summary>
    public void Service(string service, Func<VirtualServiceState, VirtualServiceState> edit) => _services[service] = edit;

    /// <summary>Changes what a real server shows: "TCP 198.18.0.100:80", "198.18.0.11:80".</summary>
    public void Server(string service, string server, Func<RealServerState, RealServerState> edit) => _servers[service + " " + server] = edit;

    public IpvsState State()
    {
        IpvsState state = IpvsState.FromRules(Rules);
        return state with
        {
            ConnectionTableSize = ConnectionTableSize,
            Services = [.. state.Services.Select(service =>
            {
                string key = Key(service.Spec);
                VirtualServiceState shown = service with
                {
                    RealServers = [.. service.RealServers.Select(server =>
                        _servers.TryGetValue(key + " " + Address(server.Spec.Address, server.Spec.Port), out var edit) ? edit(server) : server)],
                };
                return _services.TryGetValue(key, out var editService) ? editService(shown) : shown;
            })],
        };
    }

    private static string Key(VirtualServiceSpec service) =>
        (service.Protocol == ServiceProtocol.Tcp ? "TCP " : "UDP ") + Address(service.Address, service.Port);

    private static string Address(InetAddress address, ushort port) =>
        address + ":" + port.ToString(CultureInfo.InvariantCulture);
}
