using UserspaceDr.Admin;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

public class RuleSetEditorTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.10.1");

    private static IpvsadmResult<RuleSetSpec> Apply(RuleSetSpec rules, params string[] args)
    {
        IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(args);
        Assert.That(parsed.IsSuccess, Is.True, () => $"parse failed: {parsed.Error}");
        return RuleSetEditor.Apply(rules, parsed.Value!);
    }

    private static RuleSetSpec Applied(RuleSetSpec rules, params string[] args)
    {
        IpvsadmResult<RuleSetSpec> result = Apply(rules, args);
        Assert.That(result.IsSuccess, Is.True, () => $"apply failed: {result.Error}");
        return result.Value!;
    }

    private static void AssertKernelError(IpvsadmResult<RuleSetSpec> result, string message)
    {
        Assert.That(result.IsSuccess, Is.False, "expected an error");
        Assert.That(result.Error!.Message, Is.EqualTo(message));
        Assert.That(result.Error.ExitCode, Is.EqualTo(255));
        Assert.That(result.Value, Is.Null);
    }

    /// <summary>TCP 198.18.10.1:80 (wrr, persistent) with three real servers, added in the order .3, .1, .2.</summary>
    private static RuleSetSpec WebService()
    {
        RuleSetSpec rules = Applied(RuleSetSpec.Empty, "-A", "-t", "198.18.10.1:80", "-s", "wrr", "-p", "120", "-M", "255.255.255.0");
        rules = Applied(rules, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.3", "-w", "3");
        rules = Applied(rules, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.1:8080", "-m", "-x", "100", "-y", "10");
        return Applied(rules, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i");
    }

    [Test]
    public void Add_service_records_every_setting()
    {
        RuleSetSpec rules = Applied(RuleSetSpec.Empty, "-A", "-u", "198.18.10.1:53", "-s", "sh", "-b", "sh-port", "-o");
        Assert.That(rules.Services, Has.Length.EqualTo(1));
        VirtualServiceSpec service = rules.Services[0];
        Assert.That(service, Is.EqualTo(new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.FromIPv4(Vip), 53, "sh", SchedulerFlags.Flag2, 0, 0xFFFF_FFFF, true)));
    }

    [Test]
    public void Add_service_defaults()
    {
        VirtualServiceSpec service = Applied(RuleSetSpec.Empty, "-A", "-t", "198.18.10.1:80", "-p").Services[0];
        Assert.Multiple(() =>
        {
            Assert.That(service.Scheduler, Is.EqualTo("wlc"));
            Assert.That(service.PersistenceTimeout, Is.EqualTo(360));
            Assert.That(service.PersistenceNetmask, Is.EqualTo(0xFFFF_FFFFu));
            Assert.That(service.Flags, Is.EqualTo(SchedulerFlags.None));
        });
    }

    [Test]
    public void Add_existing_service_fails()
    {
        RuleSetSpec rules = WebService();
        AssertKernelError(Apply(rules, "-A", "-t", "198.18.10.1:80"), "Service already exists");
        // The same address and port over UDP is another service.
        Assert.That(Applied(rules, "-A", "-u", "198.18.10.1:80").Services, Has.Length.EqualTo(2));
    }

    [TestCase("lblc")]
    [TestCase("dh")]
    [TestCase("nosuch")]
    public void Unknown_scheduler_is_not_found(string scheduler)
    {
        AssertKernelError(Apply(RuleSetSpec.Empty, "-A", "-t", "198.18.10.1:80", "-s", scheduler),
            "Scheduler or persistence engine not found");
        AssertKernelError(Apply(WebService(), "-E", "-t", "198.18.10.1:80", "-s", scheduler),
            "Scheduler or persistence engine not found");
    }

    [Test]
    public void Existence_is_checked_before_the_scheduler_like_the_kernel()
    {
        AssertKernelError(Apply(WebService(), "-A", "-t", "198.18.10.1:80", "-s", "nosuch"), "Service already exists");
        AssertKernelError(Apply(RuleSetSpec.Empty, "-E", "-t", "198.18.10.1:80", "-s", "nosuch"), "No such service");
    }

    [Test]
    public void Edit_service_replaces_every_setting_and_keeps_the_real_servers()
    {
        RuleSetSpec before = WebService();
        RuleSetSpec after = Applied(before, "-E", "-t", "198.18.10.1:80");
        VirtualServiceSpec service = after.Services[0];
        Assert.Multiple(() =>
        {
            // ipvsadm sends DEF_SCHED and no persistence when -s and -p are left out.
            Assert.That(service.Scheduler, Is.EqualTo("wlc"));
            Assert.That(service.PersistenceTimeout, Is.Zero);
            Assert.That(service.PersistenceNetmask, Is.EqualTo(0xFFFF_FFFFu));
            Assert.That(service.RealServers, Is.EqualTo(before.Services[0].RealServers));
        });
        Assert.That(before.Services[0].Scheduler, Is.EqualTo("wrr"), "the input rule set must not change");

        VirtualServiceSpec rr = Applied(before, "-E", "-t", "198.18.10.1:80", "-s", "rr", "-p", "60").Services[0];
        Assert.That(rr.Scheduler, Is.EqualTo("rr"));
        Assert.That(rr.PersistenceTimeout, Is.EqualTo(60));
    }

    [Test]
    public void Edit_missing_service_fails()
    {
        AssertKernelError(Apply(WebService(), "-E", "-u", "198.18.10.1:80"), "No such service");
    }

    [Test]
    public void Delete_service_removes_it_with_its_real_servers()
    {
        RuleSetSpec rules = Applied(WebService(), "-A", "-u", "198.18.10.1:53");
        RuleSetSpec after = Applied(rules, "-D", "-t", "198.18.10.1:80");
        Assert.That(after.Services, Has.Length.EqualTo(1));
        Assert.That(after.Services[0].Protocol, Is.EqualTo(ServiceProtocol.Udp));
        AssertKernelError(Apply(after, "-D", "-t", "198.18.10.1:80"), "No such service");
    }

    [Test]
    public void Clear_empties_the_rule_set()
    {
        Assert.That(Applied(WebService(), "-C").Services, Is.Empty);
    }

    [Test]
    public void Real_servers_keep_insertion_order()
    {
        RuleSetSpec rules = WebService();
        Assert.That(rules.Services[0].RealServers, Is.EqualTo(new[]
        {
            new RealServerSpec(InetAddress.Parse("198.18.12.3"), 80, ForwardingMethod.Route, 3),
            new RealServerSpec(InetAddress.Parse("198.18.12.1"), 8080, ForwardingMethod.Masquerade, 1, 100, 10),
            new RealServerSpec(InetAddress.Parse("198.18.12.2"), 80, ForwardingMethod.Tunnel, 1),
        }));
    }

    [Test]
    public void Add_server_to_missing_service_fails()
    {
        AssertKernelError(Apply(RuleSetSpec.Empty, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.3"), "Service not defined");
    }

    [Test]
    public void Add_existing_server_fails_whatever_its_method()
    {
        AssertKernelError(Apply(WebService(), "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.3", "-i"), "Destination already exists");
        // Another port is another destination (NAT keeps the port it is given).
        Assert.That(Applied(WebService(), "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.3:81", "-m").Services[0].RealServers, Has.Length.EqualTo(4));
    }

    [Test]
    public void Lower_threshold_above_upper_is_out_of_range()
    {
        AssertKernelError(Apply(WebService(), "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.9", "-y", "5"), "Numerical result out of range");
        AssertKernelError(Apply(WebService(), "-e", "-t", "198.18.10.1:80", "-r", "198.18.12.3", "-x", "5", "-y", "6"), "Numerical result out of range");
    }

    [Test]
    public void Edit_server_replaces_every_setting_in_place()
    {
        RuleSetSpec after = Applied(WebService(), "-e", "-t", "198.18.10.1:80", "-r", "198.18.12.1:8080", "-m");
        // -e without -w, -x, -y sends weight 1 and no thresholds, as ipvsadm does.
        Assert.That(after.Services[0].RealServers[1], Is.EqualTo(new RealServerSpec(InetAddress.Parse("198.18.12.1"), 8080, ForwardingMethod.Masquerade, 1)));

        RuleSetSpec reweighted = Applied(WebService(), "-e", "-t", "198.18.10.1:80", "-r", "198.18.12.3", "-w", "0");
        Assert.That(reweighted.Services[0].RealServers[0].Weight, Is.Zero);
        Assert.That(reweighted.Services[0].RealServers[0].Address, Is.EqualTo(InetAddress.Parse("198.18.12.3")));
    }

    [Test]
    public void Edit_server_needs_the_exact_destination()
    {
        // Without -m the port is forced to 80, and 198.18.12.1:80 does not exist.
        AssertKernelError(Apply(WebService(), "-e", "-t", "198.18.10.1:80", "-r", "198.18.12.1:8080"), "No such destination");
        AssertKernelError(Apply(WebService(), "-e", "-u", "198.18.10.1:80", "-r", "198.18.12.3"), "Service not defined");
    }

    [Test]
    public void Delete_server_removes_only_that_destination()
    {
        RuleSetSpec after = Applied(WebService(), "-d", "-t", "198.18.10.1:80", "-r", "198.18.12.1:8080");
        Assert.That(after.Services[0].RealServers.Select(server => server.Address),
            Is.EqualTo(new[] { InetAddress.Parse("198.18.12.3"), InetAddress.Parse("198.18.12.2") }));
        AssertKernelError(Apply(after, "-d", "-t", "198.18.10.1:80", "-r", "198.18.12.1:8080"), "No such destination");
        AssertKernelError(Apply(RuleSetSpec.Empty, "-d", "-t", "198.18.10.1:80", "-r", "198.18.12.1"), "Service not defined");
    }

    [Test]
    public void Zero_checks_the_service_and_changes_nothing()
    {
        RuleSetSpec rules = WebService();
        Assert.That(Applied(rules, "-Z"), Is.SameAs(rules));
        Assert.That(Applied(rules, "-Z", "-t", "198.18.10.1:80"), Is.SameAs(rules));
        AssertKernelError(Apply(rules, "-Z", "-t", "198.18.10.9:80"), "No such service");
    }

    [TestCase(new[] { "-A", "--sctp-service", "198.18.10.1:80" }, "udr does not support SCTP services (--sctp-service); only TCP (-t), UDP (-u) and firewall marks (-f)")]
    [TestCase(new[] { "-A", "-u", "198.18.10.1:5060", "-p", "--pe", "sip" }, "udr does not support persistence engines (--pe sip)")]
    public void Unsupported_features_are_refused_at_apply_time(string[] args, string message)
    {
        AssertKernelError(Apply(WebService(), args), message);
    }

    [Test]
    public void Gue_and_gre_servers_keep_their_options_and_save_as_ipvsadm_saves_them()
    {
        RuleSetSpec rules = Applied(WebService(), "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.7", "-i", "--tun-type", "gue", "--tun-port", "6080");
        rules = Applied(rules, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.8", "-i", "--tun-type", "gue", "--tun-port", "5555", "--tun-remcsum");
        rules = Applied(rules, "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.9", "-i", "--tun-type", "gre", "--tun-csum");
        RealServerSpec[] servers = [.. rules.Services.Single().RealServers.Where(s => s.Address.ToString() is "198.18.12.7" or "198.18.12.8" or "198.18.12.9")];
        Assert.That(servers.Select(s => s.Tunnel), Is.EqualTo(new[]
        {
            new TunnelEncapsulation(TunnelType.Gue, 6080),
            new TunnelEncapsulation(TunnelType.Gue, 5555, TunnelChecksum.RemoteChecksum),
            new TunnelEncapsulation(TunnelType.Gre, 0, TunnelChecksum.Checksum),
        }));
        string saved = RulesFile.Save(rules);
        Assert.That(saved, Does.Contain("-r 198.18.12.7:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n")
            .And.Contain("-r 198.18.12.8:80 -i -w 1 --tun-type gue --tun-port 5555 --tun-remcsum\n")
            .And.Contain("-r 198.18.12.9:80 -i -w 1 --tun-type gre --tun-csum\n"));
        Assert.That(RulesFile.Load(saved).Value, Is.EqualTo(rules).Using<RuleSetSpec>((a, b) => RulesFile.Save(a) == RulesFile.Save(b)), "saved rules load back the same");
        Assert.That(servers.Select(s => s.Tunnel.ToString()), Is.EqualTo(new[] { "gue:6080:-c", "gue:5555:r+c", "gre:+c" }), "--tun-info's column");
        RuleSetSpec edited = Applied(rules, "-e", "-t", "198.18.10.1:80", "-r", "198.18.12.9", "-i");
        Assert.That(edited.Services.Single().RealServers.Single(s => s.Address == InetAddress.Parse("198.18.12.9")).Tunnel, Is.EqualTo(default(TunnelEncapsulation)),
            "an edit without --tun-type makes it IP-in-IP again, as ipvsadm sends the default");
    }

    [Test]
    public void Ipv6_servers_by_every_method_and_the_other_family_by_tunnel()
    {
        RuleSetSpec rules = Applied(RuleSetSpec.Empty, "-A", "-t", "[2001:2::100]:80", "-s", "sh", "-p", "600", "-M", "64");
        rules = Applied(rules, "-a", "-t", "[2001:2::100]:80", "-r", "[2001:2::11]:80", "-g", "-w", "2");
        VirtualServiceSpec service = rules.Services.Single();
        Assert.Multiple(() =>
        {
            Assert.That(service.Address, Is.EqualTo(InetAddress.Parse("2001:2::100")));
            Assert.That(service.PersistenceNetmask, Is.EqualTo(64u));
            Assert.That(service.RealServers.Single().Address, Is.EqualTo(InetAddress.Parse("2001:2::11")));
            Assert.That(service.RealServers.Single().Method, Is.EqualTo(ForwardingMethod.Route));
        });
        RuleSetSpec tunnels = Applied(rules, "-a", "-t", "[2001:2::100]:80", "-r", "[2001:2::13]:80", "-i");
        tunnels = Applied(tunnels, "-a", "-t", "[2001:2::100]:80", "-r", "198.18.0.13", "-i");
        Assert.That(RulesFile.Save(tunnels), Does.Contain("-r [2001:2::13]:80 -i -w 1 --tun-type ipip\n").And.Contain("-r 198.18.0.13:80 -i -w 1 --tun-type ipip\n"));
        RuleSetSpec nat = Applied(rules, "-a", "-t", "[2001:2::100]:80", "-r", "[2001:2::12]:8080", "-m");
        Assert.That(RulesFile.Save(nat), Does.Contain("-a -t [2001:2::100]:80 -r [2001:2::12]:8080 -m -w 1\n"));
    }

    [Test]
    public void Explicit_ipip_tunnel_is_accepted()
    {
        RuleSetSpec after = Applied(WebService(), "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.9", "-i", "--tun-type", "ipip");
        Assert.That(after.Services[0].RealServers[^1].Method, Is.EqualTo(ForwardingMethod.Tunnel));
    }

    [TestCase(new[] { "-L", "-n" }, "list")]
    [TestCase(new[] { "-S", "-n" }, "save")]
    [TestCase(new[] { "-R" }, "restore")]
    [TestCase(new[] { "--set", "1", "2", "3" }, "set")]
    [TestCase(new[] { "--start-daemon", "master" }, "start-daemon")]
    [TestCase(new[] { "-h" }, "help")]
    public void Commands_that_do_not_edit_rules_are_refused(string[] args, string name)
    {
        IpvsadmResult<RuleSetSpec> result = Apply(RuleSetSpec.Empty, args);
        Assert.That(result.IsSuccess, Is.False);
        Assert.That(result.Error!.Message, Is.EqualTo($"the '{name}' command does not change the rule set; udr cannot apply it here"));
        Assert.That(result.Error.ExitCode, Is.EqualTo(2));
    }
}
