using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Prometheus;
using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Metrics;

/// <summary>
/// udr's Prometheus metrics (prometheus-net's registry and text exposition). Two groups:
/// <list type="bullet">
/// <item>node_exporter's IPVS families (collector/ipvs_linux.go) with its names, types, HELP text and labels, so a
/// dashboard built for kernel IPVS reads udr unchanged; a host without kernel IPVS has none of them from node_exporter.</item>
/// <item>udr's own under <c>udr_</c>: frames by verdict and reason, per worker; ring drops and transmit errors; the
/// connection tables; neighbour resolution; per-service and per-server counters and rates; checkers, VRRP roles and
/// connection sync when the daemon runs them.</item>
/// </list>
/// Nothing is counted here: each scrape reads its <see cref="MetricsSources"/> and sets the values (counters move to the
/// sources' totals), so the data plane pays nothing for metrics and a scrape takes no lock a worker takes.
/// </summary>
public sealed class UdrMetrics
{
    // node_exporter's label names; its text output lists them sorted, as here.
    private static readonly string[] ServiceLabels = ["local_address", "local_mark", "local_port", "proto"];
    private static readonly string[] BackendLabels = ["local_address", "local_mark", "local_port", "proto", "remote_address", "remote_port"];

    private readonly MetricsSources _sources;
    private readonly Lock _scrape = new();
    private readonly List<Family> _families = [];

    private readonly Family _ipvsConnections, _ipvsInPackets, _ipvsOutPackets, _ipvsInBytes, _ipvsOutBytes;
    private readonly Family _backendActive, _backendInactive, _backendWeight;
    private readonly Family _frames, _workerFrames, _ringDrops, _transmitErrors, _tableEntries, _tableCapacity, _coalesceWait, _busyPollTurns, _dropEntryEvicted, _secureTcpShort;
    private readonly Family _neighborResolved;
    private readonly Family _serviceConnections, _servicePackets, _serviceBytes, _serviceCps, _servicePps, _serviceBps, _serviceTable;
    private readonly Family _serverConnections, _serverPackets, _serverBytes, _serverCps, _serverPps, _serverBps;
    private readonly Family _checkerUp, _checkerFailures, _checkerTransitions;
    private readonly Family _vrrpRole;
    private readonly Family _syncMessagesSent, _syncEntriesSent, _syncMessagesReceived, _syncEntriesReceived, _syncApplied, _syncOverflows;

