using System.Collections.Immutable;
using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Metrics;

namespace UserspaceDr.Tests.Stats;

/// <summary>
/// <see cref="UdrMetrics"/>' exposition: node_exporter's IPVS families line for line as its fixture writes them
/// (collector/fixtures/e2e-output.txt), udr's own families, monotonic counters across deletions, and no stale series.
/// </summary>
public class UdrMetricsTests
{
    private static readonly InetAddress Vip = InetAddress.Parse("198.18.0.100");
    private static readonly InetAddress Vip6 = InetAddress.Parse("2001:2::100");

    private readonly Dictionary<RealServer, TrafficCounters> _counts = new(ReferenceEqualityComparer.Instance);
    private RuleSet _rules = null!;
    private IReadOnlyList<WorkerReading> _workers = [];
    private IReadOnlyList<CheckerStatus> _checkers = [];

    private static RuleSetSpec Spec(params string[] servers) => new([
        new VirtualServiceSpec(ServiceProtocol.Tcp, Vip, 3306, "wlc")
        {
            RealServers = [.. servers.Select(a => new RealServerSpec(InetAddress.Parse(a), 3306, ForwardingMethod.Route, 100))],
        },
        new VirtualServiceSpec(ServiceProtocol.Udp, Vip6, 53, "mh")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse("2001:2:0:1::11"), 5353, ForwardingMethod.Masquerade, 2)],
        },
    ]);

    private UdrMetrics Metrics(TrafficStatistics statistics) => new(new MetricsSources(() => _rules, statistics, () => _workers)
    {
        Checkers = () => _checkers,
        VrrpRoles = () => [("VI_1", VrrpRole.Master)],
        Neighbors = () => [(InetAddress.Parse("198.18.0.11"), true), (InetAddress.Parse("198.18.0.12"), false)],
        Sync = () => new SyncReading(7, 30, new Dictionary<string, long> { ["read"] = 5, ["too-short"] = 1 }, 20,
            new Dictionary<string, long> { ["created"] = 18 }, 0),
    });

    private TrafficStatistics Statistics() => new(server => _counts.GetValueOrDefault(server));

    private RealServer Server(string address) => _rules.Services.SelectMany(s => s.Destinations).First(d => d.Address == InetAddress.Parse(address));

    private static WorkerReading Worker(int index, params (FrameReason Reason, long Count)[] counts)
    {
        var frames = new long[FrameReasons.Count];
        foreach ((FrameReason reason, long count) in counts)
        {
            frames[(int)reason] = count;
        }
        return new WorkerReading(index, [.. frames], RingDrops: 3, TransmitErrors: 0, Connections: 10, ConnectionCapacity: 1024, 0, 0,
            CoalesceWaitMicroseconds: 25 * (index + 1), BusyPollFrames: 40 + index, BusyPollSlept: 7);
    }

    [Test]
    public async Task Node_exporters_ipvs_families_come_out_with_its_names_help_types_and_labels()
    {
        _rules = RuleSet.Build(Spec("198.18.0.11", "198.18.0.12"));
        TrafficStatistics statistics = Statistics();
        _counts[Server("198.18.0.11")] = new TrafficCounters { Connections = 5, InPackets = 50, InBytes = 5000 };
        _counts[Server("2001:2:0:1::11")] = new TrafficCounters { Connections = 2, InPackets = 4, InBytes = 400, OutPackets = 4, OutBytes = 800 };

        string text = await Metrics(statistics).ScrapeAsync();

        Assert.That(text, Does.Contain("# HELP node_ipvs_connections_total The total number of connections made.\n# TYPE node_ipvs_connections_total counter\nnode_ipvs_connections_total 7\n"));
        Assert.That(text, Does.Contain("# HELP node_ipvs_incoming_packets_total The total number of incoming packets.\n# TYPE node_ipvs_incoming_packets_total counter\nnode_ipvs_incoming_packets_total 54\n"));
        Assert.That(text, Does.Contain("# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data.\n# TYPE node_ipvs_outgoing_bytes_total counter\nnode_ipvs_outgoing_bytes_total 800\n"));
        Assert.That(text, Does.Contain("# HELP node_ipvs_backend_weight The current backend weight by local and remote address.\n# TYPE node_ipvs_backend_weight gauge\n"));
        Assert.That(text, Does.Contain(
            "node_ipvs_backend_weight{local_address=\"198.18.0.100\",local_mark=\"\",local_port=\"3306\",proto=\"TCP\",remote_address=\"198.18.0.11\",remote_port=\"3306\"} 100\n"));
        Assert.That(text, Does.Contain(
            "node_ipvs_backend_connections_active{local_address=\"2001:2::100\",local_mark=\"\",local_port=\"53\",proto=\"UDP\",remote_address=\"2001:2:0:1::11\",remote_port=\"5353\"} 0\n"));
        Assert.That(text, Does.Contain("# TYPE node_ipvs_backend_connections_inactive gauge\n"));
    }

    [Test]
    public async Task Udrs_own_families_carry_frames_workers_servers_checkers_vrrp_neighbours_and_sync()
    {
        _rules = RuleSet.Build(Spec("198.18.0.11"));
        _counts[Server("198.18.0.11")] = new TrafficCounters { Connections = 3, InPackets = 30, InBytes = 3000 };
        _workers = [Worker(0, (FrameReason.Forwarded, 100), (FrameReason.TcpNotSyn, 2)), Worker(1, (FrameReason.Forwarded, 50))];
        _checkers = [new CheckerStatus("198.18.0.100:3306", "198.18.0.11:3306", "TCP_CHECK", true, 0, "connected", DateTimeOffset.UnixEpoch) { Transitions = 2 }];

        string text = await Metrics(Statistics()).ScrapeAsync();

        Assert.That(text, Does.Contain("udr_frames_total{verdict=\"transmit\",reason=\"forwarded\"} 150\n"));
        Assert.That(text, Does.Contain("udr_frames_total{verdict=\"drop\",reason=\"tcp-not-syn\"} 2\n"));
        Assert.That(text, Does.Contain("udr_frames_total{verdict=\"drop\",reason=\"ip-checksum-invalid\"} 0\n"), "every reason, from 0");
        Assert.That(text, Does.Contain("udr_worker_frames_total{worker=\"0\",verdict=\"drop\"} 2\n"));
        Assert.That(text, Does.Contain("udr_worker_ring_drops_total{worker=\"1\"} 3\n"));
        Assert.That(text, Does.Contain("udr_worker_connection_capacity{worker=\"0\"} 1024\n"));
        Assert.That(text, Does.Contain("udr_worker_coalesce_wait_seconds{worker=\"0\"} 2.5e-05\n"));
        Assert.That(text, Does.Contain("udr_worker_coalesce_wait_seconds{worker=\"1\"} 5e-05\n"));
        Assert.That(text, Does.Contain("udr_worker_busy_poll_turns_total{worker=\"1\",outcome=\"frames\"} 41\n"));
        Assert.That(text, Does.Contain("udr_worker_busy_poll_turns_total{worker=\"0\",outcome=\"slept\"} 7\n"));
        string digest = _rules.Services.Single(s => s.SchedulerName == "mh").Scheduler.TableDigest!.Value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(text, Does.Contain(
            $"udr_service_scheduler_table_info{{local_address=\"2001:2::100\",local_mark=\"\",local_port=\"53\",proto=\"UDP\",scheduler=\"mh\",digest=\"{digest}\"}} 1\n"));
        Assert.That(text, Does.Not.Contain("scheduler=\"wlc\""), "wlc keeps no lookup table");
        Assert.That(text, Does.Contain(
            "udr_server_packets_total{local_address=\"198.18.0.100\",local_mark=\"\",local_port=\"3306\",proto=\"TCP\",remote_address=\"198.18.0.11\",remote_port=\"3306\",direction=\"in\"} 30\n"));
        Assert.That(text, Does.Contain("udr_service_connections_total{local_address=\"198.18.0.100\",local_mark=\"\",local_port=\"3306\",proto=\"TCP\"} 3\n"));
        Assert.That(text, Does.Contain("udr_health_checker_up{service=\"198.18.0.100:3306\",server=\"198.18.0.11:3306\",checker=\"TCP_CHECK\"} 1\n"));
        Assert.That(text, Does.Contain("udr_health_checker_transitions_total{service=\"198.18.0.100:3306\",server=\"198.18.0.11:3306\",checker=\"TCP_CHECK\"} 2\n"));
        Assert.That(text, Does.Contain("udr_vrrp_role{instance=\"VI_1\",role=\"MASTER\"} 1\n"));
        Assert.That(text, Does.Contain("udr_vrrp_role{instance=\"VI_1\",role=\"BACKUP\"} 0\n"));
        Assert.That(text, Does.Contain("udr_neighbor_resolved{address=\"198.18.0.12\"} 0\n"));
        Assert.That(text, Does.Contain("udr_sync_messages_received_total{outcome=\"too-short\"} 1\n"));
        Assert.That(text, Does.Contain("udr_sync_entries_applied_total{outcome=\"created\"} 18\n"));
        Assert.That(text, Does.Not.Contain("dotnet_"), "a registry of udr's own, without the library's process metrics");
    }

    [Test]
    public async Task A_deleted_server_leaves_no_series_and_the_totals_keep_what_it_counted()
    {
        _rules = RuleSet.Build(Spec("198.18.0.11", "198.18.0.12"));
        TrafficStatistics statistics = Statistics();
        UdrMetrics metrics = Metrics(statistics);
        _counts[Server("198.18.0.12")] = new TrafficCounters { Connections = 4, InPackets = 40 };
        string before = await metrics.ScrapeAsync();
        Assert.That(before, Does.Contain("remote_address=\"198.18.0.12\""));

        _rules = RuleSet.Build(Spec("198.18.0.11"), _rules);
        string after = await metrics.ScrapeAsync();

        Assert.That(after, Does.Not.Contain("remote_address=\"198.18.0.12\""));
        Assert.That(after, Does.Contain("node_ipvs_connections_total 4\n"), "the service's totals keep a deleted server's counts");
    }

    [Test]
    public async Task A_deleted_service_still_counts_in_the_totals_and_a_server_added_again_restarts_its_series()
    {
        _rules = RuleSet.Build(Spec("198.18.0.11"));
        TrafficStatistics statistics = Statistics();
        UdrMetrics metrics = Metrics(statistics);
        _counts[Server("198.18.0.11")] = new TrafficCounters { Connections = 9 };
        await metrics.ScrapeAsync();

        _rules = RuleSet.Build(new RuleSetSpec([]), _rules);
        Assert.That(await metrics.ScrapeAsync(), Does.Contain("node_ipvs_connections_total 9\n"));

        _rules = RuleSet.Build(Spec("198.18.0.11"), _rules); // a new server object, counting from 0
        _counts[Server("198.18.0.11")] = new TrafficCounters { Connections = 1 };
        string text = await metrics.ScrapeAsync();
        Assert.That(text, Does.Contain("node_ipvs_connections_total 10\n"));
        Assert.That(text, Does.Contain("udr_server_connections_total{local_address=\"198.18.0.100\",local_mark=\"\",local_port=\"3306\",proto=\"TCP\",remote_address=\"198.18.0.11\",remote_port=\"3306\"} 1\n"));
    }

    [Test]
    public void A_metrics_endpoint_is_an_address_and_a_port()
    {
        Assert.That(UdrMetrics.TryParseEndpoint("127.0.0.1:9477", out System.Net.IPEndPoint? v4) ? v4.Port : 0, Is.EqualTo(9477));
        Assert.That(UdrMetrics.TryParseEndpoint("[2001:2::1]:9477", out System.Net.IPEndPoint? v6) ? v6.Address.ToString() : "", Is.EqualTo("2001:2::1"));
        foreach (string bad in (string[])["127.0.0.1", "127.0.0.1:0", "localhost:9477", "2001:2::1", "2001:2::1:9477", "127.0.0.1:70000", "", "[2001:2::1]"])
        {
            Assert.That(UdrMetrics.TryParseEndpoint(bad, out _), Is.False, bad);
        }
    }

    [Test]
    public void Every_reason_has_a_kebab_case_name()
    {
        Assert.That(Core.KebabCase.Of("TooShort"), Is.EqualTo("too-short"));
        Assert.That(ImmutableArray.Create(Enum.GetValues<FrameReason>()).Select(FrameReasons.Name), Is.Unique);
    }
}
