using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Io.Runtime;

/// <summary>The kernel's DNAT for NAT servers on the balancer itself: which servers get a rule, the rule, and what is refused.</summary>
public class LocalNatTableTests
{
    private static readonly InetAddress Own = InetAddress.Parse("198.18.0.2");
    private static readonly InetAddress Own6 = InetAddress.Parse("2001:2::2");
    private static readonly LocalNatTable Table = new(address => address == Own || address == Own6);

    private static VirtualServiceSpec Service(string vip, ushort port, params RealServerSpec[] servers) =>
        new(ServiceProtocol.Tcp, InetAddress.Parse(vip), port, "rr") { RealServers = [.. servers] };

    private static RealServerSpec Nat(InetAddress address, ushort port) => new(address, port, ForwardingMethod.Masquerade);

    [Test]
    public void Only_a_nat_server_on_an_own_non_loopback_address_gets_a_dnat_rule_for_frames_from_udr_s_device()
    {
        var rules = new RuleSetSpec([
            Service("198.18.0.100", 80, Nat(Own, 8081), Nat(InetAddress.Parse("198.19.1.13"), 80), new RealServerSpec(Own, 80)),
            Service("198.18.0.100", 443, Nat(InetAddress.Parse("127.0.0.1"), 443)),
            Service("2001:2::100", 0, Nat(Own6, 0)),
        ]);
        IReadOnlyList<(VirtualServiceSpec Service, RealServerSpec Server)> local = Table.LocalNatServers(rules);
        Assert.That(local.Select(l => (l.Service.Port, l.Server.Address)), Is.EqualTo(new[] { ((ushort)80, Own), ((ushort)0, Own6) }),
            "a remote NAT server, a DR server and a loopback one get none");
        string script = LocalNatTable.Script(local);
        Assert.That(script, Does.StartWith("add table inet udr_local\ndelete table inet udr_local\n"), "one atomic replace");
        Assert.That(script, Does.Contain("iifname \"udrlocal0\" ip daddr 198.18.0.100 tcp dport 80 dnat ip to 198.18.0.2:8081"));
        Assert.That(script, Does.Contain("iifname \"udrlocal0\" ip6 daddr 2001:2::100 meta l4proto tcp dnat ip6 to 2001:2::2"), "a port-0 service keeps the port");
        Assert.That(script, Does.Contain("type nat hook postrouting"), "the replies' source is put back where conntrack undoes the DNAT");
        Assert.That(LocalNatTable.Script([]).Trim(), Is.EqualTo("add table inet udr_local\ndelete table inet udr_local"), "no such server: no table");
    }

    [Test]
    public void Two_nat_servers_on_the_balancer_in_one_service_are_refused_naming_the_service()
    {
        var rules = new RuleSetSpec([Service("198.18.0.100", 80, Nat(Own, 8081), Nat(Own, 8082))]);
        ArgumentException? refused = Assert.Throws<ArgumentException>(() => Table.LocalNatServers(rules));
        Assert.That(refused!.Message, Does.Contain("TCP 198.18.0.100:80").And.Contain("198.18.0.2:8081, 198.18.0.2:8082").And.Contain("at most one"));
    }
}
