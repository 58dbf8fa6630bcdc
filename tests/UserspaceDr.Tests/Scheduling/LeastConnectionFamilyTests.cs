using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>lc, wlc, sed and nq: load comparisons, tie-breaking in list order (newest first) and what each counts.</summary>
public class LeastConnectionFamilyTests
{
    [Test]
    public void Overhead_weighs_an_active_connection_as_256_inactive_ones()
    {
        RealServer server = Server(1, 1);
        AddActive(server, 2);
        AddInactive(server, 3);
        Assert.That(server.Overhead, Is.EqualTo(2 * 256 + 3));
    }

    [Test]
    public void Lc_picks_least_overhead_and_ignores_weight()
    {
        RealServer a = Server(1, 100), b = Server(2, 1), c = Server(3, 1);
        AddActive(a, 1);      // 256
        AddInactive(b, 255);  // 255
        AddInactive(c, 300);  // 300
        Assert.That(new LeastConnectionScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(b));
    }

    [Test]
    public void Lc_tie_goes_to_the_first_in_list()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1);
        AddInactive(a, 5);
        AddInactive(b, 4);
        AddInactive(c, 4);
        Assert.That(new LeastConnectionScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(b));
        Assert.That(new LeastConnectionScheduler(List(c, b, a), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Lc_skips_quiesced_and_overloaded_even_when_idle()
    {
        RealServer a = Server(1, 0), b = Server(2, 1), c = Server(3, 1);
        Overload(b); // one inactive connection, overhead 1
        AddActive(c, 3);
        Assert.That(new LeastConnectionScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Wlc_compares_overhead_per_weight_and_ties_go_to_the_first()
    {
        RealServer a = Server(1, 1), b = Server(2, 2), c = Server(3, 3);
        AddActive(a, 1); // 256 / 1
        AddActive(b, 2); // 512 / 2: equal, A stays (first in list)
        Assert.That(new WeightedLeastConnectionScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
        AddActive(c, 2); // 512 / 3: less
        Assert.That(new WeightedLeastConnectionScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Wlc_counts_inactive_connections()
    {
        RealServer a = Server(1, 1), b = Server(2, 1);
        AddActive(a, 1);    // 256
        AddInactive(b, 257); // 257
        Assert.That(new WeightedLeastConnectionScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
    }

    [Test]
    public void Wlc_and_sed_differ_on_idle_servers_of_different_weight()
    {
        // Both idle: wlc sees 0/1 against 0/10, a tie, so the first stays; sed counts the incoming connection,
        // 1/1 against 1/10, and takes the heavier server.
        RealServer a = Server(1, 1), b = Server(2, 10);
        Assert.That(new WeightedLeastConnectionScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
        Assert.That(new ShortestExpectedDelayScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(b));
    }

    [Test]
    public void Sed_uses_active_plus_one_and_ties_go_to_the_first()
    {
        RealServer a = Server(1, 1), b = Server(2, 3), c = Server(3, 4);
        AddInactive(a, 1000); // ignored: (0 + 1) / 1
        AddActive(b, 2);      // (2 + 1) / 3: equal, A stays
        Assert.That(new ShortestExpectedDelayScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
        AddActive(c, 2);      // (2 + 1) / 4: less
        Assert.That(new ShortestExpectedDelayScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Nq_takes_the_first_idle_server_whatever_the_weights()
    {
        RealServer a = Server(1, 100), b = Server(2, 1), c = Server(3, 1);
        AddActive(a, 1);
        AddInactive(b, 50); // no active connection: idle for nq
        Assert.That(new NeverQueueScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(b));
        Assert.That(new NeverQueueScheduler(List(a, c, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Nq_without_idle_servers_behaves_as_sed()
    {
        RealServer a = Server(1, 1), b = Server(2, 2), c = Server(3, 3);
        AddActive(a, 1); // 2 / 1
        AddActive(b, 3); // 4 / 2: equal, A stays
        Assert.That(new NeverQueueScheduler(List(a, b), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
        AddActive(c, 3); // 4 / 3: less
        Assert.That(new NeverQueueScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Nq_ignores_idle_servers_that_are_quiesced_or_overloaded()
    {
        RealServer a = Server(1, 0), b = Server(2, 1), c = Server(3, 1);
        Overload(b); // the overload comes from an inactive connection: b stays idle
        AddActive(c, 2);
        Assert.That(b.ActiveConnections, Is.Zero);
        Assert.That(new NeverQueueScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Large_loads_compare_without_overflow()
    {
        // 200000 active connections = overhead 51_200_000; times a weight of 1000 overflows 32 bits.
        RealServer a = Server(1, 1000), b = Server(2, 999);
        AddActive(a, 200_000);
        AddActive(b, 199_801);
        // a: 51_200_000 / 1000 = 51_200; b: 51_149_056 / 999 = 51_200.26, so a is (just) less loaded:
        // 51_149_056 * 1000 > 51_200_000 * 999 only holds when computed in 64 bits.
        Assert.That(new WeightedLeastConnectionScheduler(List(b, a), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(a));
    }
}
