using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.Linux;

/// <summary>CPU lists as the kernel writes them, and pinning the calling thread with sched_setaffinity.</summary>
public class CpuAffinityTests
{
    [TestCase("0", new[] { 0 })]
    [TestCase("2-5", new[] { 2, 3, 4, 5 })]
    [TestCase("3,1", new[] { 3, 1 })]
    [TestCase("0-1, 8,10-11", new[] { 0, 1, 8, 10, 11 })]
    [TestCase("7-7", new[] { 7 })]
    public void A_cpu_list_reads_in_the_order_written(string list, int[] cpus) =>
        Assert.That(CpuAffinity.ParseList(list), Is.EqualTo(cpus));

    [TestCase("", "an empty CPU list")]
    [TestCase(" ", "an empty CPU list")]
    [TestCase("1,", "\"\" is not a CPU number")]
    [TestCase("a", "\"a\" is not a CPU number")]
    [TestCase("-1", "\"-1\" is not a CPU number")]
    [TestCase("+1", "\"+1\" is not a CPU number")]
    [TestCase("1-", "\"1-\" is not a CPU number")]
    [TestCase("1-2-3", "\"1-2-3\" is not a CPU number")]
    [TestCase("5-2", "\"5-2\": a range runs upwards")]
    [TestCase("0-2,2", "CPU 2 is given twice")]
    [TestCase("8192", "CPU 8192 is past the largest")]
    [TestCase("99999999999", "\"99999999999\" is not a CPU number")]
    public void A_bad_cpu_list_is_refused_with_what_is_wrong(string list, string reason) =>
        Assert.That(() => CpuAffinity.ParseList(list), Throws.TypeOf<FormatException>().With.Message.Contains(reason));

    [TestCase(new[] { 0, 1, 2, 3, 8, 10, 11 }, "0-3,8,10-11")]
    [TestCase(new[] { 5, 1 }, "1,5")]
    [TestCase(new int[0], "")]
    public void Cpus_are_written_as_the_kernel_writes_a_list(int[] cpus, string list) =>
        Assert.That(CpuAffinity.FormatList(cpus), Is.EqualTo(list));

    [Test]
    public void A_thread_pinned_to_an_allowed_cpu_runs_there_only_and_a_cpu_past_the_machine_is_refused()
    {
        IReadOnlyList<int> allowed = CpuAffinity.Allowed();
        Assert.That(allowed, Is.Not.Empty);
        int cpu = allowed[^1];
        (int errno, IReadOnlyList<int> after, int nowhere) = (0, [], 0);
        var thread = new Thread(() =>
        {
            errno = CpuAffinity.PinCurrentThread(cpu);
            after = CpuAffinity.Allowed();
            nowhere = CpuAffinity.PinCurrentThread(CpuAffinity.MaxCpus - 1); // no machine here has 8,192 CPUs
        });
        thread.Start();
        thread.Join();
        Assert.Multiple(() =>
        {
            Assert.That(errno, Is.Zero);
            Assert.That(after, Is.EqualTo(new[] { cpu }), "the thread's affinity is that one CPU");
            Assert.That(nowhere, Is.EqualTo(22), "EINVAL: no CPU of the mask exists");
            Assert.That(CpuAffinity.Allowed(), Is.EqualTo(allowed), "the test's own thread is untouched");
        });
    }
}
