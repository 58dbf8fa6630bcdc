using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

public class WeightedRoundRobinSchedulerTests
{
    private static string Name(RealServer server, RealServer a, RealServer b, RealServer? c = null) =>
        ReferenceEquals(server, a) ? "A" : ReferenceEquals(server, b) ? "B" : ReferenceEquals(server, c) ? "C" : "?";

    /// <summary>
    /// A previous instance whose cw is above every new mw: ip_vs_wrr_dest_changed then sets cw = mw, so the new
    /// scheduler starts a whole cycle from the head (what an edit that lowers the top weight does).
    /// </summary>
    private static WeightedRoundRobinScheduler CycleStart
    {
        get
        {
            // Weights 1000 and 1 start at cw 1 (see the per-add test); the third pick wraps and sets cw = mw = 1000.
            var previous = new WeightedRoundRobinScheduler(List(Server(98, 1000), Server(99, 1)), SchedulerFlags.None);
            _ = PickSequence(previous, 3, _ => "x");
            return previous;
        }
    }

    [Test]
    public void A_new_service_starts_where_the_kernels_per_add_hook_leaves_cw()
    {
        // -A, then -a C (w2), -a B (w3), -a A (w4): init cw = 0; dest_changed after C: di 2, mw 1, cw 0 -> 1;
        // after B: di 1, mw 3, cw stays 1; after A: mw 4, cw stays 1. So the first pass is for weight >= 1 (ABC),
        // then the steady AABABCABC cycle.
        RealServer a = Server(1, 4), b = Server(2, 3), c = Server(3, 2);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(PickSequence(wrr, 21, s => Name(s, a, b, c)), Is.EqualTo("ABC" + "AABABCABC" + "AABABCABC"));
    }

    [Test]
    public void An_edit_keeps_cw_when_it_still_fits()
    {
        RealServer a = Server(1, 4), b = Server(2, 3), c = Server(3, 2);
        var before = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None, CycleStart);
        Assert.That(PickSequence(before, 2, s => Name(s, a, b, c)), Is.EqualTo("AA"), "cw 4, then 3");
        // Same weights, a new instance (an unrelated edit): cw 3 is kept, the position goes back to the head.
        var after = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None, before);
        Assert.That(PickSequence(after, 7, s => Name(s, a, b, c)), Is.EqualTo("AB" + "ABC" + "AB"));
    }

    [Test]
    public void Weights_4_3_2_give_AABABCABC_repeating()
    {
        RealServer a = Server(1, 4), b = Server(2, 3), c = Server(3, 2);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None, CycleStart);
        Assert.That(PickSequence(wrr, 27, s => Name(s, a, b, c)), Is.EqualTo("AABABCABC" + "AABABCABC" + "AABABCABC"));
    }

    [Test]
    public void Weights_4_2_give_AAB_repeating()
    {
        // gcd 2: mw = 4 - (2 - 1) = 3, passes cw = 3, then 1.
        RealServer a = Server(1, 4), b = Server(2, 2);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b), SchedulerFlags.None, CycleStart);
        Assert.That(PickSequence(wrr, 9, s => Name(s, a, b)), Is.EqualTo("AABAABAAB"));
    }

    [Test]
    public void Weights_6_4_2_step_by_their_gcd()
    {
        // di = 2, mw = 5: passes cw = 5 (A), 3 (A, B), 1 (A, B, C).
        RealServer a = Server(1, 6), b = Server(2, 4), c = Server(3, 2);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None, CycleStart);
        Assert.That(PickSequence(wrr, 12, s => Name(s, a, b, c)), Is.EqualTo("AABABC" + "AABABC"));
    }

    [Test]
    public void Quiesced_server_is_never_chosen()
    {
        RealServer a = Server(1, 2), b = Server(2, 0), c = Server(3, 1);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None, CycleStart);
        Assert.That(PickSequence(wrr, 9, s => Name(s, a, b, c)), Is.EqualTo("AACAACAAC"));
    }

    [Test]
    public void Overloaded_server_is_skipped()
    {
        RealServer a = Server(1, 1), b = Server(2, 1), c = Server(3, 1);
        Overload(b);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b, c), SchedulerFlags.None);
        Assert.That(PickSequence(wrr, 6, s => Name(s, a, b, c)), Is.EqualTo("ACACAC"));
    }

    [Test]
    public void All_unavailable_gives_null_and_the_rotation_recovers()
    {
        RealServer a = Server(1, 2), b = Server(2, 1);
        Scheduler wrr = new WeightedRoundRobinScheduler(List(a, b), SchedulerFlags.None);
        Assert.That(wrr.Pick(Key(1)), Is.SameAs(a));
        Overload(a);
        Overload(b);
        Assert.That(wrr.Pick(Key(1)), Is.Null);
        Assert.That(wrr.Pick(Key(1)), Is.Null);
        // Lifting the thresholds clears the overload flag (__ip_vs_update_dest); picks must resume.
        a.Update(2, 0, 0);
        b.Update(1, 0, 0);
        string picks = PickSequence(wrr, 6, s => Name(s, a, b));
        Assert.That(picks.Count(ch => ch == 'A'), Is.EqualTo(4), picks);
        Assert.That(picks.Count(ch => ch == 'B'), Is.EqualTo(2), picks);
    }

    [Test]
    public void All_weights_zero_or_no_servers_gives_null()
    {
        Scheduler zero = new WeightedRoundRobinScheduler(List(Server(1, 0), Server(2, 0)), SchedulerFlags.None);
        Scheduler empty = new WeightedRoundRobinScheduler(List(), SchedulerFlags.None);
        Assert.That(zero.Pick(Key(1)), Is.Null);
        Assert.That(empty.Pick(Key(1)), Is.Null);
    }
}
