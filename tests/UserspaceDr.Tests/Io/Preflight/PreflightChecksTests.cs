using UserspaceDr.Admin;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Preflight;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Io.Preflight;

/// <summary>The balancer checklist on the in-memory host: each finding, its exit code, and --fix.</summary>
public class PreflightChecksTests
{
    private const string Rules = """
        -A -t 198.18.0.100:80 -s rr
        -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
        -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
        """;

    /// <summary>A balancer that passes everything: VIP /32 on eth0, GRO/LRO off, rp_filter 1, servers resolvable.</summary>
    private static FakeHostSystem Balancer()
    {
        var host = new FakeHostSystem("198.18.0.2");
        host.Link("eth0").Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.18.0.100"), 32));
        host.Offloads["eth0"] = new OffloadFeatures(new OffloadState(false, false), new OffloadState(false, true));
        host.Sysctls["net/ipv4/conf/all/rp_filter"] = "1";
        host.Neighbors[Ipv4Address.Parse("198.18.0.11")] = "02:00:00:00:00:11";
        host.Neighbors[Ipv4Address.Parse("198.18.0.12")] = "02:00:00:00:00:12";
        return host;
    }

    private static PreflightOptions Options(string rules = Rules)
    {
        IpvsadmResult<RuleSetSpec> loaded = RulesFile.Load(rules);
        Assert.That(loaded.IsSuccess, Is.True, () => loaded.Error!.Message);
        return new PreflightOptions("eth0", loaded.Value!);
    }

    private static CheckResult Find(IReadOnlyList<CheckResult> results, string check) => results.Single(r => r.Check == check);

