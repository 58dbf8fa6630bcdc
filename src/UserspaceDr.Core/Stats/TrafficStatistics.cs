using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Stats;

/// <summary>
/// A real server's counters and rates as ipvsadm shows them (since the last -Z), and its counters since it was made
/// (<paramref name="Lifetime"/>: never zeroed, what a Prometheus counter needs).
/// </summary>
public readonly record struct ServerStatistics(RealServer Server, TrafficCounters Counters, TrafficRates Rates, TrafficCounters Lifetime);

/// <summary>A virtual service's counters and rates (all its servers, deleted ones included) and its servers'.</summary>
public sealed record ServiceStatistics(VirtualService Service, TrafficCounters Counters, TrafficRates Rates,
    ImmutableArray<ServerStatistics> Servers, TrafficCounters Lifetime);

/// <summary>
/// The counters ipvsadm --stats and --rate print, per service and per real server, over per-worker counters that
/// only their workers write. The kernel keeps a service's counters apart from its servers' (a deleted server's
/// traffic stays in its service's totals); here a service's counters are the sum over its current servers plus what
/// its deleted servers had counted when they left (<see cref="Sync"/> notices rule-set changes). -Z never writes the
/// workers' memory: it records the current values as a baseline that readers subtract, as the kernel's kstats0.
/// Rates come from one <see cref="RateEstimator"/> per service and per server, sampled by <see cref="Sample"/>
/// every <see cref="RateEstimator.PeriodSeconds"/> seconds. Thread-safe (one lock; nothing here is on a frame path).
/// </summary>
public sealed class TrafficStatistics
{
    private readonly Func<RealServer, TrafficCounters> _read;
    private readonly Lock _lock = new();
    private readonly Dictionary<(ServiceProtocol, InetAddress, ushort), ServiceEntry> _services = [];
    private readonly ConditionalWeakTable<RealServer, ServerEntry> _servers = [];
    private TrafficCounters _removedServices; // what services counted before they were deleted, for the all-time totals
    private RuleSet? _seen;

    /// <param name="read">Sums one server's counters over every worker (the raw, never-zeroed totals).</param>
    public TrafficStatistics(Func<RealServer, TrafficCounters> read)
    {
        ArgumentNullException.ThrowIfNull(read);
        _read = read;
    }

