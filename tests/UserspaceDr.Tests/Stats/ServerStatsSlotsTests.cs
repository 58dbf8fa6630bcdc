using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Tests.Stats;

/// <summary>Counter rows belong to one data plane's rule sets, are handed on when a server is gone, and start from zero.</summary>
public class ServerStatsSlotsTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.0.100");

    /// <summary>A rule set of one service with one server (also for ServerHandlesTests).</summary>
    internal static RuleSetSpec WithServer(string address) => new([
        new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), 80, "rr") { RealServers = [new RealServerSpec(InetAddress.Parse(address), 80)] },
    ]);

    private static RealServer OnlyServer(RuleSet rules) => rules.Services[0].Destinations[0];

    [Test]
    public void Replacing_servers_again_and_again_does_not_grow_the_counter_rows()
    {
        RuleSet rules = RuleSet.Build(WithServer("198.18.0.11"));
        for (int i = 0; i < 100; i++)
        {
            rules = RuleSet.Build(WithServer($"198.18.1.{i + 1}"), rules);
        }
        Assert.That(rules.StatsSlots.HighWater, Is.LessThanOrEqualTo(2), "a gone server's row is handed to the next one");
        Assert.That(RuleSet.Build(WithServer("198.18.0.11")).StatsSlots, Is.Not.SameAs(rules.StatsSlots), "another data plane has its own rows");
    }

    [Test]
    public void A_row_handed_to_a_new_server_starts_from_zero_and_late_counts_for_the_old_one_are_dropped()
    {
        var counters = new WorkerCounters();
        RuleSet first = RuleSet.Build(WithServer("198.18.0.11"));
        RealServer old = OnlyServer(first);
        counters.For(old).InPackets += 5;
        Assert.That(counters.Read(old).InPackets, Is.EqualTo(5));

        RuleSet second = RuleSet.Build(WithServer("198.18.0.12"), first); // old had no connections: gone for good
        RuleSet third = RuleSet.Build(WithServer("198.18.0.13"), second); // its row is handed out from here on
        RealServer replacement = OnlyServer(third);
        Assert.That(replacement.StatsSlot, Is.EqualTo(old.StatsSlot), "the row is reused");
        Assert.That(counters.Read(replacement).InPackets, Is.Zero, "nothing of the old server's traffic");

        counters.For(replacement).InPackets++;
        counters.For(old).InPackets += 100; // a late count from a frame still in flight for the old server
        Assert.Multiple(() =>
        {
            Assert.That(counters.Read(replacement).InPackets, Is.EqualTo(1));
            Assert.That(counters.Read(old).InPackets, Is.Zero, "its row belongs to another server now");
        });
    }

    [Test]
    public void A_deleted_server_that_connections_still_hold_keeps_its_row_until_they_are_gone()
    {
        var counters = new WorkerCounters();
        RuleSet first = RuleSet.Build(WithServer("198.18.0.11"));
        RealServer held = OnlyServer(first);
        held.BindConnection(active: true, template: false); // one live connection holds it
        counters.For(held).InPackets += 7;
        RuleSet second = RuleSet.Build(WithServer("198.18.0.12"), first);
        Assert.Multiple(() =>
        {
            Assert.That(second.StatsSlots.Available, Is.Zero, "in the kernel's dest trash: its row stays");
            Assert.That(counters.Read(held).InPackets, Is.EqualTo(7), "its counts are still read");
        });
        held.UnbindConnection(active: true, template: false);
        RuleSet third = RuleSet.Build(WithServer("198.18.0.13"), second);
        Assert.That(third.StatsSlots.Available, Is.EqualTo(2), "the replaced server's row and, pruned now, the held one's");
    }
}