    [Test]
    public void A_ready_balancer_passes_every_check_in_the_published_order()
    {
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(), Balancer());
        Assert.That(results.Select(r => r.Status), Is.All.EqualTo(CheckStatus.Pass), CheckReport.Format(results));
        Assert.That(CheckReport.ExitCode(results), Is.Zero);
        Assert.That(PreflightChecks.All.Select(c => c.Name), Is.EqualTo(new[]
        {
            "interface", "vips", "ipv6", "offloads", "forwarding", "real servers", "tunnel mtu", "nftables", "capabilities", "af_xdp",
        }));
        Assert.That(Find(results, "interface").Detail, Does.Contain("MTU 1500"));
    }

    [Test]
    public void With_the_af_xdp_backend_a_free_interface_passes_and_a_taken_one_or_a_jumbo_mtu_fails()
    {
        Assert.That(PreflightChecks.Run(Options(), Balancer()).Where(r => r.Check == "af_xdp"), Is.Empty, "only for --backend xdp");

        IReadOnlyList<CheckResult> free = PreflightChecks.Run(Options() with { AfXdp = true }, Balancer());
        Assert.That(free.Where(r => r.Check == "af_xdp").Select(r => r.Status), Is.All.EqualTo(CheckStatus.Pass), CheckReport.Format(free));
        Assert.That(free.Where(r => r.Check == "af_xdp").Select(r => r.Detail), Has.Some.Contains("libbpf.so.1 loads"));

        FakeHostSystem taken = Balancer();
        taken.Link("eth0").Xdp = new XdpProgramInfo(42, "xdp_firewall");
        CheckResult refused = PreflightChecks.Run(Options() with { AfXdp = true }, taken).Single(r => r.Check == "af_xdp" && r.Status == CheckStatus.Fail);
        Assert.That(refused.Detail, Does.Contain("'xdp_firewall' (id 42)"));
        Assert.That(refused.Fix, Does.Contain("ip link set dev eth0 xdp off"));

        FakeHostSystem twice = Balancer();
        twice.Link("eth0").Xdp = new XdpProgramInfo(7, "udr_steer");
        Assert.That(PreflightChecks.Run(Options() with { AfXdp = true }, twice).Single(r => r.Check == "af_xdp" && r.Status == CheckStatus.Fail).Detail,
            Does.Contain("another udr serves it"));

        FakeHostSystem jumbo = Balancer();
        jumbo.Link("eth0").Mtu = 9000;
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options() with { AfXdp = true }, jumbo);
        Assert.That(results.Single(r => r.Check == "af_xdp" && r.Status == CheckStatus.Fail).Fix, Does.Contain("lower the MTU to 3822"));
        Assert.That(CheckReport.ExitCode(results), Is.EqualTo(2));
    }

    [Test]
    public void Gro_on_is_a_warning_and_fix_turns_it_off()
    {
        FakeHostSystem host = Balancer();
        host.Offloads["eth0"] = new OffloadFeatures(new OffloadState(true, false), new OffloadState(false, true));
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(), host);
        Assert.That(Find(results, "GRO on eth0").Status, Is.EqualTo(CheckStatus.Warn));
        Assert.That(Find(results, "GRO on eth0").Fix, Does.Contain("ethtool -K eth0 gro off"));
        Assert.That(CheckReport.ExitCode(results), Is.EqualTo(1));
        Assert.That(host.Log, Is.Empty, "without --fix nothing is changed");

        IReadOnlyList<CheckResult> fixedResults = PreflightChecks.Run(Options() with { Fix = true }, host);
        Assert.That(host.Log, Is.EqualTo(new[] { "ethtool -K eth0 gro off" }), "LRO is off and fixed: left alone");
        Assert.That(Find(fixedResults, "GRO on eth0").Detail, Does.Contain("turned off"));
        Assert.That(CheckReport.ExitCode(fixedResults), Is.Zero);
    }

    [Test]
    public void Fixed_gro_cannot_be_fixed_and_stays_a_warning()
    {
        FakeHostSystem host = Balancer();
        host.Offloads["eth0"] = new OffloadFeatures(new OffloadState(true, true), null);
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options() with { Fix = true }, host);
        Assert.That(Find(results, "GRO on eth0").Detail, Does.Contain("fixed by the driver"));
        Assert.That(host.Log, Is.Empty);
    }

    [Test]
    public void An_off_link_real_server_fails_and_an_unresolved_one_warns()
    {
        FakeHostSystem host = Balancer();
        host.Neighbors.Remove(Ipv4Address.Parse("198.18.0.12"));
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(Rules + "\n-a -t 198.18.0.100:80 -r 198.18.1.11:80 -g -w 1\n"), host);
        CheckResult offLink = Find(results, "real server 198.18.1.11 (dr)");
        Assert.That(offLink.Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(offLink.Detail, Does.Contain("off-link").And.Contain("198.18.0.2/24"));
        Assert.That(Find(results, "real server 198.18.0.12 (dr)").Status, Is.EqualTo(CheckStatus.Warn));
        Assert.That(Find(results, "real server 198.18.0.11 (dr)").Detail, Does.Contain("02:00:00:00:00:11"));
        Assert.That(CheckReport.ExitCode(results), Is.EqualTo(2));
    }

    [Test]
    public void A_server_on_the_balancer_itself_passes_by_direct_routing_and_nat_and_fails_by_nat_to_loopback()
    {
        FakeHostSystem host = Balancer();
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(Rules + """

            -a -t 198.18.0.100:80 -r 127.0.0.1:80 -g -w 1
            -A -t 198.18.0.100:8080 -s rr
            -a -t 198.18.0.100:8080 -r 198.18.0.2:8081 -m -w 1
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [::1]:80 -g -w 1
            -A -t 198.18.0.100:8443 -s rr
            -a -t 198.18.0.100:8443 -r 127.0.0.1:443 -m -w 1
            """), host);
        CheckResult loopback = Find(results, "real server 127.0.0.1 (dr)");
        Assert.That(loopback.Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(loopback.Detail, Does.Contain("on the balancer itself").And.Contain("udrlocal0"));
        Assert.That(Find(results, "real server ::1 (dr)").Status, Is.EqualTo(CheckStatus.Pass));
        CheckResult nat = Find(results, "real server 198.18.0.2 (nat)");
        Assert.That(nat.Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(nat.Detail, Does.Contain("inet udr_local"));
        CheckResult loopbackNat = Find(results, "real server 127.0.0.1 (nat)");
        Assert.That(loopbackNat.Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(loopbackNat.Detail, Does.Contain("local-server-masquerade"));
    }

    [Test]
    public void A_mark_service_s_rule_destinations_are_checked_as_vips_and_its_unspecified_address_is_not()
    {
        FakeHostSystem host = Balancer();
        PreflightOptions options = Options("-A -f 1 -s rr\n-a -f 1 -r 198.18.0.11 -g -w 1\n");
        options = options with
        {
            Rules = options.Rules with
            {
                MarkRules = MarkRulesFile.Parse("*mangle\n-A PREROUTING -d 198.18.0.100/31 -p tcp -j MARK --set-mark 1\nCOMMIT\n", "marks"),
            },
        };
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(options, host);
        Assert.That(Find(results, "VIP 198.18.0.100").Status, Is.EqualTo(CheckStatus.Pass), CheckReport.Format(results));
        Assert.That(Find(results, "VIP 198.18.0.101").Status, Is.EqualTo(CheckStatus.Fail), "the rule's /31 holds two addresses");
        Assert.That(results.Select(r => r.Check), Has.None.Contains("0.0.0.0"));
    }

    [Test]
    public void A_missing_vip_fails_unless_udr_answers_arp_and_a_non_local_vip_with_ip_forward_fails()
    {
        FakeHostSystem host = Balancer();
        host.Link("eth0").Addresses.RemoveAll(a => a.PrefixLength == 32);
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(), host);
        CheckResult vip = Find(results, "VIP 198.18.0.100");
        Assert.That(vip.Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(vip.Fix, Does.Contain("ip addr add 198.18.0.100/32 dev eth0"));
        Assert.That(Find(PreflightChecks.Run(Options() with { AnswerArp = true }, host), "VIP 198.18.0.100").Status, Is.EqualTo(CheckStatus.Pass));

        host.Sysctls["net/ipv4/ip_forward"] = "1";
        Assert.That(Find(PreflightChecks.Run(Options() with { AnswerArp = true }, host), "ip_forward").Status, Is.EqualTo(CheckStatus.Fail));
        host.Link("eth0").Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.18.0.100"), 32));
        Assert.That(Find(PreflightChecks.Run(Options(), host), "ip_forward").Status, Is.EqualTo(CheckStatus.Warn));
    }

    [Test]
    public void Missing_interface_nftables_and_capabilities_fail()
    {
        FakeHostSystem host = Balancer();
        host.Nftables = null;
        host.EffectiveCapabilities = 1UL << 13;
        host.IsRoot = false;
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options() with { InterfaceName = "eth9" }, host);
        Assert.That(results.Select(r => (r.Check, r.Status)), Is.EqualTo(new[]
        {
            ("interface", CheckStatus.Fail), ("nftables", CheckStatus.Fail), ("capabilities", CheckStatus.Fail),
        }), "checks that need the interface are skipped");
        Assert.That(Find(results, "capabilities").Detail, Does.Contain("CAP_NET_ADMIN").And.Not.Contain("CAP_NET_RAW"));
        Assert.That(Find(PreflightChecks.Run(Options() with { KernelIsolation = false }, host), "nftables").Status, Is.EqualTo(CheckStatus.Warn));
    }

    [Test]
    public void Tunnel_servers_need_a_route_and_room_for_the_outer_header()
    {
        FakeHostSystem host = Balancer();
        host.AddLink("eth1", ["BROADCAST", "UP"], 1500).Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.19.0.2"), 24));
        host.Routes[Ipv4Address.Parse("198.19.5.5")] = new RouteInfo("eth1", InetAddress.Parse("198.19.0.1"), null, null);
        const string rules = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.5.5:80 -i -w 1\n-a -t 198.18.0.100:80 -r 198.19.6.6:80 -i -w 1\n";
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(rules), host);
        Assert.That(Find(results, "real server 198.19.5.5 (tun)").Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(Find(results, "real server 198.19.6.6 (tun)").Status, Is.EqualTo(CheckStatus.Fail), "no route (no default route either)");
        CheckResult mtu = Find(results, "tunnel mtu to 198.19.5.5");
        Assert.That(mtu.Status, Is.EqualTo(CheckStatus.Warn));
        Assert.That(mtu.Fix, Does.Contain("1520").And.Contain("1440"));

        host.Link("eth1").Mtu = 1520;
        Assert.That(Find(PreflightChecks.Run(Options(rules), host), "tunnel mtu to 198.19.5.5").Status, Is.EqualTo(CheckStatus.Pass));
    }

    /// <summary>`udr run --interface eth0 --interface eth1`: the VIP on the public side, the NAT servers on the private one.</summary>
    [Test]
    public void A_run_on_two_interfaces_reports_each_vip_and_server_once_on_the_interface_that_has_it()
    {
        FakeHostSystem host = Balancer();
        host.AddLink("eth1", ["BROADCAST", "UP"], 1500).Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.19.1.1"), 24));
        host.Offloads["eth1"] = host.Offloads["eth0"];
        host.Neighbors[Ipv4Address.Parse("198.19.1.13")] = "02:00:00:00:00:13";
        string rules = Rules + "\n-A -t 198.18.0.100:8080 -s rr\n-a -t 198.18.0.100:8080 -r 198.19.1.13:80 -m -w 1\n";
        PreflightOptions eth0 = Options(rules) with { RunInterfaces = ["eth0", "eth1"] };
        PreflightOptions eth1 = eth0 with { InterfaceName = "eth1" };
        IReadOnlyList<CheckResult> onEth0 = PreflightChecks.Run(eth0, host);
        IReadOnlyList<CheckResult> onEth1 = PreflightChecks.Run(eth1, host);
        Assert.That(onEth0.Concat(onEth1).Where(r => r.Status == CheckStatus.Fail), Is.Empty, CheckReport.Format([.. onEth0, .. onEth1]));
        Assert.That(Find(onEth0, "VIP 198.18.0.100").Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(onEth1.Where(r => r.Check.StartsWith("VIP", StringComparison.Ordinal)), Is.Empty, "eth0 reports the VIP");
        Assert.That(Find(onEth1, "real server 198.19.1.13 (nat)").Detail, Does.Contain("on-link on eth1, at 02:00:00:00:00:13"));
        Assert.That(onEth0.Where(r => r.Check.Contains("198.19.1.13", StringComparison.Ordinal)), Is.Empty, "eth1 reports the NAT server");
        Assert.That(onEth1.Where(r => r.Check.Contains("(dr)", StringComparison.Ordinal)), Is.Empty, "eth0 reports the DR servers");

        // What no interface of the run has is reported once, by the first.
        host.Link("eth0").Addresses.RemoveAll(a => a.PrefixLength == 32);
        Assert.That(Find(PreflightChecks.Run(eth0, host), "VIP 198.18.0.100").Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(PreflightChecks.Run(eth1, host).Where(r => r.Check.StartsWith("VIP", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public void A_vip_that_keepalived_s_vrrp_holds_may_be_absent_and_an_off_link_nat_server_needs_its_replies_routed_back()
    {
        FakeHostSystem host = Balancer();
        host.Link("eth0").Addresses.RemoveAll(a => a.PrefixLength == 32);
        PreflightOptions options = Options() with { VrrpAddresses = new Dictionary<InetAddress, string> { [InetAddress.Parse("198.18.0.100")] = "VI_1", [InetAddress.Parse("2001:2::100")] = "VI_1" } };
        CheckResult vip = Find(PreflightChecks.Run(options, host), "VIP 198.18.0.100");
        Assert.That((vip.Status, vip.Detail), Is.EqualTo((CheckStatus.Pass, "not here now: VRRP instance VI_1's address, which keepalived adds on the master")));
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::2"), 64));
        CheckResult vip6 = Find(PreflightChecks.Run(options with { Rules = RulesFile.Load("-A -t [2001:2::100]:80 -s rr\n").Value! }, host), "VIP 2001:2::100");
        Assert.That((vip6.Status, vip6.Detail), Is.EqualTo((CheckStatus.Pass, "not here now: VRRP instance VI_1's address, which keepalived adds on the master")),
            "an IPv6 VIP in virtual_ipaddress_excluded alike");

        const string natRules = "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.19.5.5:80 -m -w 1\n-a -t 198.18.0.100:80 -r 198.19.6.6:80 -m -w 1\n";
        host.Routes[Ipv4Address.Parse("198.19.5.5")] = new RouteInfo("eth0", InetAddress.Parse("198.18.0.254"), null, null);
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(natRules), host);
        Assert.That(Find(results, "real server 198.19.5.5 (nat)").Status, Is.EqualTo(CheckStatus.Warn));
        Assert.That(Find(results, "real server 198.19.5.5 (nat)").Detail, Does.Contain("gateway 198.18.0.254"));
        Assert.That(Find(results, "real server 198.19.6.6 (nat)").Status, Is.EqualTo(CheckStatus.Fail), "no route");
    }

    [Test]
    public void Ipv6_services_get_their_vips_address_and_on_link_servers_checked()
    {
        const string Rules6 = """
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1
            -a -t [2001:2::100]:80 -r [2001:2:0:9::11]:80 -g -w 1
            """;
        FakeHostSystem host = Balancer();
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(Rules6), host);
        Assert.That(Find(results, "ipv6 on eth0").Status, Is.EqualTo(CheckStatus.Fail), "no IPv6 address to solicit from");
        Assert.That(Find(results, "VIP 2001:2::100").Status, Is.EqualTo(CheckStatus.Fail));

        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::2"), 64));
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::100"), 128));
        results = PreflightChecks.Run(Options(Rules6), host);
        Assert.Multiple(() =>
        {
            Assert.That(results.Where(r => r.Check == "ipv6 on eth0"), Is.Empty);
            Assert.That(Find(results, "VIP 2001:2::100").Status, Is.EqualTo(CheckStatus.Pass));
            Assert.That(Find(results, "real server 2001:2::11 (dr)").Status, Is.EqualTo(CheckStatus.Pass));
            Assert.That(Find(results, "real server 2001:2:0:9::11 (dr)").Status, Is.EqualTo(CheckStatus.Fail), "off the interface's prefix");
        });
        host.Link("eth0").Ipv6Addresses.RemoveAt(1);
        Assert.That(Find(PreflightChecks.Run(Options(Rules6) with { AnswerArp = true }, host), "VIP 2001:2::100").Status, Is.EqualTo(CheckStatus.Pass),
            "udr answers for it");
    }

    [Test]
    public void Ipv6_nat_and_tunnel_servers_need_a_way_to_them_and_an_ipv4_services_ipv6_tunnel_server_is_checked_too()
    {
        const string Rules = """
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [2001:2::13]:8080 -m -w 1
            -a -t [2001:2::100]:80 -r [2001:2:7::21]:80 -i -w 1
            -a -t [2001:2::100]:80 -r [2001:2:8::21]:80 -i -w 1
            -A -t 198.18.0.100:80 -s rr
            -a -t 198.18.0.100:80 -r [2001:2:9::21]:80 -i -w 1
            """;
        FakeHostSystem host = Balancer();
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::2"), 64));
        host.Ipv6Routes[InetAddress.Parse("2001:2:7::21").IPv6] = new RouteInfo("eth0", InetAddress.Parse("2001:2::fe"), null, null);
        host.Ipv6Routes[InetAddress.Parse("2001:2:9::21").IPv6] = new RouteInfo("eth0", InetAddress.Parse("2001:2::fe"), null, null);
        IReadOnlyList<CheckResult> results = PreflightChecks.Run(Options(Rules) with { AnswerArp = true }, host);
        Assert.Multiple(() =>
        {
            Assert.That(Find(results, "real server 2001:2::13 (nat)").Status, Is.EqualTo(CheckStatus.Pass), "on-link");
            Assert.That(Find(results, "real server 2001:2:7::21 (tun)").Status, Is.EqualTo(CheckStatus.Pass));
            Assert.That(Find(results, "real server 2001:2:7::21 (tun)").Detail, Does.Contain("gateway 2001:2::fe"));
            Assert.That(Find(results, "real server 2001:2:8::21 (tun)").Status, Is.EqualTo(CheckStatus.Fail), "no route");
            Assert.That(Find(results, "real server 2001:2:9::21 (tun)").Status, Is.EqualTo(CheckStatus.Pass), "an IPv4 service's IPv6 tunnel server");
        });
    }

    [Test]
    public void With_two_interfaces_each_reports_its_own_ipv6_vips_and_servers_and_the_first_what_belongs_to_none()
    {
        const string Rules = """
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1
            -a -t [2001:2::100]:80 -r [2001:2:1::13]:8080 -m -w 1
            -a -t [2001:2::100]:80 -r [2001:2:9::11]:80 -g -w 1
            """;
        FakeHostSystem host = Balancer();
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::2"), 64));
        host.AddLink("eth1", ["BROADCAST", "UP"], 1500).Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2:1::1"), 64));
        host.Offloads["eth1"] = host.Offloads["eth0"];
        PreflightOptions eth0 = Options(Rules) with { RunInterfaces = ["eth0", "eth1"], AnswerArp = true };
        IReadOnlyList<CheckResult> first = PreflightChecks.Run(eth0, host);
        IReadOnlyList<CheckResult> second = PreflightChecks.Run(eth0 with { InterfaceName = "eth1" }, host);
        Assert.Multiple(() =>
        {
            Assert.That(Find(first, "real server 2001:2::11 (dr)").Status, Is.EqualTo(CheckStatus.Pass));
            Assert.That(first.Where(r => r.Check.Contains("2001:2:1::13", StringComparison.Ordinal)), Is.Empty, "eth1's to report");
            Assert.That(Find(first, "real server 2001:2:9::11 (dr)").Status, Is.EqualTo(CheckStatus.Fail), "on no segment: the first reports it");
            Assert.That(Find(second, "real server 2001:2:1::13 (nat)").Status, Is.EqualTo(CheckStatus.Pass));
            Assert.That(second.Where(r => r.Status == CheckStatus.Fail && (r.Check.Contains("2001:2", StringComparison.Ordinal) || r.Check.StartsWith("ipv6", StringComparison.Ordinal))),
                Is.Empty, "eth1 reports nothing of eth0's");
        });
    }
}
