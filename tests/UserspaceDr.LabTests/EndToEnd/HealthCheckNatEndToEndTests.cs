using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// keepalived's own sample configurations (tests/keepalived-samples: doc/samples with the addresses moved into the
/// lab) served as they are by `udr run --config` in front of the NAT servers rs3 and rs4, their HTTP_GET digests
/// checked against the servers' real pages.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class HealthCheckNatEndToEndTests : HealthCheckFixture
{
    protected override string[] UdrArguments => ["--interface", "eth1"];

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python, withNatServers: true);

    private static string Sample(string name) => File.ReadAllText(Path.Combine(RepositoryPaths.Root, "tests", "keepalived-samples", name));

    [Test]
    public void Keepalived_s_sample_runs_its_NAT_service_and_its_digest_check_passes_against_the_real_page()
    {
        UdrDaemon udr = StartUdr(Sample("keepalived.conf.sample"));
        AssertSplit(Lab.RunClient(ClientPatience, "split", "10", "2", "30"), 10, new Dictionary<string, double> { ["rs3"] = 1.0 });
        Assert.That(udr.Output, Does.Contain("config: ").And.Contain("'smtp_server' is not implemented by udr; ignored"));
        // warmup: the first check comes within delay_loop (6 s).
        Assert.That(AwaitChecks(l => l.Contains("HTTP 200", StringComparison.Ordinal)), Does.Match(@"198\.19\.1\.13:80\s+HTTP_GET\s+up\s+0"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void Keepalived_s_inhibit_sample_keeps_the_server_whose_digest_differs_at_weight_0()
    {
        UdrDaemon udr = StartUdr(Sample("keepalived.conf.inhibit"));
        string checks = AwaitChecks(l => l.Contains("down", StringComparison.Ordinal));
        Assert.That(checks, Does.Contain("HTTP digest of /index.html is e138384fdfa918d820655d01f3ab6a4e, not 2f2e8d38465efdfbb0257b55a043f3d2"));
        Assert.That(Adm("-L", "-n"), Does.Match(@"198\.19\.1\.13:80\s+Masq\s+0\s"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }
}
