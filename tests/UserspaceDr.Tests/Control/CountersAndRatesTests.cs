using UserspaceDr.Core.Packets;
using System.Collections.Immutable;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// <see cref="RateEstimator"/> against ip_vs_est.c's arithmetic, and <see cref="TrafficStatistics"/>: service and
/// server counters over worker counters that are never written by a reader, -Z baselines, deleted servers.
/// </summary>
public class CountersAndRatesTests
{
    private static TrafficCounters Counters(long connections, long packets, long bytes) =>
        new() { Connections = connections, InPackets = packets, InBytes = bytes };

    [Test]
    public void The_first_period_shows_a_quarter_of_the_rate_as_the_kernels_ewma()
    {
        var estimator = RateEstimator.StartingAt(default);
        estimator.Sample(Counters(200, 2000, 2_000_000)); // over 2 s: 100 conn/s, 1000 pkt/s, 1 MB/s
        // cps: ((200 << 9) >> 2 + 0x1FF) >> 10 = 25; bps: ((2e6 << 4) >> 2 + 0xF) >> 5 = 250000.
        Assert.That(estimator.Read(), Is.EqualTo(new TrafficRates(25, 250, 0, 250_000, 0)));
        estimator.Sample(Counters(400, 4000, 4_000_000));
        // avg += (rate - avg) / 4: 25 + 75/4 → 43.75 (fixed point, rounded on read).
        Assert.That(estimator.Read().ConnectionsPerSecond, Is.EqualTo(44));
    }

    [Test]
    public void A_steady_rate_converges_exactly_and_decays_to_zero_when_traffic_stops()
    {
        var estimator = RateEstimator.StartingAt(default);
        TrafficCounters total = default;
        for (int period = 0; period < 60; period++)
        {
            total.Add(Counters(200, 2000, 2_000_000));
            estimator.Sample(total);
        }
        Assert.That(estimator.Read(), Is.EqualTo(new TrafficRates(100, 1000, 0, 1_000_000, 0)));
        for (int period = 0; period < 80; period++)
        {
            estimator.Sample(total);
        }
        Assert.That(estimator.Read(), Is.EqualTo(default(TrafficRates)));
    }

    [Test]
    public void Reset_zeroes_the_rates_and_the_next_period_counts_from_there()
    {
        var estimator = RateEstimator.StartingAt(default);
        estimator.Sample(Counters(1000, 1000, 1000));
        Assert.That(estimator.Read().ConnectionsPerSecond, Is.Positive);
        estimator.Reset(Counters(1000, 1000, 1000));
        Assert.That(estimator.Read(), Is.EqualTo(default(TrafficRates)));
        estimator.Sample(Counters(1200, 1000, 1000));
        Assert.That(estimator.Read().ConnectionsPerSecond, Is.EqualTo(25));
    }

    private sealed class Workers
    {
        public Dictionary<RealServer, TrafficCounters> Counts { get; } = new(ReferenceEqualityComparer.Instance);

        public TrafficCounters Read(RealServer server) => Counts.GetValueOrDefault(server);

        public void Count(RealServer server, long connections, long packets, long bytes)
        {
            TrafficCounters now = Counts.GetValueOrDefault(server);
            now.Add(Counters(connections, packets, bytes));
            Counts[server] = now;
        }
    }

