using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Linux;

/// <summary>The parsers over what ip, ethtool and /proc print, fed with output captured in the lab.</summary>
public class HostParsersTests
{
    // `ip -j addr show` in a lab real server (lifetimes trimmed); IPv6 addresses go to Ipv6Addresses.
    private const string IpAddrJson = """
        [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN",
          "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},
                       {"family":"inet","local":"198.18.0.100","prefixlen":32,"scope":"global","label":"lo"},
                       {"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
         {"ifindex":2,"link_index":5,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"operstate":"UP",
          "link_type":"ether","address":"02:00:00:00:00:0b","broadcast":"ff:ff:ff:ff:ff:ff",
          "link_netnsid":0,"addr_info":[{"family":"inet","local":"198.18.0.11","prefixlen":24,"scope":"global","label":"eth0"},
                                        {"family":"inet6","local":"2001:2::11","prefixlen":64,"scope":"global"},
                                        {"family":"inet6","local":"fe80::ff:fe00:b","prefixlen":64,"scope":"link"}]},
         {"ifindex":3,"ifname":"tun0","flags":["POINTOPOINT","NOARP"],"mtu":1480,"operstate":"DOWN","addr_info":[]}]
        """;

    [Test]
    public void Ip_addr_json_gives_links_flags_mtu_and_ipv4_addresses()
    {
        IReadOnlyList<LinkInfo> links = HostParsers.ParseAddresses(IpAddrJson);
        Assert.That(links.Select(l => l.Name), Is.EqualTo(new[] { "lo", "eth0", "tun0" }));
        Assert.That(links[0].Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "127.0.0.1/8", "198.18.0.100/32" }));
        Assert.That(links[0].IsLoopback && !links[0].AnswersArp, Is.True);
        Assert.That(links[1].Mtu, Is.EqualTo(1500));
        Assert.That(links[1].IsUp && links[1].AnswersArp, Is.True);
        Assert.That(links[1].IsOnLink(Ipv4Address.Parse("198.18.0.12")), Is.True);
        Assert.That(links[1].IsOnLink(Ipv4Address.Parse("198.18.1.12")), Is.False);
        Assert.That(links[2].AnswersArp || links[2].IsUp, Is.False, "NOARP and not UP");
        Assert.That(links[1].Mac, Is.EqualTo(MacAddress.Read([2, 0, 0, 0, 0, 0x0b])), "the link's hardware address");
        Assert.That(links[2].Mac, Is.EqualTo(MacAddress.Zero), "a TUN device has none");
        Assert.That(links[1].SourceAddressFor(Ipv4Address.Parse("198.18.0.12")), Is.EqualTo(Ipv4Address.Parse("198.18.0.11")));
        Assert.That(() => HostParsers.ParseAddresses("not json"), Throws.InstanceOf<HostException>());
    }

    [Test]
    public void An_attached_xdp_program_is_read_with_its_id_and_name()
    {
        const string json = """
            [{"ifindex":2,"ifname":"eth0","flags":["UP"],"mtu":1500,"xdp":{"mode":1,"prog":{"id":385,"name":"udr_steer","tag":"5c434ed192b1ee53","jited":1},
              "attached":[{"mode":1,"prog":{"id":385,"name":"udr_steer"}}]},"operstate":"UP","addr_info":[]},
             {"ifindex":3,"ifname":"eth1","flags":["UP"],"mtu":1500,"operstate":"UP","addr_info":[]}]
            """;
        IReadOnlyList<LinkInfo> links = HostParsers.ParseAddresses(json);
        Assert.That(links[0].Xdp, Is.EqualTo(new XdpProgramInfo(385, "udr_steer")));
        Assert.That(links[1].Xdp, Is.Null);
    }

    [Test]
    public void Ipv6_addresses_are_kept_apart_with_their_scope_and_choose_the_source_towards_a_neighbour()
    {
        IReadOnlyList<LinkInfo> links = HostParsers.ParseAddresses(IpAddrJson);
        LinkInfo eth0 = links[1];
        Assert.Multiple(() =>
        {
            Assert.That(links[0].Ipv6Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "::1/128" }));
            Assert.That(eth0.Ipv6Addresses.Select(a => $"{a} {a.Scope}"), Is.EqualTo(new[] { "2001:2::11/64 global", "fe80::ff:fe00:b/64 link" }));
            Assert.That(eth0.Addresses.Select(a => a.ToString()), Is.EqualTo(new[] { "198.18.0.11/24" }), "IPv4 list unchanged");
            Assert.That(eth0.SourceAddressFor(InetAddress.Parse("2001:2::12")), Is.EqualTo(InetAddress.Parse("2001:2::11")), "on the prefix");
            Assert.That(eth0.SourceAddressFor(InetAddress.Parse("2001:2:0:1::12")), Is.EqualTo(InetAddress.Parse("fe80::ff:fe00:b")),
                "off the prefix: the link-local address");
            Assert.That(eth0.SourceAddressFor(InetAddress.Parse("198.18.0.12")), Is.EqualTo(InetAddress.Parse("198.18.0.11")));
            Assert.That(links[2].SourceAddressFor(InetAddress.Parse("2001:2::12")), Is.Null, "no IPv6 address");
            Assert.That(eth0.Owns(InetAddress.Parse("2001:2::11")) && eth0.Owns(InetAddress.Parse("198.18.0.11")), Is.True);
            Assert.That(eth0.Owns(InetAddress.Parse("2001:2::12")), Is.False);
        });
    }

    [Test]
    public void An_ipv6_route_keeps_its_link_local_gateway()
    {
        RouteInfo? route = HostParsers.ParseFirstRoute(
            """[{"dst":"2001:2:0:7::9","gateway":"fe80::1","dev":"eth1","prefsrc":"2001:2::1","metric":1024,"flags":[],"pref":"medium"}]""");
        Assert.That(route, Is.EqualTo(new RouteInfo("eth1", InetAddress.Parse("fe80::1"), InetAddress.Parse("2001:2::1"), null)));
    }

    [Test]
    public void Ip_route_json_gives_device_gateway_source_and_mtu()
    {
        RouteInfo? route = HostParsers.ParseFirstRoute(
            """[{"dst":"default","gateway":"198.18.0.1","dev":"eth0","prefsrc":"198.18.0.11","metrics":[{"mtu":1400}],"flags":[]}]""");
        Assert.That(route, Is.EqualTo(new RouteInfo("eth0", InetAddress.Parse("198.18.0.1"), InetAddress.Parse("198.18.0.11"), 1400)));
        Assert.That(HostParsers.ParseFirstRoute("[]"), Is.Null);
        Assert.That(HostParsers.ParseFirstRoute("""[{"type":"local","dst":"127.0.0.1","dev":"lo","prefsrc":"127.0.0.1"}]""")?.Type, Is.EqualTo("local"));
        Assert.That(HostParsers.ParseFirstRoute(""), Is.Null);
    }

    [Test]
    public void Ethtool_k_gives_gro_and_lro_with_fixed()
    {
        const string text = "Features for eth0:\nrx-checksumming: on\ngeneric-receive-offload: on\n" +
                            "large-receive-offload: off [fixed]\nrx-gro-hw: off [fixed]\n";
        OffloadFeatures features = HostParsers.ParseOffloads(text);
        Assert.That(features.Gro, Is.EqualTo(new OffloadState(true, false)));
        Assert.That(features.Lro, Is.EqualTo(new OffloadState(false, true)));
        Assert.That(HostParsers.ParseOffloads("Features for x:\n").Gro, Is.Null);
    }

    [Test]
    public void Proc_status_and_proc_net_arp()
    {
        Assert.That(HostParsers.ParseEffectiveCapabilities("Name:\tudr\nCapPrm:\t0\nCapEff:\t0000000000003000\n"), Is.EqualTo(0x3000UL));
        Assert.That(HostParsers.ParseEffectiveCapabilities("Name:\tudr\n"), Is.Zero);

        const string arp = "IP address       HW type     Flags       HW address            Mask     Device\n" +
                           "198.18.0.11      0x1         0x2         9a:ca:d8:c5:04:9f     *        eth0\n" +
                           "198.18.0.12      0x1         0x0         00:00:00:00:00:00     *        eth0\n";
        Assert.That(HostParsers.FindCompleteArpEntry(arp, Ipv4Address.Parse("198.18.0.11"), "eth0"), Is.EqualTo("9a:ca:d8:c5:04:9f"));
        Assert.That(HostParsers.FindCompleteArpEntry(arp, Ipv4Address.Parse("198.18.0.12"), "eth0"), Is.Null, "incomplete entry");
        Assert.That(HostParsers.FindCompleteArpEntry(arp, Ipv4Address.Parse("198.18.0.11"), "eth1"), Is.Null, "other device");
    }

    [Test]
    public void Sysctl_keys_use_sysctl_notation_and_keep_dotted_interface_names_whole()
    {
        SysctlKey vlan = SysctlKey.Conf("eth0.100", ConfSetting.ArpIgnore);
        Assert.That(vlan.RelativePath, Is.EqualTo("net/ipv4/conf/eth0.100/arp_ignore"));
        Assert.That(vlan.ProcPath, Is.EqualTo("/proc/sys/net/ipv4/conf/eth0.100/arp_ignore"));
        Assert.That(vlan.Name, Is.EqualTo("net.ipv4.conf.eth0/100.arp_ignore"));
        Assert.That(SysctlKey.FromRelativePath(vlan.RelativePath), Is.EqualTo(vlan));
        Assert.That(() => SysctlKey.Conf("../x", "arp_ignore"), Throws.InstanceOf<HostException>());
        Assert.That(() => SysctlKey.FromRelativePath("kernel/../../etc/passwd"), Throws.InstanceOf<HostException>());
    }
}
