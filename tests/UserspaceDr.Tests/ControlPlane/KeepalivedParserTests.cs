using System.Net;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.ControlPlane;

public class KeepalivedParserTests
{
    // The reference's minimal DR configuration (keywords as in keepalived's check_parser.c), one keyword per line.
    private const string DrSample = """
        global_defs {
            router_id LB1
            lvs_timeouts tcp 900 tcpfin 120 udp 300
        }
        vrrp_instance VI_1 {
            state BACKUP
            interface eth0
            virtual_router_id 51
            priority 150
            virtual_ipaddress {
                198.18.0.100/24 dev eth0
            }
        }
        virtual_server 198.18.0.100 80 {
            delay_loop 5
            lvs_sched wlc
            lvs_method DR
            protocol TCP
            inhibit_on_failure                     # weight 0 instead of delete
            real_server 198.18.0.11 8080 {
                weight 2
                TCP_CHECK {
                    connect_timeout 3
                    retry 2
                    delay_before_retry 1
                }
                HTTP_GET {
                    url {
                        path /healthz
                        status_code 200 300-399
                    }
                    connect_timeout 3
                }
            }
            real_server 198.18.0.12 80 {
                weight 1
                TCP_CHECK {
                    connect_port 8443
                }
            }
        }
        """;

    private static RuleSetSpec AllUp(KeepalivedConfig config) =>
        KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true);

    [Test]
    public void The_DR_sample_becomes_the_rule_set_ipvsadm_would_save()
    {
        KeepalivedConfig config = KeepalivedParser.Parse(DrSample);
        // DR forces the real server's port to the service's (keepalived's ipvswrapper.c).
        Assert.That(RulesFile.Save(AllUp(config)), Is.EqualTo(
            "-A -t 198.18.0.100:80 -s wlc\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"));
        Assert.That(config.Globals, Is.EqualTo(new GlobalDefinitions(900, 120, 300)));
        Assert.That(config.VrrpBlocks.Select(b => b.Keyword), Is.EqualTo(new[] { "vrrp_instance" }));
    }

    [Test]
    public void Settings_inherit_from_the_virtual_server_and_take_keepalived_defaults()
    {
        KeepalivedConfig config = KeepalivedParser.Parse(DrSample);
        VirtualServerConfig vs = config.VirtualServers.Single();
        RealServerConfig rs1 = vs.RealServers[0];
        Assert.Multiple(() =>
        {
            Assert.That(rs1.InhibitOnFailure, Is.True, "inhibit_on_failure set on the virtual server");
            var tcp = (TcpCheckConfig)rs1.Checkers[0];
            Assert.That(tcp.ConnectAddress, Is.EqualTo(IPAddress.Parse("198.18.0.11")));
            Assert.That(tcp.ConnectPort, Is.EqualTo(80), "the forced port");
            Assert.That(tcp.ConnectTimeout, Is.EqualTo(TimeSpan.FromSeconds(3)));
            Assert.That(tcp.Retry, Is.EqualTo(2));
            Assert.That(tcp.DelayLoop, Is.EqualTo(TimeSpan.FromSeconds(5)), "delay_loop from the virtual server");
            Assert.That(tcp.Warmup, Is.EqualTo(TimeSpan.FromSeconds(5)), "warmup defaults to delay_loop");
            var http = (HttpCheckConfig)rs1.Checkers[1];
            Assert.That(http.Retry, Is.EqualTo(1), "keepalived's default retry");
            Assert.That(http.DelayBeforeRetry, Is.EqualTo(TimeSpan.FromSeconds(3)), "HTTP's default delay_before_retry");
            Assert.That(http.Urls.Single().StatusMatches(200) && http.Urls.Single().StatusMatches(302), Is.True);
            Assert.That(http.Urls.Single().StatusMatches(204), Is.False);
            var other = (TcpCheckConfig)vs.RealServers[1].Checkers[0];
            Assert.That(other.ConnectPort, Is.EqualTo(8443));
            Assert.That(other.ConnectTimeout, Is.EqualTo(TimeSpan.FromSeconds(5)), "keepalived's default connect_timeout");
        });
    }

    [Test]
    public void Defaults_are_keepalived_s_NAT_wlc_and_60_seconds()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 198.18.0.100 53 {
                protocol UDP
                persistence_timeout
                persistence_granularity 255.255.255.0
                ops
                real_server 198.18.1.11 5353 {
                    DNS_CHECK {
                        type A
                        name lab.example
                    }
                    MISC_CHECK {
                        misc_path "/bin/check --fast"
                        misc_dynamic
                    }
                }
            }
            """);
        Assert.That(RulesFile.Save(AllUp(config)), Is.EqualTo(
            "-A -u 198.18.0.100:53 -s wlc -p 360 -M 255.255.255.0 -o\n" +
            "-a -u 198.18.0.100:53 -r 198.18.1.11:5353 -m -w 1\n"));
        RealServerConfig rs = config.VirtualServers[0].RealServers[0];
        var dns = (DnsCheckConfig)rs.Checkers[0];
        var misc = (MiscCheckConfig)rs.Checkers[1];
        Assert.Multiple(() =>
        {
            Assert.That(dns.Retry, Is.EqualTo(3), "DNS_CHECK's default retry");
            Assert.That(dns.DelayBeforeRetry, Is.EqualTo(TimeSpan.FromSeconds(60)), "DNS_CHECK waits delay_loop between retries");
            Assert.That((dns.Type, dns.Name, dns.ConnectPort), Is.EqualTo(("A", "lab.example", (ushort)5353)));
            Assert.That(misc.Retry, Is.EqualTo(0), "MISC_CHECK's default retry");
            Assert.That(misc.Path, Is.EqualTo("/bin/check --fast"));
            Assert.That(misc.Timeout, Is.EqualTo(TimeSpan.FromSeconds(60)), "misc_timeout defaults to delay_loop");
            Assert.That(misc.Dynamic, Is.True);
        });
    }

    [Test]
    public void Failed_servers_leave_the_pool_or_stay_at_weight_0_and_a_lost_quorum_brings_the_sorry_server()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 198.18.0.100 80 {
                lb_algo rr
                lb_kind NAT
                quorum 2
                sorry_server 198.18.1.99 8080
                real_server 198.18.1.11 80 {
                    inhibit_on_failure
                }
                real_server 198.18.1.12 80 {
                }
            }
            """);
        VirtualServerConfig vs = config.VirtualServers[0];
        Assert.That(Pool(vs, [new(false, 1), new(true, 1)], quorumUp: true), Is.EqualTo(new[] { "198.18.1.11:80 w0", "198.18.1.12:80 w1" }));
        Assert.That(Pool(vs, [new(true, 1), new(false, 1)], quorumUp: true), Is.EqualTo(new[] { "198.18.1.11:80 w1" }));
        Assert.That(Pool(vs, [new(false, 1), new(true, 1)], quorumUp: false), Is.EqualTo(new[] { "198.18.1.11:80 w0", "198.18.1.99:8080 w1" }));
        Assert.That(KeepalivedRules.LiveWeight([new(true, 3), new(false, 5), new(true, 2)]), Is.EqualTo(5));

        static string[] Pool(VirtualServerConfig vs, ServerHealth[] health, bool quorumUp) =>
            [.. KeepalivedRules.Pool(vs, health, quorumUp).Select(s =>
                $"{s.Address}:{s.Port} w{s.Weight}")];
    }

    [Test]
    public void Sorry_server_inhibit_keeps_the_sorry_server_listed_at_weight_0_while_the_pool_serves()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 198.18.0.100 80 {
                lb_kind DR
                sorry_server 198.18.1.99 8080
                sorry_server_inhibit
                real_server 198.18.1.11 80 {
                }
            }
            """);
        VirtualServerConfig vs = config.VirtualServers[0];
        Assert.That(KeepalivedRules.Pool(vs, [new(true, 1)], quorumUp: true).Select(s => (s.Port, s.Weight)), Is.EqualTo(new[] { ((ushort)80, 1), ((ushort)80, 0) }),
            "DR: the sorry server's port is the service's too");
        Assert.That(KeepalivedRules.Pool(vs, [new(false, 1)], quorumUp: false).Select(s => s.Weight), Is.EqualTo(new[] { 1 }));
    }

    [TestCase("lvs_sync_daemon eth1 VI_1", "eth1", "VI_1", 51, 0)]
    [TestCase("lvs_sync_daemon eth1 inst VI_1 id 7 maxlen 1400 port 8900 ttl 2 group 224.0.0.82", "eth1", "VI_1", 7, 8900)]
    [TestCase("lvs_sync_daemon eth2", "eth2", null, 0, 0)]
    public void Lvs_sync_daemon_takes_its_syncid_from_its_instance_unless_given(string line, string device, string? instance, int syncId, int port)
    {
        KeepalivedConfig config = KeepalivedParser.Parse($$"""
            global_defs {
                {{line}}
            }
            vrrp_instance VI_1 {
                virtual_router_id 51
            }
            """);
        LvsSyncDaemon daemon = config.Globals.SyncDaemon!;
        Assert.That((daemon.Interface, daemon.Instance, KeepalivedRules.SyncIdOf(config, daemon), daemon.Port), Is.EqualTo((device, instance, syncId, port)));
    }

    [Test]
    public void Vrrp_addresses_are_the_instances_virtual_ipaddress_entries_of_either_family_without_a_warning()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            vrrp_instance VI_1 {
                virtual_router_id 51
                virtual_ipaddress {
                    198.18.0.100/32 dev eth0
                    198.19.1.1/24 dev eth1 label eth1:vip
                    198.18.0.120-125
                }
                virtual_ipaddress_excluded {
                    2001:2::100/64 dev eth0
                }
            }
            vrrp_instance VI_2 {
                virtual_ipaddress {
                    198.18.0.101
                }
            }
            """);
        Assert.That(KeepalivedRules.VrrpAddresses(config).Select(a => $"{a.Address} {a.Instance}"),
            Is.EqualTo(new[] { "198.18.0.100 VI_1", "198.19.1.1 VI_1", "2001:2::100 VI_1", "198.18.0.101 VI_2" }), "a range is not one address");
        Assert.That(config.Warnings, Is.Empty, "keepalived runs VRRP; nothing in it is udr's to ignore");
    }

    [Test]
    public void Conditional_lines_are_read_when_they_are_udr_s_and_passed_over_when_they_are_another_s()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            global_defs {
                @udr lvs_sync_daemon eth1 VI_1
                @lb1 lvs_timeouts tcp 100
                @^udr lvs_timeouts tcp 200
                @^lb1 lvs_timeouts tcpfin 30
            }
            """);
        Assert.That(config.Globals.SyncDaemon?.Interface, Is.EqualTo("eth1"));
        Assert.That((config.Globals.TcpTimeout, config.Globals.TcpFinTimeout), Is.EqualTo((0, 30)));
    }

    [Test]
    public void Alpha_starts_servers_down()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 198.18.0.100 80 {
                alpha
                real_server 198.18.1.11 80 {
                    TCP_CHECK {
                    }
                }
            }
            """);
        Assert.That(AllUp(config).Services[0].RealServers, Is.Empty);
    }

    [TestCase("virtual_server 198.18.0.100 80 {\n  real_server 198.18.1.11 80 {\n", 2, "not closed")]
    [TestCase("}\n", 1, "closes no block")]
    [TestCase("virtual_server 198.18.0.100 80 {\n  lb_algo lblc\n}\n", 2, "no such scheduler")]
    [TestCase("virtual_server 198.18.0.100 80 {\n  delay_loop soon\n}\n", 2, "not a number of seconds")]
    [TestCase("virtual_server 198.18.0.300 80 {\n}\n", 1, "not an IP address")]
    [TestCase("virtual_server 198.18.0.100 80 {\n  protocol SCTP\n}\n", 2, "SCTP")]
    [TestCase("virtual_server fwmark 0 {\n}\n", 1, "not a mark")]
    [TestCase("virtual_server fwmark 1 {\n}\nvirtual_server fwmark 1 {\n}\n", 3, "FWM 1 is defined twice")]
    [TestCase("virtual_server 198.18.0.100 80 {\n ip_family inet6\n}\n", 2, "conflicts with its address")]
    [TestCase("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.1 80 {\n  HTTP_GET {\n  }\n }\n}\n", 3, "no url")]
    [TestCase("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.1 80 {\n  weight 70000\n }\n}\n", 3, "from 0 to 65535")]
    [TestCase("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.1 80 {\n }\n real_server 198.18.1.1 80 {\n }\n}\n", 4, "given twice")]
    [TestCase("virtual_server 198.18.0.100 80 {\n lvs_method TUN type gue\n}\n", 2, "the port is required")]
    [TestCase("virtual_server 198.18.0.100 80 {\n lvs_method TUN type gre remcsum\n}\n", 2, "remcsum is not one of its checksum options")]
    [TestCase("virtual_server 198.18.0.100 80 {\n lvs_method TUN type vxlan\n}\n", 2, "not ipip, gue or gre")]
    [TestCase("virtual_server 198.18.0.100 80 {\n lvs_method TUN type gue port 6080 csum extra\n}\n", 2, "one argument too many")]
    [TestCase("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.1 80 {\n  UDP_CHECK {\n   require_reply 4Z\n  }\n }\n}\n", 4, "hexadecimal")]
    [TestCase("virtual_server 198.18.0.100 80 {\n}\nvirtual_server 198.18.0.100 80 {\n}\n", 3, "defined twice")]
    [TestCase("virtual_server 198.18.0.100 80 {\n  misc_path \"/bin/x\n}\n", 2, "not closed on its line")]
    [TestCase("global_defs {\n  lvs_sync_daemon eth0 VI_1 id 300\n}\n", 2, "from 0 to 255")]
    [TestCase("global_defs {\n  lvs_sync_daemon eth0 VI_1 flavour x\n}\n", 2, "not inst, id")]
    public void Malformed_configurations_are_refused_with_file_and_line(string text, int line, string message)
    {
        var e = Assert.Throws<ConfigException>(() => KeepalivedParser.Parse(text, "lab.conf"));
        Assert.That(e!.Message, Does.StartWith($"lab.conf:{line}: ").And.Contain(message));
    }

    [Test]
    public void Fwmark_virtual_servers_become_firewall_mark_services_of_their_servers_family()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server fwmark 1 {
              lb_algo rr
              lb_kind DR
              persistence_timeout 300
              real_server 198.18.0.11 80 {
              }
              real_server 198.18.0.12 {
              }
            }
            virtual_server fwmark 1 {
              real_server 2001:2::11 80 {
              }
            }
            virtual_server fwmark 2 {
              ip_family inet6
              lb_kind TUN
              real_server 198.18.0.13 80 {
              }
            }
            """, "lab.conf");
        RuleSetSpec rules = AllUp(config);
        Assert.That(config.VirtualServers.Select(v => v.Name), Is.EqualTo(new[] { "FWM 1", "FWM 1 IPv6", "FWM 2 IPv6" }));
        Assert.That(RulesFile.Save(rules), Is.EqualTo(
            "-A -f 1 -s rr -p 300\n" +
            "-a -f 1 -r 198.18.0.11:80 -g -w 1\n" +
            "-a -f 1 -r 198.18.0.12:0 -g -w 1\n" +
            "-A -f 1 -6 -s wlc\n" +
            "-a -f 1 -6 -r [2001:2::11]:80 -m -w 1\n" +
            "-A -f 2 -6 -s wlc\n" +
            "-a -f 2 -6 -r 198.18.0.13:80 -i -w 1 --tun-type ipip\n"));

        KeepalivedConfig mixed = KeepalivedParser.Parse("virtual_server fwmark 1 {\n ip_family inet\n real_server 2001:2::11 80 {\n }\n}\n", "lab.conf");
        var e = Assert.Throws<ConfigException>(() => AllUp(mixed));
        Assert.That(e!.Message, Does.StartWith("lab.conf:3: ").And.Contain("needs lb_kind TUN"));
    }

    [Test]
    public void Tun_type_gue_and_gre_become_the_servers_tunnel_settings()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 198.18.0.100 80 {
                lb_algo rr
                lvs_method TUN type gue port 6080 csum
                real_server 198.18.0.11 80 {
                }
                real_server 198.18.0.12 80 {
                    lvs_method TUN type gre
                }
            }
            """, "tun.conf");
        string saved = RulesFile.Save(KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true));
        Assert.That(saved, Does.Contain("-r 198.18.0.11:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n")
            .And.Contain("-r 198.18.0.12:80 -i -w 1 --tun-type gre --tun-nocsum\n"));
    }

    [Test]
    public void IPv6_services_become_rules_and_a_server_of_the_other_family_is_refused_with_its_place_unless_tunnelled()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            virtual_server 2001:2::100 80 {
                lb_algo sh
                lb_kind DR
                persistence_timeout 600
                persistence_granularity 64
                real_server 2001:2::11 80 {
                    weight 3
                }
            }
            """, "six.conf");
        Assert.That(config.VirtualServers[0].Address, Is.EqualTo(IPAddress.Parse("2001:2::100")));
        RuleSetSpec rules = KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true);
        Assert.That(RulesFile.Save(rules), Is.EqualTo("-A -t [2001:2::100]:80 -s sh -p 600 -M 64\n-a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 3\n"));

        KeepalivedConfig nat = KeepalivedParser.Parse(
            "virtual_server 2001:2::100 80 {\n lb_kind NAT\n real_server 2001:2::11 8080 {\n }\n}\n", "six.conf");
        Assert.That(RulesFile.Save(KeepalivedRules.Build(nat, (_, rs) => KeepalivedRules.Initial(rs), _ => true)),
            Does.Contain("-a -t [2001:2::100]:80 -r [2001:2::11]:8080 -m -w 1\n"));
        // The other family is for tunnel servers only (keepalived's default method is NAT).
        KeepalivedConfig tunnels = KeepalivedParser.Parse(
            "virtual_server 2001:2::100 80 {\n lb_kind TUN\n real_server 2001:2::11 80 {\n }\n real_server 198.18.0.11 80 {\n }\n}\n", "six.conf");
        Assert.That(RulesFile.Save(KeepalivedRules.Build(tunnels, (_, rs) => KeepalivedRules.Initial(rs), _ => true)),
            Does.Contain("-a -t [2001:2::100]:80 -r [2001:2::11]:80 -i -w 1 --tun-type ipip\n").And.Contain("-a -t [2001:2::100]:80 -r 198.18.0.11:80 -i -w 1 --tun-type ipip\n"));
        KeepalivedConfig mixed = KeepalivedParser.Parse("virtual_server 2001:2::100 80 {\n real_server 198.18.0.11 80 {\n }\n}\n", "six.conf");
        var e = Assert.Throws<ConfigException>(() => KeepalivedRules.Validate(mixed));
        Assert.That(e!.Message, Does.StartWith("six.conf:2: ").And.Contain("a real server of the other address family needs lb_kind TUN"));
    }

    [Test]
    public void Keywords_udr_does_not_implement_are_warnings_with_their_place()
    {
        KeepalivedConfig config = KeepalivedParser.Parse("""
            global_defs {
                notification_email {
                    ops@lab.example
                }
            }
            virtual_server 198.18.0.100 80 {
                ha_suspend
                real_server 198.18.1.11 80 {
                    SMTP_CHECK {
                    }
                }
            }
            """, "w.conf");
        Assert.That(config.Warnings.Select(w => w.ToString()), Is.EqualTo(new[]
        {
            "w.conf:2: 'notification_email' is not implemented by udr; ignored",
            "w.conf:7: 'ha_suspend' is not implemented by udr; ignored",
            "w.conf:9: 'SMTP_CHECK' is not implemented by udr; ignored",
        }));
    }

    [Test]
    public void Include_splices_in_every_file_a_glob_matches_in_name_order()
    {
        string folder = Directory.CreateTempSubdirectory("udr-keepalived-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(folder, "conf.d"));
            File.WriteAllText(Path.Combine(folder, "keepalived.conf"), "include conf.d/*.conf\ninclude missing/*.conf\n");
            File.WriteAllText(Path.Combine(folder, "conf.d", "20-b.conf"), "virtual_server 198.18.0.101 80 {\n}\n");
            File.WriteAllText(Path.Combine(folder, "conf.d", "10-a.conf"), "virtual_server 198.18.0.100 80 {\n  real_server 198.18.1.1 80 {\n  }\n}\n");
            File.WriteAllText(Path.Combine(folder, "conf.d", "ignored.txt"), "garbage {\n");
            KeepalivedConfig config = KeepalivedParser.Load(Path.Combine(folder, "keepalived.conf"));
            Assert.That(config.VirtualServers.Select(v => v.Name), Is.EqualTo(new[] { "TCP 198.18.0.100:80", "TCP 198.18.0.101:80" }));
            Assert.That(config.VirtualServers[0].RealServers[0].Place.File, Does.EndWith("conf.d/10-a.conf"));
            Assert.That(config.VirtualServers[0].RealServers[0].Place.Line, Is.EqualTo(2));
            Assert.That(config.Warnings.Single().Message, Does.Contain("no file matches"));

            File.WriteAllText(Path.Combine(folder, "conf.d", "30-loop.conf"), "include ../keepalived.conf\n");
            var e = Assert.Throws<ConfigException>(() => KeepalivedParser.Load(Path.Combine(folder, "keepalived.conf")));
            Assert.That(e!.Message, Does.Contain("includes nest deeper"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void Equal_checker_settings_are_equal_records_so_a_reload_can_keep_them()
    {
        KeepalivedConfig a = KeepalivedParser.Parse(DrSample);
        KeepalivedConfig b = KeepalivedParser.Parse(DrSample.Replace("path /healthz", "path /healthz", StringComparison.Ordinal));
        KeepalivedConfig c = KeepalivedParser.Parse(DrSample.Replace("path /healthz", "path /ready", StringComparison.Ordinal));
        Assert.That(a.VirtualServers[0].RealServers[0].Checkers[1], Is.EqualTo(b.VirtualServers[0].RealServers[0].Checkers[1]));
        Assert.That(a.VirtualServers[0].RealServers[0].Checkers[1], Is.Not.EqualTo(c.VirtualServers[0].RealServers[0].Checkers[1]));
    }
}
