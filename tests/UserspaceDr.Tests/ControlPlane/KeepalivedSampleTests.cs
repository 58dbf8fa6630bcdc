using UserspaceDr.Admin;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.ControlPlane;

/// <summary>keepalived's own doc/samples, moved into the lab's addresses (tests/keepalived-samples), load as keepalived reads them.</summary>
public class KeepalivedSampleTests
{
    private static KeepalivedConfig Load(string name) =>
        KeepalivedParser.Load(Path.Combine(RepositoryPaths.Root, "tests", "keepalived-samples", name));

    private static string AllUp(KeepalivedConfig config) =>
        RulesFile.Save(KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true));

    [Test]
    public void The_sample_is_a_persistent_NAT_service_with_a_sorry_server_and_mail_and_VRRP_settings_it_warns_about()
    {
        KeepalivedConfig config = Load("keepalived.conf.sample");
        Assert.That(AllUp(config), Is.EqualTo(
            "-A -t 198.18.0.100:80 -s rr -p 50\n" +
            "-a -t 198.18.0.100:80 -r 198.19.1.13:80 -m -w 1\n"));
        VirtualServerConfig vs = config.VirtualServers.Single();
        Assert.That(vs.SorryServer!.Address.ToString() + ":" + vs.SorryServer.Port, Is.EqualTo("198.19.1.14:80"));
        var http = (HttpCheckConfig)vs.RealServers[0].Checkers.Single();
        Assert.That((http.Retry, http.DelayBeforeRetry, http.ConnectTimeout, http.Urls[0].Digest),
            Is.EqualTo((3, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(3), "e138384fdfa918d820655d01f3ab6a4e")));
        Assert.That(config.Warnings.Select(w => w.Message), Is.EqualTo(new[]
        {
            "'notification_email' is not implemented by udr; ignored",
            "'notification_email_from' is not implemented by udr; ignored",
            "'smtp_server' is not implemented by udr; ignored",
            "'smtp_connect_timeout' is not implemented by udr; ignored",
            "'router_id' is not implemented by udr; ignored",
        }));
    }

    [Test]
    public void The_inhibit_sample_keeps_a_failed_server_at_weight_0()
    {
        KeepalivedConfig config = Load("keepalived.conf.inhibit");
        Assert.That(config.VirtualServers[0].RealServers[0].InhibitOnFailure, Is.True, "the comment after the keyword is a comment");
        RuleSetSpecAssert(config, alive: false, "-a -t 198.18.0.100:80 -r 198.19.1.13:80 -m -w 0\n");
    }

    [Test]
    public void The_misc_check_sample_keeps_script_arguments_and_timeouts()
    {
        KeepalivedConfig config = Load("keepalived.conf.misc_check");
        var first = (MiscCheckConfig)config.VirtualServers[0].RealServers[0].Checkers.Single();
        var second = (MiscCheckConfig)config.VirtualServers[0].RealServers[1].Checkers.Single();
        Assert.That((first.Path, first.Timeout, first.Dynamic), Is.EqualTo(("/usr/bin/test -d /", TimeSpan.FromSeconds(5), false)));
        Assert.That((second.Timeout, second.Dynamic), Is.EqualTo((TimeSpan.FromSeconds(6), true)), "misc_timeout defaults to delay_loop");
    }

    [Test]
    public void The_ssl_sample_checks_another_port_with_the_deprecated_retry_keyword()
    {
        KeepalivedConfig config = Load("keepalived.conf.SSL_GET.port");
        Assert.That(AllUp(config), Does.StartWith("-A -t 198.18.0.100:443 -s rr -p 50\n-a -t 198.18.0.100:443 -r 198.18.0.11:443 -g -w 1\n"));
        var ssl = (HttpCheckConfig)config.VirtualServers[0].RealServers[0].Checkers.Single();
        Assert.That((ssl.Kind, ssl.ConnectPort, ssl.Retry, ssl.Urls[0].Path), Is.EqualTo((CheckerKind.Ssl, (ushort)444, 3, "/")));
    }

    private static void RuleSetSpecAssert(KeepalivedConfig config, bool alive, string serverLine) =>
        Assert.That(RulesFile.Save(KeepalivedRules.Build(config, (_, rs) => new ServerHealth(alive, rs.Weight), _ => true)), Does.EndWith(serverLine));
}
