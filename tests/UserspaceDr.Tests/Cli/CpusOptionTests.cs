using UserspaceDr.Cli;
using UserspaceDr.Cli.Commands;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Cli;

/// <summary>udr run --cpus LIST: one CPU per worker, each one the process may run on; a clear refusal otherwise (exit 2).</summary>
public class CpusOptionTests
{
    private static readonly int[] FourCpus = [0, 1, 2, 3];

    [Test]
    public void Without_workers_the_list_gives_one_afpacket_worker_per_cpu_in_its_order() =>
        Assert.That(RunCommand.ResolveWorkerCpus("3,1-2", null, FrameBackend.AfPacket, FourCpus), Is.EqualTo(new[] { 3, 1, 2 }));

    [Test]
    public void With_workers_the_list_names_exactly_as_many_cpus() =>
        Assert.Multiple(() =>
        {
            Assert.That(RunCommand.ResolveWorkerCpus("0-1", 2, FrameBackend.AfPacket, FourCpus), Is.EqualTo(new[] { 0, 1 }));
            Assert.That(() => RunCommand.ResolveWorkerCpus("0-2", 2, FrameBackend.AfPacket, FourCpus),
                Throws.TypeOf<UsageException>().With.Message.EqualTo("--cpus 0-2 names 3 CPU(s), but --workers 2 needs 2: one CPU per worker"));
        });

    [TestCase(FrameBackend.Xdp, "xdp")]
    [TestCase(FrameBackend.Pcap, "pcap")]
    public void The_single_worker_backends_take_one_cpu(FrameBackend backend, string name) =>
        Assert.Multiple(() =>
        {
            Assert.That(RunCommand.ResolveWorkerCpus("2", null, backend, FourCpus), Is.EqualTo(new[] { 2 }));
            Assert.That(RunCommand.ResolveWorkerCpus("2", 4, backend, FourCpus), Is.EqualTo(new[] { 2 }));
            Assert.That(() => RunCommand.ResolveWorkerCpus("0,1", null, backend, FourCpus),
                Throws.TypeOf<UsageException>().With.Message.EqualTo($"--cpus 0,1 names 2 CPU(s), but --backend {name} (one worker) needs 1: one CPU per worker"));
        });

    [Test]
    public void A_cpu_outside_the_process_affinity_is_refused_with_the_allowed_ones() =>
        Assert.That(() => RunCommand.ResolveWorkerCpus("1,4-5", null, FrameBackend.AfPacket, FourCpus),
            Throws.TypeOf<UsageException>().With.Message.EqualTo("--cpus 1,4-5: CPU 4-5 is not one udr may run on (allowed: 0-3)"));

    [Test]
    public void A_malformed_list_is_refused_with_the_option_and_the_reason() =>
        Assert.That(() => RunCommand.ResolveWorkerCpus("2-x", null, FrameBackend.AfPacket, FourCpus),
            Throws.TypeOf<UsageException>().With.Message.EqualTo("--cpus 2-x: \"2-x\" is not a CPU number or a range of them (like 2 or 0-3)"));
}
