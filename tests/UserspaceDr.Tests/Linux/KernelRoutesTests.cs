using UserspaceDr.Core.Packets;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.Linux;

/// <summary>Route lookup: `ip -j route get` output as iproute2 6.x prints it, and its mapping onto the served links.</summary>
public class KernelRoutesTests
{
    private static readonly LinkInfo Eth0 = new("eth0", 0, ["UP"], 1500, "UP", [new InterfaceAddress(Ipv4Address.Parse("198.18.0.2"), 24)])
    {
        Mac = MacAddress.Read([2, 0, 0, 0, 0, 1]),
    };
    private static readonly LinkInfo Eth1 = new("eth1", 0, ["UP"], 9000, "UP", [new InterfaceAddress(Ipv4Address.Parse("198.19.1.1"), 24)])
    {
        Mac = MacAddress.Read([2, 0, 0, 0, 0, 2]),
    };

    [Test]
    public void A_connected_route_has_device_and_source_but_no_gateway_or_mtu()
    {
        RouteInfo? route = KernelRoutes.ParseUsable(
            """[{"dst":"198.19.1.13","dev":"eth1","prefsrc":"198.19.1.1","flags":[],"uid":0,"cache":[]}]""", out string? error);
        Assert.That(error, Is.Null);
        Assert.That(route, Is.EqualTo(new RouteInfo("eth1", null, InetAddress.Parse("198.19.1.1"), null)));
    }

    [Test]
    public void A_local_route_is_usable_and_maps_to_the_local_stack_s_link_where_there_is_one()
    {
        RouteInfo? route = KernelRoutes.ParseUsable(
            """[{"type":"local","dst":"127.0.0.1","dev":"lo","prefsrc":"127.0.0.1","flags":[],"uid":0,"cache":["local"]}]""", out string? error);
        Assert.That(error, Is.Null);
        Assert.That(route, Is.EqualTo(new RouteInfo("lo", null, InetAddress.Parse("127.0.0.1"), null, "local")));
        InetAddress server = InetAddress.Parse("127.0.0.1");
        Assert.Multiple(() =>
        {
            Assert.That(ServerRoute.From(server, route!, [Eth0, Eth1], out string? problem, localLink: 2),
                Is.EqualTo(new ServerRoute(2, server, null, ServerRoute.LocalMtu)), "the server itself on the local link, never refused as too big");
            Assert.That(problem, Is.Null);
            Assert.That(ServerRoute.From(server, route!, [Eth0, Eth1], out problem), Is.Null, "no local link");
            Assert.That(problem, Does.Contain("an address of the balancer itself"));
        });
    }

    [Test]
    public void A_gateway_route_with_an_mtu_metric()
    {
        RouteInfo? route = KernelRoutes.ParseUsable(
            """[{"dst":"198.19.7.9","gateway":"198.18.5.254","dev":"d0","prefsrc":"198.18.5.1","flags":[],"uid":0,"cache":[],"metrics":[{"mtu":1400}]}]""",
            out string? error);
        Assert.That(error, Is.Null);
        Assert.That(route, Is.EqualTo(new RouteInfo("d0", InetAddress.Parse("198.18.5.254"), InetAddress.Parse("198.18.5.1"), 1400)));
    }

    [TestCase("""[{"type":"unreachable","dst":"198.18.9.9","flags":[],"uid":0,"cache":[]}]""", "route type unreachable")]
    [TestCase("[]", "no route")]
    [TestCase("""[{"dst":"198.18.0.9","flags":[]}]""", "route has no output device")]
    [TestCase("not json", "unreadable")]
    public void Unusable_output_is_refused_with_a_reason(string json, string reason)
    {
        Assert.That(KernelRoutes.ParseUsable(json, out string? error), Is.Null);
        Assert.That(error, Does.Contain(reason));
    }

    [Test]
    public void A_route_maps_to_its_link_its_neighbour_and_the_smaller_mtu()
    {
        InetAddress server = InetAddress.Parse("198.19.7.9");
        InetAddress gateway = InetAddress.Parse("198.19.1.254");
        Assert.Multiple(() =>
        {
            Assert.That(ServerRoute.From(server, new RouteInfo("eth1", gateway, InetAddress.Parse("198.19.1.1"), 1400), [Eth0, Eth1], out _),
                Is.EqualTo(new ServerRoute(1, gateway, InetAddress.Parse("198.19.1.1"), 1400)), "the gateway's MAC, the route's MTU");
            Assert.That(ServerRoute.From(server, new RouteInfo("eth1", null, null, null), [Eth0, Eth1], out _),
                Is.EqualTo(new ServerRoute(1, server, InetAddress.Parse("198.19.1.1"), 9000)), "on-link: the server itself, the link's MTU and address");
            Assert.That(ServerRoute.From(server, new RouteInfo("eth0", null, null, null), [Eth0, Eth1], out _)?.Link, Is.EqualTo((byte)0));
        });
    }

    [Test]
    public void An_ipv6_route_maps_to_its_gateway_and_a_source_of_its_family()
    {
        LinkInfo eth1 = Eth1 with { Ipv6Addresses = [new LinkAddress(InetAddress.Parse("fe80::1:1"), 64, "link")] };
        InetAddress server = InetAddress.Parse("2001:2:0:7::9");
        Assert.Multiple(() =>
        {
            Assert.That(ServerRoute.From(server, new RouteInfo("eth1", InetAddress.Parse("fe80::fe"), null, null), [Eth0, eth1], out _),
                Is.EqualTo(new ServerRoute(1, InetAddress.Parse("fe80::fe"), InetAddress.Parse("fe80::1:1"), 9000)));
            Assert.That(ServerRoute.From(server, new RouteInfo("eth1", null, null, null), [Eth0, Eth1], out _),
                Is.EqualTo(new ServerRoute(1, server, null, 9000)), "a link without IPv6 addresses has no source to solicit from");
        });
    }

    [Test]
    public void A_route_by_an_interface_udr_does_not_serve_is_left_unresolved_with_a_warning()
    {
        InetAddress server = InetAddress.Parse("198.19.7.9");
        Assert.That(ServerRoute.From(server, new RouteInfo("wlan0", null, null, null), [Eth0, Eth1], out string? problem), Is.Null);
        Assert.That(problem, Does.Contain("wlan0").And.Contain("eth0, eth1"));
    }
}
