using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>
/// The digest of a hashing scheduler's lookup table (issue 15: balancers behind ECMP agree on every flow only if their
/// tables are the same): it depends on the servers, weights, order and flags alone, so two balancers that built their
/// rules separately agree, and any difference in the rules shows.
/// </summary>
public class TableDigestTests
{
    private static ulong? Digest(string scheduler, SchedulerFlags flags = SchedulerFlags.None, params (int Id, int Weight)[] servers) =>
        Create(scheduler, List([.. servers.Select(s => Server(s.Id, s.Weight))]), flags).TableDigest;

    [TestCase("mh")]
    [TestCase("sh")]
    public void The_same_rules_built_twice_give_the_same_digest_and_any_change_another(string scheduler)
    {
        ulong? first = Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1), (3, 2));
        Assert.Multiple(() =>
        {
            Assert.That(first, Is.Not.Null);
            Assert.That(Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1), (3, 2)), Is.EqualTo(first), "built separately, the same table");
            Assert.That(Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1), (3, 3)), Is.Not.EqualTo(first), "a weight");
            Assert.That(Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1)), Is.Not.EqualTo(first), "a server fewer");
            Assert.That(Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1), (4, 2)), Is.Not.EqualTo(first), "another server");
            Assert.That(Digest(scheduler, SchedulerFlags.Flag2, (1, 1), (2, 1), (3, 2)), Is.Not.EqualTo(first), "the port flag");
        });
    }

    [TestCase("rr")]
    [TestCase("wlc")]
    public void A_scheduler_without_a_lookup_table_has_no_digest(string scheduler) =>
        Assert.That(Digest(scheduler, SchedulerFlags.None, (1, 1), (2, 1)), Is.Null);
}
