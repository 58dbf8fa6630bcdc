using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>Rules every IPVS scheduler follows (reference §3 "Common"), checked for all ten.</summary>
public class CommonSchedulerRulesTests
{
    private static readonly string[] AllNames = ["rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "sh", "mh"];

    /// <summary>sh and mh give no server when the key's bucket holds an unavailable one; with flag-1 they probe on.</summary>
    private static bool IsHashing(string name) => name is "sh" or "mh";

    [Test]
    public void Factory_creates_every_listed_scheduler([ValueSource(nameof(AllNames))] string name)
    {
        Assert.That(SchedulerFactory.Names, Does.Contain(name));
        Scheduler scheduler = SchedulerFactory.Create(name, List(Server(1, 1)), SchedulerFlags.None);
        Assert.That(scheduler.Pick(Key(7)), Is.Not.Null);
    }

    [Test]
    public void Factory_rejects_unknown_names()
    {
        Assert.That(SchedulerFactory.Names, Has.Length.EqualTo(AllNames.Length));
        Assert.Throws<ArgumentException>(() => SchedulerFactory.Create("lblc", List(Server(1, 1)), SchedulerFlags.None));
    }

    [Test]
    public void Quiesced_servers_are_never_chosen(
        [ValueSource(nameof(AllNames))] string name,
        [Values(SchedulerFlags.None, SchedulerFlags.Flag1)] SchedulerFlags flags)
    {
        // Quiesced by an edit after being added with a weight, so mh keeps their slots (last_weight).
        RealServer a = Server(1, 3), b = Server(2, 60), c = Server(3, 2);
        a.Update(0, 0, 0);
        c.Update(0, 0, 0);
        AddActive(b, 50); // b is the busiest, yet the only choice (and within ovf's active <= weight)
        AssertOnlyChoice(name, flags, List(a, b, c), b);
    }

    [Test]
    public void Overloaded_servers_are_never_chosen(
        [ValueSource(nameof(AllNames))] string name,
        [Values(SchedulerFlags.None, SchedulerFlags.Flag1)] SchedulerFlags flags)
    {
        RealServer a = Server(1, 3), b = Server(2, 1), c = Server(3, 2);
        Overload(a);
        Overload(c);
        AddActive(b, 1);
        AssertOnlyChoice(name, flags, List(a, b, c), b);
    }

    [Test]
    public void Nothing_available_gives_null(
        [ValueSource(nameof(AllNames))] string name,
        [Values(SchedulerFlags.None, SchedulerFlags.Flag1)] SchedulerFlags flags)
    {
        RealServer a = Server(1, 2), b = Server(2, 1), c = Server(3, 0);
        Overload(a);
        b.Update(0, 0, 0);
        Scheduler scheduler = Create(name, List(a, b, c), flags);
        Scheduler empty = Create(name, List(), flags);
        for (uint client = 0; client < 200; client++)
        {
            Assert.That(scheduler.Pick(Key(client * 7919)), Is.Null);
            Assert.That(empty.Pick(Key(client * 7919)), Is.Null);
        }
    }

    private static void AssertOnlyChoice(string name, SchedulerFlags flags, ImmutableArray<RealServer> servers, RealServer only)
    {
        Scheduler scheduler = Create(name, servers, flags);
        int chosen = 0;
        for (uint client = 0; client < 500; client++)
        {
            RealServer? picked = scheduler.Pick(Key(0x0B000000u + client * 7919, (ushort)(1024 + client)));
            if (picked is null)
            {
                // Only a hashing scheduler without fallback may find its bucket's server unavailable.
                Assert.That(IsHashing(name) && flags == SchedulerFlags.None, Is.True, $"{name} gave no server");
                continue;
            }
            Assert.That(picked, Is.SameAs(only));
            chosen++;
        }
        Assert.That(chosen, Is.GreaterThan(0));
        if (IsHashing(name) && flags == SchedulerFlags.None)
        {
            Assert.That(chosen, Is.LessThan(500), "the unavailable servers' buckets should have given no server");
        }
    }
}
