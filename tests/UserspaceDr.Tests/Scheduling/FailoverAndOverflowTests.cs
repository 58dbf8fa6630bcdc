using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

public class FailoverAndOverflowTests
{
    [Test]
    public void Fo_picks_the_highest_weight_first_in_list_on_a_tie()
    {
        RealServer a = Server(1, 2), b = Server(2, 5), c = Server(3, 5);
        AddActive(b, 1000); // connection counts do not matter to fo
        Assert.That(new WeightedFailoverScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(b));
    }

    [Test]
    public void Fo_fails_over_to_the_next_highest_when_overloaded()
    {
        RealServer a = Server(1, 2), b = Server(2, 5), c = Server(3, 4);
        Overload(b);
        Assert.That(new WeightedFailoverScheduler(List(a, b, c), SchedulerFlags.None).Pick(Key(1)), Is.SameAs(c));
    }

    [Test]
    public void Fo_with_every_weight_zero_gives_null()
    {
        Assert.That(new WeightedFailoverScheduler(List(Server(1, 0), Server(2, 0)), SchedulerFlags.None).Pick(Key(1)), Is.Null);
    }

    [Test]
    public void Ovf_keeps_the_highest_weight_while_active_does_not_exceed_weight()
    {
        RealServer a = Server(1, 1), b = Server(2, 3), c = Server(3, 3);
        AddActive(b, 3); // active == weight: still eligible
        Scheduler ovf = new OverflowConnectionScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(ovf.Pick(Key(1)), Is.SameAs(b));
    }

    [Test]
    public void Ovf_overflows_once_active_exceeds_weight()
    {
        RealServer a = Server(1, 1), b = Server(2, 3), c = Server(3, 2);
        AddActive(b, 4);
        AddInactive(c, 100); // inactive connections are not counted
        Scheduler ovf = new OverflowConnectionScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(ovf.Pick(Key(1)), Is.SameAs(c));
        AddActive(c, 3);
        Assert.That(ovf.Pick(Key(1)), Is.SameAs(a));
        AddActive(a, 2);
        Assert.That(ovf.Pick(Key(1)), Is.Null);
    }
}
