using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Node;

/// <summary>`udr node check` on the in-memory host: each condition, judged on the kernel's effective value.</summary>
public class NodeCheckTests
{
    private static readonly InetAddress[] Vips = [InetAddress.Parse("198.18.0.100")];

    private static CheckResult Find(IReadOnlyList<CheckResult> results, string check) => results.Single(r => r.Check == check);

    [Test]
    public void Vip_on_lo_with_default_sysctls_is_reported_as_the_arp_leak_with_the_fix()
    {
        var host = new FakeHostSystem();
        host.Link("lo").Addresses.Add(new InterfaceAddress(Vips[0].IPv4, 32));
        IReadOnlyList<CheckResult> results = NodeCheck.Run(Vips, NodeMode.DirectRouting, null, host);
        CheckResult ignore = Find(results, "arp_ignore on eth0");
        Assert.That(ignore.Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(ignore.Detail, Does.Contain("ARP leak"));
        Assert.That(ignore.Fix, Does.Contain("net.ipv4.conf.all.arp_ignore=1").And.Contain("udr node setup --vip 198.18.0.100"));
        Assert.That(Find(results, "arp_announce on eth0").Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(Find(results, "VIP 198.18.0.100 on lo").Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(NodeCheck.ExitCode(results), Is.EqualTo(1));
    }

    [Test]
    public void The_effective_value_is_the_larger_of_all_and_the_interface()
    {
        var host = new FakeHostSystem();
        host.Link("lo").Addresses.Add(new InterfaceAddress(Vips[0].IPv4, 32));
        host.Sysctls["net/ipv4/conf/all/arp_ignore"] = "1";
        host.Sysctls["net/ipv4/conf/eth0/arp_announce"] = "2";
        IReadOnlyList<CheckResult> results = NodeCheck.Run(Vips, NodeMode.DirectRouting, null, host);
        Assert.That(results.Select(r => r.Status), Is.All.EqualTo(CheckStatus.Pass), CheckReport.Format(results));
        Assert.That(Find(results, "arp_ignore on eth0").Detail, Does.Contain("all=1, eth0=0"));
        Assert.That(NodeCheck.ExitCode(results), Is.Zero);

        host.Sysctls["net/ipv4/conf/eth0/arp_ignore"] = "8";
        Assert.That(Find(NodeCheck.Run(Vips, NodeMode.DirectRouting, null, host), "arp_ignore on eth0").Detail, Does.Contain("answers no ARP at all"));
    }

    [Test]
    public void A_vip_on_an_arp_interface_and_a_missing_vip_on_lo_fail()
    {
        var host = new FakeHostSystem();
        host.Sysctls["net/ipv4/conf/all/arp_ignore"] = "1";
        host.Sysctls["net/ipv4/conf/all/arp_announce"] = "2";
        host.Link("eth0").Addresses.Add(new InterfaceAddress(Vips[0].IPv4, 32));
        IReadOnlyList<CheckResult> results = NodeCheck.Run(Vips, NodeMode.DirectRouting, null, host);
        Assert.That(Find(results, "VIP 198.18.0.100 on lo").Fix, Is.EqualTo("ip addr add 198.18.0.100/32 dev lo (or: udr node setup --vip 198.18.0.100)"));
        CheckResult leak = Find(results, "VIP 198.18.0.100 off ARP interfaces");
        Assert.That(leak.Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(leak.Fix, Is.EqualTo("ip addr del 198.18.0.100/32 dev eth0"));
    }

    [Test]
    public void Default_route_from_a_vip_and_tun_rp_filter_fail_and_unknown_interface_is_refused()
    {
        var host = new FakeHostSystem { DefaultRoute = new RouteInfo("eth0", InetAddress.Parse("198.18.0.1"), Vips[0], null) };
        host.Sysctls["net/ipv4/conf/lo/rp_filter"] = "1";
        IReadOnlyList<CheckResult> results = NodeCheck.Run(Vips, NodeMode.Tunnel, "eth0", host);
        Assert.That(Find(results, "default route").Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(Find(results, "rp_filter on lo").Status, Is.EqualTo(CheckStatus.Fail));
        Assert.That(Find(results, "rp_filter on all").Status, Is.EqualTo(CheckStatus.Pass));
        Assert.That(() => NodeCheck.Run(Vips, NodeMode.DirectRouting, "eth9", host), Throws.InstanceOf<NodeException>().With.Message.Contains("eth9"));
    }
}