    /// <summary>Takes note of a new rule set: servers that left a service hand their counts to its totals.</summary>
    public void Sync(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            SyncLocked(rules);
        }
    }

    /// <summary>One estimator period has passed (the kernel's 2 s timer).</summary>
    public void Sample(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            SyncLocked(rules);
            foreach (VirtualService service in rules.Services)
            {
                ServiceEntry entry = _services[Key(service)];
                entry.Estimator.Sample(Raw(entry));
                foreach (RealServer server in service.Destinations)
                {
                    ServerEntry serverEntry = Server(server);
                    serverEntry.Estimator.Sample(_read(server));
                }
            }
        }
    }

    /// <summary>
    /// -Z: counters and rates of every service and server (or of one service and its servers) start again from 0.
    /// </summary>
    public void Zero(RuleSet rules, VirtualService? only = null)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            SyncLocked(rules);
            foreach (VirtualService service in rules.Services)
            {
                if (only is not null && Key(only) != Key(service))
                {
                    continue;
                }
                ServiceEntry entry = _services[Key(service)];
                TrafficCounters raw = Raw(entry);
                entry.Baseline = raw;
                entry.Estimator.Reset(raw);
                foreach (RealServer server in service.Destinations)
                {
                    ServerEntry serverEntry = Server(server);
                    TrafficCounters serverRaw = _read(server);
                    serverEntry.Baseline = serverRaw;
                    serverEntry.Estimator.Reset(serverRaw);
                }
            }
        }
    }

    /// <summary>Every service of <paramref name="rules"/>, in its order, with its servers in theirs.</summary>
    public ImmutableArray<ServiceStatistics> Read(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            SyncLocked(rules);
            var services = ImmutableArray.CreateBuilder<ServiceStatistics>(rules.Services.Length);
            foreach (VirtualService service in rules.Services)
            {
                ServiceEntry entry = _services[Key(service)];
                var servers = ImmutableArray.CreateBuilder<ServerStatistics>(service.Destinations.Length);
                foreach (RealServer server in service.Destinations)
                {
                    ServerEntry serverEntry = Server(server);
                    TrafficCounters serverRaw = _read(server);
                    servers.Add(new ServerStatistics(server, Since(serverRaw, serverEntry.Baseline), serverEntry.Estimator.Read(), serverRaw));
                }
                TrafficCounters raw = Raw(entry);
                services.Add(new ServiceStatistics(service, Since(raw, entry.Baseline), entry.Estimator.Read(), servers.MoveToImmutable(), raw));
            }
            return services.MoveToImmutable();
        }
    }

    /// <summary>
    /// Everything every service has counted since the daemon started, deleted services included and -Z ignored: the
    /// kernel's /proc/net/ip_vs_stats totals as a monotonic counter (a scraper sees a reset only when udr restarts).
    /// </summary>
    public TrafficCounters AllTime(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_lock)
        {
            SyncLocked(rules);
            TrafficCounters total = _removedServices;
            foreach (ServiceEntry entry in _services.Values)
            {
                total.Add(Raw(entry));
            }
            return total;
        }
    }

    private void SyncLocked(RuleSet rules)
    {
        if (ReferenceEquals(rules, _seen))
        {
            return;
        }
        var present = new HashSet<(ServiceProtocol, InetAddress, ushort)>();
        foreach (VirtualService service in rules.Services)
        {
            (ServiceProtocol, InetAddress, ushort) key = Key(service);
            present.Add(key);
            var members = new HashSet<RealServer>(service.Destinations, ReferenceEqualityComparer.Instance);
            if (!_services.TryGetValue(key, out ServiceEntry? entry))
            {
                // A new service counts what its servers counted since they were made, except a server seen before
                // (reinstated from the trash into a service added again): the kernel starts a new service from 0.
                entry = new ServiceEntry { Members = members };
                foreach (RealServer member in members)
                {
                    if (_servers.TryGetValue(member, out _))
                    {
                        entry.Retired.Subtract(_read(member));
                    }
                }
                entry.Estimator = RateEstimator.StartingAt(Raw(entry));
                _services.Add(key, entry);
            }
            else
            {
                foreach (RealServer left in entry.Members)
                {
                    if (!members.Contains(left))
                    {
                        entry.Retired.Add(_read(left));
                    }
                }
                foreach (RealServer joined in members)
                {
                    if (!entry.Members.Contains(joined))
                    {
                        // 0 for a new server; a reinstated one takes its counts back out of the retired totals.
                        entry.Retired.Subtract(_read(joined));
                    }
                }
                entry.Members = members;
            }
            foreach (RealServer server in service.Destinations)
            {
                Server(server);
            }
        }
        foreach ((ServiceProtocol, InetAddress, ushort) key in _services.Keys.ToArray())
        {
            if (!present.Contains(key))
            {
                _removedServices.Add(Raw(_services[key]));
                _services.Remove(key);
            }
        }
        _seen = rules;
    }

    private ServerEntry Server(RealServer server) =>
        _servers.GetValue(server, s => new ServerEntry { Estimator = RateEstimator.StartingAt(_read(s)) });

    private TrafficCounters Raw(ServiceEntry entry)
    {
        TrafficCounters total = entry.Retired;
        foreach (RealServer server in entry.Members)
        {
            total.Add(_read(server));
        }
        return total;
    }

    private static TrafficCounters Since(TrafficCounters now, TrafficCounters baseline)
    {
        TrafficCounters shown = now;
        shown.Subtract(baseline);
        // A reader may see one worker's counter a moment before another's; never show less than nothing.
        shown.Connections = Math.Max(0, shown.Connections);
        shown.InPackets = Math.Max(0, shown.InPackets);
        shown.InBytes = Math.Max(0, shown.InBytes);
        shown.OutPackets = Math.Max(0, shown.OutPackets);
        shown.OutBytes = Math.Max(0, shown.OutBytes);
        return shown;
    }

    private static (ServiceProtocol, InetAddress, ushort) Key(VirtualService service) => (service.Protocol, service.Address, service.Port);

    private sealed class ServiceEntry
    {
        public required HashSet<RealServer> Members;
        public TrafficCounters Retired;
        public TrafficCounters Baseline;
        public RateEstimator Estimator;
    }

    private sealed class ServerEntry
    {
        public TrafficCounters Baseline;
        public RateEstimator Estimator;
    }
}
