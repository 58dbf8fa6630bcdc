using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Node.Plans;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Node;

/// <summary>What setup plans from what a host holds, and what it refuses before changing anything.</summary>
public class NodePlannerTests
{
    private static readonly InetAddress Vip = InetAddress.Parse("198.18.0.100");

    private static NodeSetupRequest Request(params string[] vips) => new(NodeAddresses.ParseVips(vips.Length == 0 ? ["198.18.0.100"] : vips));

    [Test]
    public void Dr_on_a_fresh_host_hides_arp_on_all_and_the_facing_interface_before_adding_the_vip()
    {
        var host = new FakeHostSystem();
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request(), host);
        Assert.That(plan.Interface.Name, Is.EqualTo("eth0"));
        Assert.That(plan.InterfaceReason, Does.Contain("only interface"));
        Assert.That(plan.Changes.Select(c => c.Describe()), Is.EqualTo(new[]
        {
            "sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1",
            "sysctl net.ipv4.conf.all.arp_announce: 0 -> 2",
            "sysctl net.ipv4.conf.eth0.arp_ignore: 0 -> 1",
            "sysctl net.ipv4.conf.eth0.arp_announce: 0 -> 2",
            "address add 198.18.0.100/32 dev lo",
        }));
        Assert.That(host.Log, Is.Empty, "planning only reads");
    }

    [Test]
    public void An_ipv6_vip_goes_on_lo_as_a_128_and_needs_no_sysctl()
    {
        var host = new FakeHostSystem();
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request("2001:2::100"), host);
        Assert.That(plan.Changes.Select(c => c.Describe()), Is.EqualTo(new[] { "address add 2001:2::100/128 dev lo" }),
            "Linux advertises only addresses on the interface a solicitation arrives on: nothing to hide");
        NodeSetupPlan both = NodePlanner.PlanSetup(Request("198.18.0.100", "2001:2::100"), host);
        Assert.That(both.Changes.Select(c => c.Describe()), Does.Contain("address add 2001:2::100/128 dev lo")
            .And.Contain("address add 198.18.0.100/32 dev lo").And.Contain("sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1"));
    }

    [Test]
    public void An_ipv6_vip_on_eth0_is_refused_before_anything_changes_and_in_tun_mode_it_goes_on_lo_without_sysctls()
    {
        var host = new FakeHostSystem();
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::100"), 128));
        Assert.That(() => NodePlanner.PlanSetup(Request("2001:2::100"), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("answer neighbour solicitations for it"));
        host.Link("eth0").Ipv6Addresses.Clear();
        host.Link("eth0").Ipv6Addresses.Add(new LinkAddress(InetAddress.Parse("2001:2::100"), 64));
        Assert.That(() => NodePlanner.PlanSetup(Request("2001:2::100"), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("this node's own address"));
        Assert.That(host.Log, Is.Empty);
        NodeSetupPlan tunnel = NodePlanner.PlanSetup(Request("2001:2::101") with { Mode = NodeMode.Tunnel }, host);
        Assert.That(tunnel.Changes.Select(c => c.Describe()), Is.EqualTo(new[] { "address add 2001:2::101/128 dev lo" }),
            "IPv6 has no ARP and no reverse-path filter to change");
        Assert.That(tunnel.Notes, Has.Some.Contains("udr node tunnel --vip 2001:2::101"));
    }

    [Test]
    public void Settings_already_right_are_left_alone_and_a_stricter_arp_ignore_is_not_lowered()
    {
        var host = new FakeHostSystem();
        host.Sysctls["net/ipv4/conf/all/arp_ignore"] = "2";
        host.Sysctls["net/ipv4/conf/all/arp_announce"] = "2";
        host.Link("lo").Addresses.Add(new InterfaceAddress(Vip.IPv4, 32));
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request(), host);
        Assert.That(plan.Changes.Select(c => c.Describe()), Is.EqualTo(new[]
        {
            "sysctl net.ipv4.conf.eth0.arp_ignore: 0 -> 1",
            "sysctl net.ipv4.conf.eth0.arp_announce: 0 -> 2",
        }));
    }

    [Test]
    public void Tun_mode_also_turns_rp_filter_off_on_all_and_lo()
    {
        var host = new FakeHostSystem();
        host.Sysctls["net/ipv4/conf/all/rp_filter"] = "2";
        host.Sysctls["net/ipv4/conf/lo/rp_filter"] = "1";
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request() with { Mode = NodeMode.Tunnel }, host);
        Assert.That(plan.Changes.Select(c => c.Describe()), Does.Contain("sysctl net.ipv4.conf.all.rp_filter: 2 -> 0")
            .And.Contain("sysctl net.ipv4.conf.lo.rp_filter: 1 -> 0"));
        Assert.That(plan.Notes, Has.Some.Contains("udr node tunnel"));
    }

    [Test]
    public void The_facing_interface_is_the_explicit_one_else_the_default_routes_else_the_only_one()
    {
        var host = new FakeHostSystem();
        host.AddLink("eth1", ["BROADCAST", "UP"], 1500).Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.19.0.11"), 24));
        Assert.That(() => NodePlanner.PlanSetup(Request(), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("pass --interface").And.Message.Contains("eth0, eth1"));

        host.DefaultRoute = new RouteInfo("eth1", InetAddress.Parse("198.19.0.1"), null, null);
        NodeSetupPlan viaDefault = NodePlanner.PlanSetup(Request(), host);
        Assert.That((viaDefault.Interface.Name, viaDefault.InterfaceReason), Is.EqualTo(("eth1", "the default route's interface")));

        NodeSetupPlan explicitOne = NodePlanner.PlanSetup(Request() with { InterfaceName = "eth0" }, host);
        Assert.That(explicitOne.Interface.Name, Is.EqualTo("eth0"));
        Assert.That(explicitOne.Changes.OfType<SysctlChange>().Select(c => c.Key.Name), Does.Contain("net.ipv4.conf.eth0.arp_ignore"));
    }

    [Test]
    public void Refusals_come_before_any_change()
    {
        var host = new FakeHostSystem();
        Assert.That(() => NodePlanner.PlanSetup(Request() with { InterfaceName = "eth9" }, host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("unknown interface 'eth9'"));
        Assert.That(() => NodePlanner.PlanSetup(Request() with { InterfaceName = "lo" }, host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("loopback"));
        Assert.That(() => NodePlanner.PlanSetup(Request("198.18.0.11"), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("this node's own address"));

        host.Link("eth0").Addresses.Add(new InterfaceAddress(Vip.IPv4, 32));
        Assert.That(() => NodePlanner.PlanSetup(Request(), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("configured on eth0").And.Message.Contains("ip addr del 198.18.0.100/32 dev eth0"));
        Assert.That(() => NodePlanner.PlanSetup(Request() with { Persist = true, SysctlDirectory = "/nonexistent" }, new FakeHostSystem()),
            Throws.InstanceOf<NodeException>().With.Message.Contains("/nonexistent does not exist"));
        Assert.That(host.Log, Is.Empty);
    }

    [TestCase("198.18.0.300", "not an IPv4 or IPv6 address")]
    [TestCase("198.18.0.100/32", "not an IPv4 or IPv6 address")]
    [TestCase("vip", "not an IPv4 or IPv6 address")]
    [TestCase("ff02::1", "multicast")]
    [TestCase("::1", "loopback")]
    [TestCase("::", "unspecified")]
    [TestCase("fe80::1", "link-local")]
    [TestCase("::ffff:198.18.0.100", "IPv4-mapped")]
    [TestCase("127.0.0.2", "loopback")]
    [TestCase("0.0.0.0", "0.0.0.0/8")]
    [TestCase("224.0.0.1", "multicast")]
    [TestCase("255.255.255.255", "broadcast")]
    [TestCase("169.254.1.1", "link-local")]
    public void Bad_vips_are_refused(string text, string expected) =>
        Assert.That(() => NodeAddresses.ParseVips([text]), Throws.InstanceOf<NodeException>().With.Message.Contains(expected));

    [Test]
    public void Vips_are_deduplicated_in_order()
    {
        Assert.That(NodeAddresses.ParseVips(["198.18.0.101", "198.18.0.100", "198.18.0.101"]), Is.EqualTo(new[] { InetAddress.Parse("198.18.0.101"), Vip }));
        Assert.That(() => NodeAddresses.ParseVips([]), Throws.InstanceOf<NodeException>());
    }

    [Test]
    public void Persist_writes_every_wanted_sysctl_once_and_says_how_to_keep_the_vip_on_lo()
    {
        var host = new FakeHostSystem();
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request() with { Persist = true }, host);
        FileWriteChange file = plan.Changes.OfType<FileWriteChange>().Single();
        Assert.That(file.Path, Is.EqualTo("/etc/sysctl.d/90-udr-node.conf"));
        Assert.That(file.Previous, Is.Null);
        Assert.That(file.Content, Does.Contain("net.ipv4.conf.all.arp_ignore = 1\n").And.Contain("net.ipv4.conf.eth0.arp_announce = 2\n"));
        Assert.That(plan.Changes[^1], Is.SameAs(file), "the file is written last, after the kernel took every setting");
        Assert.That(plan.Notes, Has.Some.Contains("Address=198.18.0.100/32").And.Some.Contains("up ip -4 addr add 198.18.0.100/32 dev lo"));

        host.Files[file.Path] = file.Content;
        Assert.That(NodePlanner.PlanSetup(Request() with { Persist = true }, host).Changes.OfType<FileWriteChange>(), Is.Empty,
            "the same content is not written again");
    }
}