    private static RuleSetSpec Spec(params (ushort Port, uint[] Servers)[] services) => new([.. services.Select(s =>
        new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(0xC6120064), s.Port, "rr")
        {
            RealServers = [.. s.Servers.Select(a => new RealServerSpec(InetAddress.FromIPv4(a), s.Port))],
        })]);

    private static RealServer Server(RuleSet rules, ushort port, uint address) =>
        rules.Services.First(s => s.Port == port).Destinations.First(d => d.Address == InetAddress.FromIPv4(address));

    private static ServiceStatistics Service(ImmutableArray<ServiceStatistics> all, ushort port) => all.First(s => s.Service.Port == port);

    [Test]
    public void Services_sum_their_servers_and_keep_what_a_deleted_server_counted()
    {
        var workers = new Workers();
        var statistics = new TrafficStatistics(workers.Read);
        RuleSet rules = RuleSet.Build(Spec((80, [0xC612000B, 0xC612000C])));
        statistics.Sync(rules);
        workers.Count(Server(rules, 80, 0xC612000B), 3, 30, 3000);
        workers.Count(Server(rules, 80, 0xC612000C), 1, 10, 1000);

        ServiceStatistics web = Service(statistics.Read(rules), 80);
        Assert.That(web.Counters, Is.EqualTo(Counters(4, 40, 4000)));
        Assert.That(web.Servers.Select(s => s.Counters.Connections), Is.EqualTo(new long[] { 1, 3 }), "newest first");

        RuleSet without = RuleSet.Build(Spec((80, [0xC612000B])), rules);
        statistics.Sync(without);
        workers.Count(Server(without, 80, 0xC612000B), 1, 5, 500);
        web = Service(statistics.Read(without), 80);
        Assert.That(web.Counters, Is.EqualTo(Counters(5, 45, 4500)), "the deleted server's traffic stays in its service");
        Assert.That(web.Servers, Has.Length.EqualTo(1));
    }

    [Test]
    public void Zero_starts_the_shown_counters_again_without_touching_the_workers()
    {
        var workers = new Workers();
        var statistics = new TrafficStatistics(workers.Read);
        RuleSet rules = RuleSet.Build(Spec((80, [0xC612000B]), (443, [0xC612000C])));
        RealServer web = Server(rules, 80, 0xC612000B);
        RealServer tls = Server(rules, 443, 0xC612000C);
        workers.Count(web, 5, 50, 5000);
        workers.Count(tls, 7, 70, 7000);
        statistics.Sample(rules);
        Assert.That(Service(statistics.Read(rules), 80).Rates.ConnectionsPerSecond, Is.Zero, "nothing grew since the estimator started");
        workers.Count(web, 8, 8, 8);
        statistics.Sample(rules);
        Assert.That(Service(statistics.Read(rules), 80).Rates.ConnectionsPerSecond, Is.EqualTo(1));

        statistics.Zero(rules, rules.Services.First(s => s.Port == 80));
        ImmutableArray<ServiceStatistics> read = statistics.Read(rules);
        Assert.That(Service(read, 80).Counters, Is.EqualTo(default(TrafficCounters)));
        Assert.That(Service(read, 80).Servers[0].Counters, Is.EqualTo(default(TrafficCounters)));
        Assert.That(Service(read, 80).Rates, Is.EqualTo(default(TrafficRates)));
        Assert.That(Service(read, 443).Counters, Is.EqualTo(Counters(7, 70, 7000)), "-Z of one service leaves the others");
        Assert.That(workers.Read(web), Is.EqualTo(Counters(13, 58, 5008)), "the workers' own counters are never written");

        workers.Count(web, 2, 2, 2);
        Assert.That(Service(statistics.Read(rules), 80).Counters, Is.EqualTo(Counters(2, 2, 2)));
        statistics.Zero(rules);
        Assert.That(statistics.Read(rules).Select(s => s.Counters), Is.All.EqualTo(default(TrafficCounters)));
    }

    [Test]
    public void A_service_deleted_and_added_again_counts_from_zero_and_a_reinstated_server_is_not_counted_twice()
    {
        var workers = new Workers();
        var statistics = new TrafficStatistics(workers.Read);
        RuleSet rules = RuleSet.Build(Spec((80, [0xC612000B, 0xC612000C])));
        statistics.Sync(rules);
        RealServer first = Server(rules, 80, 0xC612000B);
        first.BindConnection(active: true, template: false); // a connection keeps it in the trash when deleted
        workers.Count(first, 4, 40, 400);

        RuleSet deleted = RuleSet.Build(Spec((80, [0xC612000C])), rules);
        statistics.Sync(deleted);
        RuleSet back = RuleSet.Build(Spec((80, [0xC612000B, 0xC612000C])), deleted);
        statistics.Sync(back);
        Assert.That(Server(back, 80, 0xC612000B), Is.SameAs(first), "reinstated from the trash");
        Assert.That(Service(statistics.Read(back), 80).Counters, Is.EqualTo(Counters(4, 40, 400)));

        RuleSet gone = RuleSet.Build(RuleSetSpec.Empty, back);
        statistics.Sync(gone);
        Assert.That(statistics.Read(gone), Is.Empty);
        RuleSet again = RuleSet.Build(Spec((80, [0xC612000C])), gone);
        statistics.Sync(again);
        Assert.That(Service(statistics.Read(again), 80).Counters, Is.EqualTo(default(TrafficCounters)), "a new service counts from 0");
    }
}
