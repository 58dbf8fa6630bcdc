using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>rr and wrr keep their position in one CAS'd field: picks from several threads at once must add up to
/// exactly what the same number of sequential picks gives.</summary>
public class ConcurrentPickTests
{
    private const int Threads = 4;

    private static int[] PickConcurrently(Scheduler scheduler, ImmutableArray<RealServer> servers, int picksPerThread)
    {
        int[][] perThread = new int[Threads][];
        using var start = new Barrier(Threads);
        var workers = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int[] counts = perThread[t] = new int[servers.Length + 1];
            workers[t] = new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < picksPerThread; i++)
                {
                    RealServer? picked = scheduler.Pick(Key((uint)i));
                    counts[picked is null ? servers.Length : servers.IndexOf(picked)]++;
                }
            });
            workers[t].Start();
        }
        foreach (Thread worker in workers)
        {
            worker.Join();
        }
        int[] totals = new int[servers.Length + 1];
        foreach (int[] counts in perThread)
        {
            for (int i = 0; i < totals.Length; i++)
            {
                totals[i] += counts[i];
            }
        }
        return totals;
    }

    [Test]
    public void Rr_from_four_threads_gives_exact_shares()
    {
        ImmutableArray<RealServer> servers = List(Server(1, 1), Server(2, 1), Server(3, 1));
        int[] totals = PickConcurrently(new RoundRobinScheduler(servers, SchedulerFlags.None), servers, 30_000);
        Assert.That(totals, Is.EqualTo(new[] { 40_000, 40_000, 40_000, 0 }));
    }

    [Test]
    public void Wrr_3_1_from_four_threads_gives_3000_and_1000()
    {
        ImmutableArray<RealServer> servers = List(Server(1, 3), Server(2, 1));
        int[] totals = PickConcurrently(new WeightedRoundRobinScheduler(servers, SchedulerFlags.None), servers, 1000);
        Assert.That(totals, Is.EqualTo(new[] { 3000, 1000, 0 }));
    }

    [Test]
    public void Wrr_4_3_2_from_four_threads_gives_exact_shares()
    {
        // 4 x 22_500 = 90_000 picks = 10_000 cycles of AABABCABC.
        ImmutableArray<RealServer> servers = List(Server(1, 4), Server(2, 3), Server(3, 2));
        int[] totals = PickConcurrently(new WeightedRoundRobinScheduler(servers, SchedulerFlags.None), servers, 22_500);
        Assert.That(totals, Is.EqualTo(new[] { 40_000, 30_000, 20_000, 0 }));
    }
}
