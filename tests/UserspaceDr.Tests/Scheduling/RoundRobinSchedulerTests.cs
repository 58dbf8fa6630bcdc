using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

public class RoundRobinSchedulerTests
{
    private static string Name(RealServer server, RealServer a, RealServer b, RealServer c) =>
        ReferenceEquals(server, a) ? "A" : ReferenceEquals(server, b) ? "B" : ReferenceEquals(server, c) ? "C" : "?";

    [Test]
    public void Rotates_in_list_order_from_the_head()
    {
        RealServer a = Server(1, 1), b = Server(2, 5), c = Server(3, 1);
        Scheduler rr = new RoundRobinScheduler(List(a, b, c), SchedulerFlags.None);
        // ip_vs_rr_schedule ignores the weight's size: only > 0 matters.
        Assert.That(PickSequence(rr, 7, s => Name(s, a, b, c)), Is.EqualTo("ABCABCA"));
    }

    [Test]
    public void Skips_quiesced_and_overloaded_servers()
    {
        RealServer a = Server(1, 1), b = Server(2, 0), c = Server(3, 1), d = Server(4, 1);
        Overload(d);
        Scheduler rr = new RoundRobinScheduler(List(a, b, c, d), SchedulerFlags.None);
        Assert.That(PickSequence(rr, 6, s => Name(s, a, b, c)), Is.EqualTo("ACACAC"));
    }

    [Test]
    public void The_last_pick_is_chosen_again_when_it_is_the_only_one_left()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1);
        Scheduler rr = new RoundRobinScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(rr.Pick(Key(1)), Is.SameAs(a));
        Assert.That(rr.Pick(Key(1)), Is.SameAs(b));
        // Quiesce the others in place (no new instance): the scan wraps round and ends on the last pick itself.
        a.Update(0, 0, 0);
        c.Update(0, 0, 0);
        Assert.That(PickSequence(rr, 3, s => Name(s, a, b, c)), Is.EqualTo("BBB"));
    }

    [Test]
    public void Rotation_goes_on_from_the_last_pick_when_servers_come_back()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1);
        Scheduler rr = new RoundRobinScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(rr.Pick(Key(1)), Is.SameAs(a));
        b.Update(0, 0, 0);
        Assert.That(rr.Pick(Key(1)), Is.SameAs(c));
        b.Update(1, 0, 0);
        Assert.That(PickSequence(rr, 4, s => Name(s, a, b, c)), Is.EqualTo("ABCA"));
    }

    [Test]
    public void Nothing_available_gives_null()
    {
        RealServer a = Server(1, 0), b = Server(2, 1);
        Overload(b);
        Scheduler rr = new RoundRobinScheduler(List(a, b), SchedulerFlags.None);
        Assert.That(rr.Pick(Key(1)), Is.Null);
        Assert.That(new RoundRobinScheduler(List(), SchedulerFlags.None).Pick(Key(1)), Is.Null);
    }
}
