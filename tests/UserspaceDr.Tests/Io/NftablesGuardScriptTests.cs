using System.Collections.Immutable;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Io;

/// <summary>The nftables script the guard installs: what it keeps from the balancer's kernel, and what it leaves alone.</summary>
public sealed class NftablesGuardScriptTests
{
    private static RuleSetSpec Rules() => new(
    [
        new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.0.100"), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse("198.19.1.13"), 8080, ForwardingMethod.Masquerade), new RealServerSpec(InetAddress.Parse("198.18.0.11"), 80)],
        },
        new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse("198.18.0.100"), 0, "rr", PersistenceTimeout: 300)
        {
            RealServers = [new RealServerSpec(InetAddress.Parse("198.19.1.14"), 0, ForwardingMethod.Masquerade)],
        },
    ]);

    [Test]
    public void Nat_replies_are_kept_from_the_kernel_by_service_port_and_the_servers_other_traffic_is_not()
    {
        string script = new NftablesGuard("eth1", [Ipv4Address.Parse("198.19.1.1"), Ipv4Address.Parse("198.18.0.2")]).Script(Rules());
        string[] lines = [.. script.Split('\n').Select(l => l.Trim())];
        const string NotOwn = "ip daddr != { 198.18.0.2, 198.19.1.1 }";
        Assert.Multiple(() =>
        {
            Assert.That(lines, Does.Contain($"ip saddr 198.19.1.13 {NotOwn} tcp sport 8080 drop"), script);
            Assert.That(lines, Does.Contain($"ip saddr 198.19.1.14 {NotOwn} meta l4proto udp drop"), "a port-0 service: every port of the server");
            Assert.That(lines, Does.Contain($"{NotOwn} icmp type {{ destination-unreachable, source-quench, time-exceeded, parameter-problem }} @th,192,32 {{ 0xc613010d, 0xc613010e }} drop"),
                "errors quoting a packet to a NAT server, whoever sends them");
            Assert.That(lines, Does.Contain($"ip saddr {{ 198.19.1.13, 198.19.1.14 }} {NotOwn} ip frag-off & 0x1fff != 0 meta l4proto {{ tcp, udp }} drop"));
            // Nothing that would take a NAT server's own DNS, NTP or ssh answers (other ports, echo) from the kernel.
            Assert.That(lines.Where(l => l.StartsWith("ip saddr", StringComparison.Ordinal)), Has.All.Match("sport|l4proto udp drop|frag-off"));
            Assert.That(script, Does.Not.Contain("198.18.0.11 "), "a DR server's traffic is not the guard's business");
        });
    }

    [Test]
    public void A_mark_service_keeps_from_the_kernel_exactly_what_its_rules_select_on_their_interface()
    {
        FirewallMarkRules marks = UserspaceDr.Admin.MarkRulesFile.Parse(
            "*mangle\n" +
            "-A PREROUTING -s 198.18.0.0/24 -d 198.18.0.100/32 -p tcp -m multiport --dports 80,8000:8080 -j MARK --set-xmark 0x1/0xffffffff\n" +
            "-A PREROUTING -i eth2 -d 198.18.0.101/32 -p udp -m udp ! --dport 53 -j MARK --set-xmark 0x1/0xffffffff\n" +
            "-A PREROUTING -d 198.18.0.102/32 -j MARK --set-xmark 0x2/0xffffffff\n" +
            "COMMIT\n", "marks");
        var rules = new RuleSetSpec([VirtualServiceSpec.ForFirewallMark(1, IpFamily.IPv4, "rr")]) { MarkRules = marks };
        string eth1 = new NftablesGuard("eth1").Script(rules);
        string eth2 = new NftablesGuard("eth2").Script(rules);
        Assert.Multiple(() =>
        {
            Assert.That(eth1, Does.Contain("ip saddr 198.18.0.0/24 ip daddr 198.18.0.100/32 meta l4proto tcp th dport { 80, 8000-8080 } drop"), eth1);
            Assert.That(eth1, Does.Not.Contain("198.18.0.101"), "-i eth2: not on eth1");
            Assert.That(eth2, Does.Contain("ip daddr 198.18.0.101/32 meta l4proto udp th dport != { 53 } drop"), eth2);
            Assert.That(eth1 + eth2, Does.Not.Contain("198.18.0.102 "), "mark 2 has no service: its traffic stays the kernel's");
            Assert.That(eth1, Does.Contain("ip daddr 198.18.0.100 ip frag-off & 0x1fff != 0"), "later fragments, as for a VIP");
            Assert.That(eth1, Does.Not.Contain("0.0.0.0"), "a mark service has no address of its own");
        });
    }

    [Test]
    public void Without_nat_servers_the_script_has_no_source_rules()
    {
        var rules = new RuleSetSpec(ImmutableArray.Create(new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.0.100"), 80)
        {
            RealServers = [new RealServerSpec(InetAddress.Parse("198.18.0.11"), 80)],
        }));
        Assert.That(new NftablesGuard("eth0").Script(rules), Does.Not.Contain("saddr"));
    }

    [Test]
    public void Ipv6_vips_are_kept_from_the_kernel_by_port_and_their_fragments_by_the_fragment_header()
    {
        var rules = new RuleSetSpec(
        [
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("2001:2::100"), 80) { RealServers = [new RealServerSpec(InetAddress.Parse("2001:2::11"), 80)] },
            new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse("2001:2::100"), 0) { RealServers = [new RealServerSpec(InetAddress.Parse("2001:2::11"), 0)] },
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.0.100"), 80) { RealServers = [new RealServerSpec(InetAddress.Parse("198.18.0.11"), 80)] },
        ]);
        string[] lines = [.. new NftablesGuard("eth0").Script(rules).Split('\n').Select(l => l.Trim())];
        Assert.Multiple(() =>
        {
            Assert.That(lines, Does.Contain("ip6 daddr 2001:2::100 tcp dport 80 drop"));
            Assert.That(lines, Does.Contain("ip6 daddr 2001:2::100 meta l4proto udp drop"));
            Assert.That(lines, Does.Contain("ip6 daddr 2001:2::100 exthdr frag exists meta l4proto { tcp, udp } drop"));
            Assert.That(lines.Count(l => l.Contains("exthdr frag", StringComparison.Ordinal)), Is.EqualTo(1), "one line per VIP");
            Assert.That(lines, Does.Contain("ip daddr 198.18.0.100 tcp dport 80 drop"));
        });
    }

    [Test]
    public void Ipv6_nat_replies_and_the_servers_errors_are_kept_from_the_kernel_unless_for_the_balancer()
    {
        var rules = new RuleSetSpec(
        [
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("2001:2::100"), 80)
            {
                RealServers = [new RealServerSpec(InetAddress.Parse("2001:2:1::13"), 8080, ForwardingMethod.Masquerade), new RealServerSpec(InetAddress.Parse("2001:2::11"), 80)],
            },
        ]);
        string script = new NftablesGuard("eth1", [], [InetAddress.Parse("2001:2:1::1").IPv6]).Script(rules);
        string[] lines = [.. script.Split('\n').Select(l => l.Trim())];
        const string NotOwn = "ip6 daddr != { 2001:2:1::1 }";
        Assert.Multiple(() =>
        {
            Assert.That(lines, Does.Contain($"ip6 saddr 2001:2:1::13 {NotOwn} tcp sport 8080 drop"), script);
            Assert.That(lines, Does.Contain($"ip6 saddr {{ 2001:2:1::13 }} {NotOwn} icmpv6 type {{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem }} drop"));
            Assert.That(lines, Does.Contain($"ip6 saddr {{ 2001:2:1::13 }} {NotOwn} exthdr frag exists meta l4proto {{ tcp, udp }} drop"));
            Assert.That(script, Does.Not.Contain("saddr 2001:2::11"), "a DR server's traffic is not the guard's business");
        });
    }
}
