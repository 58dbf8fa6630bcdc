using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

public class MaglevHashingSchedulerTests
{
    private const int TableSize = 4093;
    private const ulong H1 = 2654435761;

    /// <summary>ip_vs_mh_hashkey with hash1 and offset 0, from the SipHash vectors-checked primitive.</summary>
    private static uint Home(uint value) => SipHash.KernelHsiphash(value, H1, H1) % TableSize;

    private static int[] SlotCounts(MaglevHashingScheduler mh, ImmutableArray<RealServer> servers)
    {
        int[] counts = new int[servers.Length];
        foreach (RealServer? server in mh.Lookup)
        {
            Assert.That(server, Is.Not.Null, "every slot must be filled");
            counts[servers.IndexOf(server!)]++;
        }
        return counts;
    }

    [Test]
    public void Servers_take_turns_in_proportion_to_weight()
    {
        // turns 1, 2, 3 per round in list order: 682 rounds fill 4092 slots, then the first server takes the last.
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 2), Server(3, 3));
        var mh = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        Assert.That(SlotCounts(mh, servers), Is.EqualTo(new[] { 683, 1364, 2046 }));
    }

    [Test]
    public void Large_weight_ratios_are_shifted_down_to_six_bits()
    {
        // max/gcd = 256: fls = 9, rshift = 3; turns 256 >> 3 = 32 and 1 >> 3 = 0, raised to 1 because lw != 0.
        // 124 rounds of 33 fill 4092 slots, then the first server takes the last.
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 256));
        var mh = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        Assert.That(SlotCounts(mh, servers), Is.EqualTo(new[] { 125, 3968 }));
    }

    [Test]
    public void Flows_spread_roughly_in_proportion_to_weight()
    {
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 2), Server(3, 3), Server(4, 4));
        Scheduler mh = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        int[] counts = new int[servers.Length];
        const int clients = 100_000;
        for (uint client = 0; client < clients; client++)
        {
            counts[servers.IndexOf(mh.Pick(Key(0x0B000000u + client))!)]++;
        }
        for (int i = 0; i < servers.Length; i++)
        {
            Assert.That(counts[i] / (double)clients, Is.EqualTo((i + 1) / 10.0).Within(0.02), $"server {i}");
        }
    }

    [Test]
    public void First_server_in_list_owns_its_offset_slot_and_clients_look_up_their_home_slot()
    {
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 1), Server(3, 1));
        var mh = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        // Offset: hsiphash(ntohs(port) + ntohl(addr)) with hash1, mod M; the first server claims it first.
        RealServer first = servers[0];
        Assert.That(mh.Lookup[(int)Home(first.Port + first.Address.IPv4)], Is.SameAs(first));
        for (uint client = 0; client < 1000; client++)
        {
            uint address = 0xC0A80000u + client * 37;
            Assert.That(mh.Pick(Key(address, 5555)), Is.SameAs(mh.Lookup[(int)Home(address)]));
        }
    }

    [Test]
    public void Mh_port_adds_the_client_port_to_the_key()
    {
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 1), Server(3, 1));
        var plain = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        var withPort = new MaglevHashingScheduler(servers, SchedulerFlags.Flag2);
        const uint address = 0xC0A8000Au;
        var seen = new HashSet<RealServer>();
        for (ushort port = 1000; port < 1100; port++)
        {
            Assert.That(plain.Pick(Key(address, port)), Is.SameAs(plain.Pick(Key(address, 1))));
            RealServer picked = withPort.Pick(Key(address, port))!;
            Assert.That(picked, Is.SameAs(withPort.Lookup[(int)Home(address + port)]));
            seen.Add(picked);
        }
        Assert.That(seen, Has.Count.EqualTo(3));
    }

    [Test]
    public void Quiesced_server_keeps_its_slots_so_with_fallback_only_its_flows_move()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1), d = Server(4, 1);
        ImmutableArray<RealServer> servers = List(a, b, c, d);
        var before = new MaglevHashingScheduler(servers, SchedulerFlags.Flag1);
        var beforeOwners = new RealServer?[100_000];
        for (uint client = 0; client < beforeOwners.Length; client++)
        {
            beforeOwners[client] = before.Pick(Key(0x0B000000u + client));
        }

        c.Update(0, 0, 0); // last_weight stays 1
        var after = new MaglevHashingScheduler(servers, SchedulerFlags.Flag1);
        var afterPlain = new MaglevHashingScheduler(servers, SchedulerFlags.None);
        Assert.That(after.Lookup.ToArray(), Is.EqualTo(before.Lookup.ToArray()), "the table must not change");
        int moved = 0;
        for (uint client = 0; client < beforeOwners.Length; client++)
        {
            RealServer? now = after.Pick(Key(0x0B000000u + client));
            if (ReferenceEquals(beforeOwners[client], c))
            {
                Assert.That(now, Is.Not.Null.And.Not.SameAs(c));
                Assert.That(afterPlain.Pick(Key(0x0B000000u + client)), Is.Null);
                moved++;
            }
            else
            {
                Assert.That(now, Is.SameAs(beforeOwners[client]));
            }
        }
        Assert.That(moved, Is.InRange(20_000, 30_000));
    }

    [Test]
    public void Removing_a_server_moves_all_of_its_flows_and_few_others()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1), d = Server(4, 1), e = Server(5, 1);
        var before = new MaglevHashingScheduler(List(a, b, c, d, e), SchedulerFlags.None);
        var after = new MaglevHashingScheduler(List(a, b, d, e), SchedulerFlags.None);
        int onRemoved = 0, othersMoved = 0;
        const int clients = 100_000;
        for (uint client = 0; client < clients; client++)
        {
            RealServer? was = before.Pick(Key(0x0B000000u + client));
            RealServer? now = after.Pick(Key(0x0B000000u + client));
            Assert.That(now, Is.Not.Null.And.Not.SameAs(c));
            if (ReferenceEquals(was, c))
            {
                onRemoved++;
            }
            else if (!ReferenceEquals(was, now))
            {
                othersMoved++;
            }
        }
        Assert.That(onRemoved, Is.InRange(17_000, 23_000));
        // Maglev keeps disruption small, not zero: the greedy fill lets remaining servers claim freed slots earlier.
        Assert.That(othersMoved, Is.LessThan(clients / 50), $"{othersMoved} flows on surviving servers moved");
        TestContext.Out.WriteLine($"removed server's flows: {onRemoved}, other flows moved: {othersMoved}");
    }

    [Test]
    public void Servers_never_given_a_weight_get_no_slots()
    {
        RealServer a = Server(1, 0), b = Server(2, 0);
        var none = new MaglevHashingScheduler(List(a, b), SchedulerFlags.Flag1);
        Assert.That(none.Lookup.ToArray(), Is.All.Null);
        Assert.That(none.Pick(Key(1)), Is.Null);

        RealServer c = Server(3, 2);
        var some = new MaglevHashingScheduler(List(a, c, b), SchedulerFlags.None);
        Assert.That(some.Lookup.ToArray(), Is.All.SameAs(c));
    }
}