    public UdrMetrics(MetricsSources sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        _sources = sources;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        IMetricFactory factory = Prometheus.Metrics.WithCustomRegistry(Registry);

        _ipvsConnections = Counter(factory, "node_ipvs_connections_total", "The total number of connections made.");
        _ipvsInPackets = Counter(factory, "node_ipvs_incoming_packets_total", "The total number of incoming packets.");
        _ipvsOutPackets = Counter(factory, "node_ipvs_outgoing_packets_total", "The total number of outgoing packets.");
        _ipvsInBytes = Counter(factory, "node_ipvs_incoming_bytes_total", "The total amount of incoming data.");
        _ipvsOutBytes = Counter(factory, "node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.");
        _backendActive = Gauge(factory, "node_ipvs_backend_connections_active", "The current active connections by local and remote address.", BackendLabels);
        _backendInactive = Gauge(factory, "node_ipvs_backend_connections_inactive", "The current inactive connections by local and remote address.", BackendLabels);
        _backendWeight = Gauge(factory, "node_ipvs_backend_weight", "The current backend weight by local and remote address.", BackendLabels);

        _frames = Counter(factory, "udr_frames_total", "Frames the workers handled, by verdict and the reason named in the drop log and udr replay.", "verdict", "reason");
        _workerFrames = Counter(factory, "udr_worker_frames_total", "Frames one worker handled, by verdict.", "worker", "verdict");
        _ringDrops = Counter(factory, "udr_worker_ring_drops_total", "Frames the kernel dropped because the worker's receive ring was full.", "worker");
        _transmitErrors = Counter(factory, "udr_worker_transmit_errors_total", "Frames the kernel refused to send for the worker.", "worker");
        _tableEntries = Gauge(factory, "udr_worker_connection_entries", "Entries in the worker's connection table (connections, templates and NAT reply links).", "worker");
        _tableCapacity = Gauge(factory, "udr_worker_connection_capacity", "How many entries the worker's connection table can hold.", "worker");
        _coalesceWait = Gauge(factory, "udr_worker_coalesce_wait_seconds", "The wait after a turn of few frames the worker's adaptive coalescing has chosen (0: none; --coalesce-usecs is the most).", "worker");
        _busyPollTurns = Counter(factory, "udr_worker_busy_poll_turns_total", "Turns the worker spun for frames (--busy-poll-usecs), by outcome: frames (taken without a wake-up) or slept (none came within the window).", "worker", "outcome");
        _dropEntryEvicted = Counter(factory, "udr_drop_entry_evicted_total", "Half-open connections drop_entry removed to make room under a SYN flood.");
        _secureTcpShort = Counter(factory, "udr_secure_tcp_short_syn_recv_total", "New TCP connections secure_tcp gave its short SYN_RECV timeout.");
        _neighborResolved = Gauge(factory, "udr_neighbor_resolved", "1 when the MAC of the next hop to a real server is known (frames for it can leave), else 0.", "address");

        _serviceTable = Gauge(factory, "udr_service_scheduler_table_info", "1 for the digest of the virtual service's hashing scheduler's lookup table (mh, sh): balancers with the same rules have the same digest and send a flow to the same server.", [.. ServiceLabels, "scheduler", "digest"]);
        _serviceConnections = Counter(factory, "udr_service_connections_total", "Connections the virtual service scheduled.", ServiceLabels);
        _servicePackets = Counter(factory, "udr_service_packets_total", "Packets of the virtual service, in (client to server) and out (replies through udr).", [.. ServiceLabels, "direction"]);
        _serviceBytes = Counter(factory, "udr_service_bytes_total", "Bytes of the virtual service, in and out.", [.. ServiceLabels, "direction"]);
        _serviceCps = Gauge(factory, "udr_service_connections_per_second", "The virtual service's connection rate, IPVS's 2 s estimator (ipvsadm --rate CPS).", ServiceLabels);
        _servicePps = Gauge(factory, "udr_service_packets_per_second", "The virtual service's packet rate, IPVS's estimator (ipvsadm --rate InPPS/OutPPS).", [.. ServiceLabels, "direction"]);
        _serviceBps = Gauge(factory, "udr_service_bytes_per_second", "The virtual service's byte rate, IPVS's estimator (ipvsadm --rate InBPS/OutBPS).", [.. ServiceLabels, "direction"]);
        _serverConnections = Counter(factory, "udr_server_connections_total", "Connections scheduled to the real server.", BackendLabels);
        _serverPackets = Counter(factory, "udr_server_packets_total", "Packets to (in) and from (out) the real server.", [.. BackendLabels, "direction"]);
        _serverBytes = Counter(factory, "udr_server_bytes_total", "Bytes to (in) and from (out) the real server.", [.. BackendLabels, "direction"]);
        _serverCps = Gauge(factory, "udr_server_connections_per_second", "The real server's connection rate, IPVS's 2 s estimator.", BackendLabels);
        _serverPps = Gauge(factory, "udr_server_packets_per_second", "The real server's packet rate, IPVS's estimator.", [.. BackendLabels, "direction"]);
        _serverBps = Gauge(factory, "udr_server_bytes_per_second", "The real server's byte rate, IPVS's estimator.", [.. BackendLabels, "direction"]);

        _checkerUp = Gauge(factory, "udr_health_checker_up", "1 while the checker finds its real server up, else 0.", "service", "server", "checker");
        _checkerFailures = Gauge(factory, "udr_health_checker_consecutive_failures", "Failed checks in a row.", "service", "server", "checker");
        _checkerTransitions = Counter(factory, "udr_health_checker_transitions_total", "Times the checker's verdict changed (up to down or down to up).", "service", "server", "checker");
        _vrrpRole = Gauge(factory, "udr_vrrp_role", "1 for the role keepalived last reported for the VRRP instance (vrrp_notify_fifo), 0 for the others.", "instance", "role");

        _syncMessagesSent = Counter(factory, "udr_sync_messages_sent_total", "Connection-sync messages the master daemon sent.");
        _syncEntriesSent = Counter(factory, "udr_sync_entries_sent_total", "Connections the master daemon sent.");
        _syncMessagesReceived = Counter(factory, "udr_sync_messages_received_total", "Connection-sync messages the backup daemon received, by outcome (read, or why it was rejected).", "outcome");
        _syncEntriesReceived = Counter(factory, "udr_sync_entries_received_total", "Connections the backup daemon read from sync messages.");
        _syncApplied = Counter(factory, "udr_sync_entries_applied_total", "Synced connections the workers entered, by outcome.", "outcome");
        _syncOverflows = Counter(factory, "udr_sync_outbox_overflows_total", "Connections the workers could not post for sync because the sender fell behind.");

        Registry.AddBeforeCollectCallback(Update);
    }

    /// <summary>The registry a <see cref="MetricServer"/> serves (and tests read).</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>An HTTP server (prometheus-net's, on HttpListener) for <c>http://ENDPOINT/metrics</c>; not started.</summary>
    public MetricServer Server(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        string host = endpoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
        return new MetricServer(host, endpoint.Port, "metrics/", Registry);
    }

    /// <summary>ADDRESS:PORT with an IPv4 address or a bracketed IPv6 one and a port from 1 to 65535 (no names: a balancer binds where it is told).</summary>
    public static bool TryParseEndpoint(string text, [NotNullWhen(true)] out IPEndPoint? endpoint)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (IPEndPoint.TryParse(text, out endpoint) && endpoint.Port != 0 &&
            text.EndsWith(":" + endpoint.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal) &&
            (endpoint.AddressFamily == AddressFamily.InterNetwork || text.StartsWith('[')))
        {
            return true;
        }
        endpoint = null;
        return false;
    }

    /// <summary>The exposition a scrape gets, as text (tests and <c>udr top</c>).</summary>
    public async Task<string> ScrapeAsync(CancellationToken cancel = default)
    {
        using var stream = new MemoryStream();
        await Registry.CollectAndExportAsTextAsync(stream, cancel).ConfigureAwait(false);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private void Update()
    {
        lock (_scrape)
        {
            foreach (Family family in _families)
            {
                family.BeginScrape();
            }
            RuleSet rules = _sources.Rules();
            UpdateServices(rules);
            UpdateWorkers(_sources.Workers());
            if (_sources.Neighbors is { } neighbors)
            {
                foreach ((InetAddress server, bool resolved) in neighbors())
                {
                    _neighborResolved.Set(resolved ? 1 : 0, server.ToString());
                }
            }
            if (_sources.Checkers is { } checkers)
            {
                UpdateCheckers(checkers());
            }
            if (_sources.VrrpRoles is { } roles)
            {
                UpdateVrrp(roles());
            }
            if (_sources.Sync is { } sync)
            {
                UpdateSync(sync());
            }
            foreach (Family family in _families)
            {
                family.EndScrape();
            }
        }
    }

    private void UpdateServices(RuleSet rules)
    {
        TrafficCounters total = _sources.Statistics.AllTime(rules);
        _ipvsConnections.Set(total.Connections);
        _ipvsInPackets.Set(total.InPackets);
        _ipvsOutPackets.Set(total.OutPackets);
        _ipvsInBytes.Set(total.InBytes);
        _ipvsOutBytes.Set(total.OutBytes);
        foreach (ServiceStatistics service in _sources.Statistics.Read(rules))
        {
            string[] labels = ServiceLabelValues(service.Service);
            SetTraffic(service.Lifetime, service.Rates, labels, _serviceConnections, _servicePackets, _serviceBytes, _serviceCps, _servicePps, _serviceBps);
            if (service.Service.Scheduler.TableDigest is ulong digest)
            {
                _serviceTable.Set(1, [.. labels, service.Service.SchedulerName, digest.ToString("x16", CultureInfo.InvariantCulture)]);
            }
            foreach (ServerStatistics server in service.Servers)
            {
                RealServer live = server.Server;
                string[] backend = [.. labels, live.Address.ToString(), live.Port.ToString(CultureInfo.InvariantCulture)];
                _backendActive.Set(live.ActiveConnections, backend);
                _backendInactive.Set(live.InactiveConnections, backend);
                _backendWeight.Set(live.Weight, backend);
                SetTraffic(server.Lifetime, server.Rates, backend, _serverConnections, _serverPackets, _serverBytes, _serverCps, _serverPps, _serverBps);
            }
        }
    }

    private static void SetTraffic(TrafficCounters counters, TrafficRates rates, string[] labels, Family connections, Family packets, Family bytes,
        Family cps, Family pps, Family bps)
    {
        string[] inbound = [.. labels, "in"];
        string[] outbound = [.. labels, "out"];
        connections.Set(counters.Connections, labels);
        packets.Set(counters.InPackets, inbound);
        packets.Set(counters.OutPackets, outbound);
        bytes.Set(counters.InBytes, inbound);
        bytes.Set(counters.OutBytes, outbound);
        cps.Set(rates.ConnectionsPerSecond, labels);
        pps.Set(rates.InPacketsPerSecond, inbound);
        pps.Set(rates.OutPacketsPerSecond, outbound);
        bps.Set(rates.InBytesPerSecond, inbound);
        bps.Set(rates.OutBytesPerSecond, outbound);
    }

    private void UpdateWorkers(IReadOnlyList<WorkerReading> workers)
    {
        long evicted = 0, shortened = 0;
        foreach (WorkerReading worker in workers)
        {
            string index = worker.Index.ToString(CultureInfo.InvariantCulture);
            var byVerdict = new long[Enum.GetValues<Verdict>().Length];
            for (int i = 0; i < FrameReasons.Count; i++)
            {
                byVerdict[(int)FrameReasons.VerdictOf((FrameReason)i)] += worker.Frames[i];
            }
            foreach (Verdict verdict in Enum.GetValues<Verdict>())
            {
                _workerFrames.Set(byVerdict[(int)verdict], index, VerdictName(verdict));
            }
            _ringDrops.Set(worker.RingDrops, index);
            _transmitErrors.Set(worker.TransmitErrors, index);
            _tableEntries.Set(worker.Connections, index);
            _tableCapacity.Set(worker.ConnectionCapacity, index);
            _coalesceWait.Set(worker.CoalesceWaitMicroseconds / 1e6, index);
            _busyPollTurns.Set(worker.BusyPollFrames, index, "frames");
            _busyPollTurns.Set(worker.BusyPollSlept, index, "slept");
            evicted += worker.DropEntryEvicted;
            shortened += worker.SecureTcpShortSynRecv;
        }
        long[] byReason = WorkerReading.FramesOfAll(workers);
        for (int i = 0; i < byReason.Length; i++)
        {
            var reason = (FrameReason)i;
            _frames.Set(byReason[i], VerdictName(FrameReasons.VerdictOf(reason)), FrameReasons.Name(reason));
        }
        _dropEntryEvicted.Set(evicted);
        _secureTcpShort.Set(shortened);
    }

    private void UpdateCheckers(IReadOnlyList<CheckerStatus> checkers)
    {
        foreach (CheckerStatus checker in checkers)
        {
            string[] labels = [checker.Service, checker.Server, checker.Checker];
            _checkerUp.Set(checker.Up ? 1 : 0, labels);
            _checkerFailures.Set(checker.ConsecutiveFailures, labels);
            _checkerTransitions.Set(checker.Transitions, labels);
        }
    }

    private void UpdateVrrp(IReadOnlyList<(string Instance, VrrpRole Role)> roles)
    {
        foreach ((string instance, VrrpRole role) in roles)
        {
            foreach (VrrpRole each in (ReadOnlySpan<VrrpRole>)[VrrpRole.Master, VrrpRole.Backup, VrrpRole.Fault, VrrpRole.Stop])
            {
                _vrrpRole.Set(each == role ? 1 : 0, instance, each.ToString().ToUpperInvariant());
            }
        }
    }

    private void UpdateSync(SyncReading sync)
    {
        _syncMessagesSent.Set(sync.MessagesSent);
        _syncEntriesSent.Set(sync.EntriesSent);
        foreach ((string outcome, long count) in sync.MessagesReceived)
        {
            _syncMessagesReceived.Set(count, outcome);
        }
        _syncEntriesReceived.Set(sync.EntriesReceived);
        foreach ((string outcome, long count) in sync.EntriesApplied)
        {
            _syncApplied.Set(count, outcome);
        }
        _syncOverflows.Set(sync.OutboxOverflows);
    }

    /// <summary>
    /// node_exporter's service labels: address, mark, port, protocol. procfs reads a firewall-mark service's "FWM  N"
    /// line as no address, mark N, port 0 and protocol FWM; an address/port service has an empty mark.
    /// </summary>
    private static string[] ServiceLabelValues(VirtualService service) => service.FirewallMark != 0
        ? ["", service.FirewallMark.ToString(CultureInfo.InvariantCulture), "0", "FWM"]
        : [service.Address.ToString(), "", service.Port.ToString(CultureInfo.InvariantCulture), service.Protocol == ServiceProtocol.Tcp ? "TCP" : "UDP"];

    private static string VerdictName(Verdict verdict) => verdict.ToString().ToLowerInvariant();

    private Family Counter(IMetricFactory factory, string name, string help, params string[] labels) =>
        Add(new Family(factory.CreateCounter(name, help, labels)));

    private Family Gauge(IMetricFactory factory, string name, string help, params string[] labels) =>
        Add(new Family(factory.CreateGauge(name, help, labels)));

    private Family Add(Family family)
    {
        _families.Add(family);
        return family;
    }

    /// <summary>
    /// One metric family and the label sets a scrape set: a series no source reported this time (a deleted server, a
    /// stopped checker) is removed at the end of the scrape, so nothing stale is exported.
    /// </summary>
    private sealed class Family
    {
        private readonly Counter? _counter;
        private readonly Gauge? _gauge;
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

        public Family(Counter counter) => _counter = counter;

        public Family(Gauge gauge) => _gauge = gauge;

        public void BeginScrape() => _seen.Clear();

        /// <summary>
        /// Sets the series to <paramref name="value"/>. A counter only moves up to its source's total; a total below the
        /// exported value (a server deleted and added again starts from 0) starts the series again, which a scraper
        /// reads as a counter reset.
        /// </summary>
        public void Set(double value, params string[] labels)
        {
            _seen.Add(string.Join('\0', labels));
            if (_gauge is not null)
            {
                if (labels.Length == 0)
                {
                    _gauge.Set(value);
                }
                else
                {
                    _gauge.WithLabels(labels).Set(value);
                }
                return;
            }
            if (labels.Length == 0)
            {
                _counter!.IncTo(value); // an unlabelled total never goes back: its sources keep what deleted things counted
                return;
            }
            Counter.Child series = _counter!.WithLabels(labels);
            if (value < series.Value)
            {
                _counter.RemoveLabelled(labels);
                series = _counter.WithLabels(labels);
            }
            series.IncTo(value);
        }

        public void EndScrape()
        {
            string[][] present = _gauge is not null ? [.. _gauge.GetAllLabelValues()] : [.. _counter!.GetAllLabelValues()];
            foreach (string[] labels in present)
            {
                if (labels.Length != 0 && !_seen.Contains(string.Join('\0', labels)))
                {
                    if (_gauge is not null)
                    {
                        _gauge.RemoveLabelled(labels);
                    }
                    else
                    {
                        _counter!.RemoveLabelled(labels);
                    }
                }
            }
        }
    }
}
