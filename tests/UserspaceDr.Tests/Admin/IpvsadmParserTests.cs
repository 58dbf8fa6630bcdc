using System.Net;
using UserspaceDr.Admin;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

public class IpvsadmParserTests
{
    private static IpvsadmCommand Parsed(params string[] args)
    {
        IpvsadmResult<IpvsadmCommand> result = IpvsadmParser.Parse(args);
        Assert.That(result.IsSuccess, Is.True, () => $"unexpected error: {result.Error}");
        return result.Value!;
    }

    private static IpvsadmError Failed(params string[] args)
    {
        IpvsadmResult<IpvsadmCommand> result = IpvsadmParser.Parse(args);
        Assert.That(result.IsSuccess, Is.False, "expected a parse error");
        return result.Error!;
    }

    [Test]
    public void No_arguments_lists_the_table()
    {
        Assert.That(Parsed().Kind, Is.EqualTo(IpvsadmCommandKind.List));
    }

    [Test]
    public void Add_service_takes_ipvsadm_defaults()
    {
        IpvsadmCommand command = Parsed("-A", "-t", "198.18.10.1:80");
        Assert.Multiple(() =>
        {
            Assert.That(command.Kind, Is.EqualTo(IpvsadmCommandKind.AddService));
            Assert.That(command.Service, Is.EqualTo(new VirtualServiceAddress(VirtualServiceKind.Tcp, IPAddress.Parse("198.18.10.1"), 80)));
            Assert.That(command.Scheduler, Is.EqualTo("wlc"));
            Assert.That(command.PersistenceTimeout, Is.Zero);
            Assert.That(command.PersistenceNetmask, Is.EqualTo(0xFFFF_FFFFu));
            Assert.That(command.OnePacket, Is.False);
            Assert.That(command.Options, Is.EqualTo(IpvsadmOptions.Service));
        });
    }

    [Test]
    public void Long_options_mean_the_same_as_short_ones()
    {
        IpvsadmCommand command = Parsed("--add-service", "--udp-service", "198.18.10.1:53", "--scheduler", "rr", "--ops");
        Assert.Multiple(() =>
        {
            Assert.That(command.Kind, Is.EqualTo(IpvsadmCommandKind.AddService));
            Assert.That(command.Service!.Kind, Is.EqualTo(VirtualServiceKind.Udp));
            Assert.That(command.Scheduler, Is.EqualTo("rr"));
            Assert.That(command.OnePacket, Is.True);
        });
    }

    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p" }, 360)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "600" }, 600)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p600" }, 600)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "--persistent=42" }, 42)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "--persistent", "42" }, 42)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "-s", "rr" }, 360)]
    [TestCase(new[] { "-A", "-p", "-t", "198.18.10.1:0" }, 360)]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "2678400" }, 2678400)]
    public void Persistence_timeout_is_optional_and_defaults_to_360(string[] args, int expected)
    {
        Assert.That(Parsed(args).PersistenceTimeout, Is.EqualTo(expected));
    }

    [Test]
    public void Optional_persistence_argument_does_not_swallow_the_next_option()
    {
        IpvsadmCommand command = Parsed("-A", "-t", "198.18.10.1:80", "-p", "-s", "rr");
        Assert.That(command.Scheduler, Is.EqualTo("rr"));
    }

    [Test]
    public void Short_options_cluster_like_popt()
    {
        IpvsadmCommand list = Parsed("-Ln");
        Assert.That(list.Kind, Is.EqualTo(IpvsadmCommandKind.List));
        Assert.That(list.Has(IpvsadmOptions.Numeric), Is.True);

        IpvsadmCommand add = Parsed("-At", "198.18.10.1:80", "-s", "rr");
        Assert.That(add.Service!.Port, Is.EqualTo(80));

        IpvsadmCommand server = Parsed("-a", "-t", "198.18.10.1:80", "-r", "198.18.11.1", "-mw5");
        Assert.That(server.Method, Is.EqualTo(ForwardingMethod.Masquerade));
        Assert.That(server.Weight, Is.EqualTo(5));
    }

    [Test]
    public void Add_server_defaults_to_route_weight_1_and_the_service_port()
    {
        IpvsadmCommand command = Parsed("-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2");
        Assert.Multiple(() =>
        {
            Assert.That(command.Kind, Is.EqualTo(IpvsadmCommandKind.AddServer));
            Assert.That(command.RealServer, Is.EqualTo(new RealServerAddress(IPAddress.Parse("198.18.12.2"), 80)));
            Assert.That(command.Method, Is.EqualTo(ForwardingMethod.Route));
            Assert.That(command.Weight, Is.EqualTo(1));
            Assert.That(command.UpperThreshold, Is.Zero);
            Assert.That(command.LowerThreshold, Is.Zero);
        });
    }

    [TestCase("-g", (ushort)80)]
    [TestCase("-i", (ushort)80)]
    [TestCase("-m", (ushort)8080)]
    public void Route_and_tunnel_force_the_real_server_port_to_the_service_port(string method, ushort expected)
    {
        IpvsadmCommand command = Parsed("-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2:8080", method);
        Assert.That(command.RealServer!.Port, Is.EqualTo(expected));
    }

    [Test]
    public void Real_server_before_the_service_takes_the_port_known_at_that_point()
    {
        // ipvsadm copies the service as parsed so far; with -m nothing overrides that 0 later.
        IpvsadmCommand command = Parsed("-a", "-r", "198.18.12.2", "-t", "198.18.10.1:80", "-m");
        Assert.That(command.RealServer!.Port, Is.Zero);
    }

    [Test]
    public void Delete_server_keeps_the_given_port()
    {
        IpvsadmCommand command = Parsed("-d", "-t", "198.18.10.1:80", "-r", "198.18.12.2:8080");
        Assert.That(command.RealServer!.Port, Is.EqualTo(8080));
    }

    [Test]
    public void Edit_service_without_scheduler_uses_wlc_again()
    {
        Assert.That(Parsed("-E", "-t", "198.18.10.1:80").Scheduler, Is.EqualTo("wlc"));
    }

    [TestCase("198.18.1:80", "198.18.0.1", (ushort)80)]
    [TestCase("0xc6120001:80", "198.18.0.1", (ushort)80)]
    [TestCase("0306.022.0.1:80", "198.18.0.1", (ushort)80)]
    [TestCase("198.18.10.1:http", "198.18.10.1", (ushort)80)]
    [TestCase("198.18.10.1:https", "198.18.10.1", (ushort)443)]
    [TestCase("[1.2.3.4]:80", "1.2.3.4", (ushort)0)]
    [TestCase("[2001:2::1]:8080", "2001:2::1", (ushort)8080)]
    [TestCase("2001:2::1", "2001:2::1", (ushort)0)]
    public void Service_addresses_follow_inet_aton_and_inet_pton(string text, string address, ushort port)
    {
        IpvsadmCommand command = Parsed("-A", "-t", text, "-p");
        Assert.That(command.Service!.Address, Is.EqualTo(IPAddress.Parse(address)));
        Assert.That(command.Service.Port, Is.EqualTo(port));
    }

    [Test]
    public void Ipv6_service_defaults_its_mask_to_128_and_takes_a_prefix()
    {
        IpvsadmCommand command = Parsed("-A", "-t", "[2001:2::1]:80");
        Assert.That(command.Service!.IsIpv6, Is.True);
        Assert.That(command.PersistenceNetmask, Is.EqualTo(128u));
        Assert.That(Parsed("-A", "-t", "[2001:2::1]:80", "-p", "-M", "64").PersistenceNetmask, Is.EqualTo(64u));
    }

    [Test]
    public void Firewall_mark_services_parse_with_ipv6_after_the_mark()
    {
        IpvsadmCommand command = Parsed("-A", "-f", "7", "-6", "-s", "sh", "-b", "sh-fallback,sh-port");
        Assert.Multiple(() =>
        {
            Assert.That(command.Service!.Kind, Is.EqualTo(VirtualServiceKind.FirewallMark));
            Assert.That(command.Service.FirewallMark, Is.EqualTo(7u));
            Assert.That(command.Service.IsIpv6, Is.True);
            Assert.That(command.SchedulerFlags, Is.EqualTo(SchedulerFlags.Flag1 | SchedulerFlags.Flag2));
        });
    }

    [Test]
    public void Unsupported_features_still_parse()
    {
        Assert.That(Parsed("-A", "--sctp-service", "198.18.10.1:80").Service!.Kind, Is.EqualTo(VirtualServiceKind.Sctp));
        Assert.That(Parsed("-A", "-u", "198.18.10.1:5060", "-p", "--pe", "sip").PersistenceEngine, Is.EqualTo("sip"));
        IpvsadmCommand gue = Parsed("-a", "-t", "198.18.10.1:80", "-r", "198.18.12.9", "-i", "--tun-type", "gue",
            "--tun-port", "6080", "--tun-nocsum");
        Assert.That(gue.TunnelType, Is.EqualTo(TunnelType.Gue));
        Assert.That(gue.TunnelPort, Is.EqualTo(6080));
        Assert.That(gue.TunnelChecksum, Is.EqualTo(TunnelChecksum.NoChecksum));
    }

    [TestCase(new[] { "-s", "sh", "-b", "sh-fallback" }, SchedulerFlags.Flag1)]
    [TestCase(new[] { "-b", "mh-port", "-s", "mh" }, SchedulerFlags.Flag2)]
    [TestCase(new[] { "-b", "flag-3" }, SchedulerFlags.Flag3)]
    [TestCase(new[] { "-s", "rr", "-b", "flag-1,flag-2,flag-3" }, SchedulerFlags.Flag1 | SchedulerFlags.Flag2 | SchedulerFlags.Flag3)]
    public void Scheduler_flags_are_checked_against_the_scheduler_of_the_same_command(string[] options, SchedulerFlags expected)
    {
        string[] args = ["-A", "-t", "198.18.10.1:80", .. options];
        Assert.That(Parsed(args).SchedulerFlags, Is.EqualTo(expected));
    }

    [Test]
    public void Set_takes_three_timeouts()
    {
        IpvsadmCommand command = Parsed("--set", "900", "120", "0");
        Assert.That(command.Kind, Is.EqualTo(IpvsadmCommandKind.SetTimeouts));
        Assert.That(command.Timeouts, Is.EqualTo(new IpvsTimeouts(900, 120, 0)));
    }

    [Test]
    public void Start_daemon_defaults_to_eth0()
    {
        IpvsadmCommand command = Parsed("--start-daemon", "backup", "--syncid", "9", "--mcast-group", "224.0.0.81");
        Assert.That(command.Daemon!.Role, Is.EqualTo(SyncDaemonRole.Backup));
        Assert.That(command.Daemon.McastInterface, Is.EqualTo("eth0"));
        Assert.That(command.Daemon.SyncId, Is.EqualTo(9));
        Assert.That(command.Daemon.McastGroup, Is.EqualTo(IPAddress.Parse("224.0.0.81")));
    }

    [TestCase(new[] { "-h" }, IpvsadmCommandKind.Help)]
    [TestCase(new[] { "--help", "--bogus" }, IpvsadmCommandKind.Help)]
    [TestCase(new[] { "-v" }, IpvsadmCommandKind.Version)]
    [TestCase(new[] { "-S", "-n" }, IpvsadmCommandKind.Save)]
    [TestCase(new[] { "-C" }, IpvsadmCommandKind.Flush)]
    [TestCase(new[] { "-R" }, IpvsadmCommandKind.Restore)]
    [TestCase(new[] { "-Z" }, IpvsadmCommandKind.Zero)]
    [TestCase(new[] { "-Z", "-t", "198.18.10.1:80" }, IpvsadmCommandKind.Zero)]
    [TestCase(new[] { "-l", "--stats", "--exact", "--sort" }, IpvsadmCommandKind.List)]
    [TestCase(new[] { "-L", "-t", "198.18.10.1:80", "--rate", "--nosort" }, IpvsadmCommandKind.List)]
    [TestCase(new[] { "-L", "-c", "--persistent-conn" }, IpvsadmCommandKind.List)]
    [TestCase(new[] { "--stop-daemon", "master" }, IpvsadmCommandKind.StopDaemon)]
    [TestCase(new[] { "-D", "-u", "198.18.10.1:53" }, IpvsadmCommandKind.DeleteService)]
    [TestCase(new[] { "-e", "-u", "198.18.10.1:53", "-r", "198.18.11.1", "-x", "100", "-y", "50" }, IpvsadmCommandKind.EditServer)]
    public void Commands_parse(string[] args, IpvsadmCommandKind expected)
    {
        Assert.That(Parsed(args).Kind, Is.EqualTo(expected));
    }

    // fail(2, ...) in ipvsadm.c: every check on the command line itself.
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-E" }, "invalid option `-E'")]
    [TestCase(new[] { "-L", "-h" }, "invalid option `-h'")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "--start-daemon", "master" }, "invalid option `master'")]
    [TestCase(new[] { "-a", "-r", "198.18.12.2" }, "You need to supply the 'service-address' option for the 'add-server' command")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80" }, "You need to supply the 'real-server' option for the 'add-server' command")]
    [TestCase(new[] { "-d", "-t", "198.18.10.1:80", "-w", "2" }, "You need to supply the 'real-server' option for the 'delete-server' command")]
    [TestCase(new[] { "-A" }, "You need to supply the 'service-address' option for the 'add-service' command")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-w", "3" }, "Illegal 'weight' option with the 'add-service' command")]
    [TestCase(new[] { "-E", "-t", "198.18.10.1:80", "-r", "198.18.12.2" }, "Illegal 'real-server' option with the 'edit-service' command")]
    [TestCase(new[] { "-D", "-t", "198.18.10.1:80", "-s", "rr" }, "Illegal 'scheduler' option with the 'delete-service' command")]
    [TestCase(new[] { "-C", "-t", "198.18.10.1:80" }, "Illegal 'service-address' option with the 'flush' command")]
    [TestCase(new[] { "-S", "-c" }, "Illegal 'connection' option with the 'save' command")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.11.1", "-p" }, "Illegal 'persistent' option with the 'add-server' command")]
    [TestCase(new[] { "-L", "--tun-type", "ipip" }, "Illegal 'tun-type' option with the 'list' command")]
    [TestCase(new[] { "-L", "-c", "--timeout" }, "The option 'timeout' conflicts with the 'connection' option in the 'list' command")]
    [TestCase(new[] { "-L", "-t", "198.18.10.1:80", "--daemon" }, "The option 'daemon' conflicts with the 'service-address' option in the 'list' command")]
    [TestCase(new[] { "-L", "-c", "--stats" }, "options conflicts in the list command")]
    [TestCase(new[] { "-L", "--rate", "--timeout" }, "options conflicts in the list command")]
    [TestCase(new[] { "-L", "--daemon", "--thresholds" }, "options conflicts in the list command")]
    [TestCase(new[] { "-L", "--timeout", "--persistent-conn" }, "options conflicts in the list command")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-s", "rr", "-s", "wrr" }, "multiple 'scheduler' options specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-u", "198.18.10.1:53" }, "multiple 'service-address' options specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.11.1", "-g", "-m" }, "multiple 'forwarding-method' options specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1" }, "Zero port specified for non-persistent service")]
    [TestCase(new[] { "-E", "-t", "198.18.10.1:0" }, "Zero port specified for non-persistent service")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-o" }, "One-Packet Scheduling is only for UDP virtual services")]
    [TestCase(new[] { "-A", "-t", "300.0.0.1:80" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-t", "lb.example.com:80" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-t", "80" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:65536" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:nosuchservice" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-t", "[2001:2::1]" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-A", "-u", "198.18.10.1:ssh" }, "illegal virtual server address[:port] specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.1.x" }, "illegal real server address[:port] specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-w", "65536" }, "illegal weight specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-w", "-1" }, "illegal weight specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-w", "5x" }, "illegal weight specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-x", "2147483648" }, "illegal u_threshold specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-y", "-5" }, "illegal l_threshold specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "0" }, "invalid timeout value `0' specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "2678401" }, "invalid timeout value `2678401' specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "ten" }, "invalid timeout value `ten' specified")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-p", "-M", "255.255.0.x" }, "illegal virtual server persistent mask specified")]
    [TestCase(new[] { "-A", "-t", "[2001:2::1]:80", "-M", "129" }, "illegal ipv6 netmask specified")]
    [TestCase(new[] { "-A", "-f", "0" }, "invalid fwmark value `0' specified")]
    [TestCase(new[] { "-A", "-f", "4294967296" }, "invalid fwmark value `4294967296' specified")]
    [TestCase(new[] { "-A", "-6", "-f", "1" }, "-6 used before -f")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-b", "sh-port" }, "incompatible scheduler flag `sh-port'")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-s", "sh", "-b", "mh-fallback" }, "incompatible scheduler flag `mh-fallback'")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "-s", "sh", "-b", "sh-port,bogus" }, "invalid scheduler flag `bogus'")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "--tun-type", "ipip" }, "Tunnel options conflict with forward method")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-m", "--tun-nocsum" }, "Tunnel options conflict with forward method")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-type", "vxlan" }, "illegal tunnel type specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-type", "gue" }, "You need to supply the 'tun-port' option for the 'gue' tunnel type")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-port", "6080" }, "Illegal 'tun-port' option with the 'ipip' tunnel type")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-type", "gre", "--tun-remcsum" }, "Illegal 'tun-remcsum' option with the 'gre' tunnel type")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-type", "gre", "--tun-csum", "--tun-nocsum" }, "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "198.18.12.2", "-i", "--tun-type", "gue", "--tun-port", "0" }, "illegal tunnel port specified")]
    [TestCase(new[] { "-a", "-t", "198.18.10.1:80", "-r", "[2001:2::1]:80" }, "Different address family is allowed only for tunneling servers")]
    [TestCase(new[] { "--set", "900", "120" }, "--set option requires 3 timeout values")]
    [TestCase(new[] { "--set", "900", "120", "2678401" }, "invalid timeout value `2678401' specified")]
    [TestCase(new[] { "--set", "900", "120", "300", "60" }, "unexpected argument 60")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "wlc" }, "unexpected argument wlc")]
    [TestCase(new[] { "-C", "--", "-A" }, "unexpected argument -A")]
    [TestCase(new[] { "--start-daemon", "primary" }, "illegal start-daemon parameter specified")]
    [TestCase(new[] { "--stop-daemon", "primary" }, "illegal start_daemon specified")]
    [TestCase(new[] { "--start-daemon", "master", "--syncid", "256" }, "illegal syncid specified")]
    [TestCase(new[] { "--start-daemon", "master", "--mcast-port", "0" }, "illegal mcast-port specified")]
    [TestCase(new[] { "--start-daemon", "master", "--mcast-ttl", "256" }, "illegal mcast-ttl specified")]
    [TestCase(new[] { "--start-daemon", "master", "--sync-maxlen", "65508" }, "illegal sync-maxlen specified")]
    [TestCase(new[] { "--start-daemon", "master", "--mcast-group", "198.18.10.1" }, "invalid IPv4 mcast-group `198.18.10.1'")]
    [TestCase(new[] { "--start-daemon", "master", "--mcast-group", "2001:2::1" }, "invalid IPv6 mcast-group `2001:2::1'")]
    [TestCase(new[] { "--stop-daemon", "master", "--mcast-interface", "eth1" }, "Illegal 'mcast-interface' option with the 'stop-daemon' command")]
    public void Command_line_mistakes_fail_with_ipvsadm_messages_and_status_2(string[] args, string message)
    {
        IpvsadmError error = Failed(args);
        Assert.That(error.Message, Is.EqualTo(message));
        Assert.That(error.ExitCode, Is.EqualTo(2));
    }

    // tryhelp_exit(-1) and popt errors: ipvsadm exits with status 255.
    [TestCase(new[] { "-n", "-L" }, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.")]
    [TestCase(new[] { "-t", "198.18.10.1:80", "-A" }, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.")]
    [TestCase(new[] { "--bogus" }, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.")]
    [TestCase(new[] { "list" }, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.")]
    [TestCase(new[] { "--start-daemon" }, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.")]
    [TestCase(new[] { "-A", "--bogus" }, "--bogus: unknown option")]
    [TestCase(new[] { "-Lq" }, "-Lq: unknown option")]
    [TestCase(new[] { "-A", "-t" }, "-t: missing argument")]
    [TestCase(new[] { "-A", "-t", "198.18.10.1:80", "--ops=yes" }, "--ops=yes: option does not take an argument")]
    public void Popt_level_mistakes_fail_with_status_255(string[] args, string message)
    {
        IpvsadmError error = Failed(args);
        Assert.That(error.Message, Is.EqualTo(message));
        Assert.That(error.ExitCode, Is.EqualTo(255));
    }

    [Test]
    public void Program_name_appears_in_the_help_hint()
    {
        IpvsadmResult<IpvsadmCommand> result = IpvsadmParser.Parse(["-n"], "udr ipvsadm");
        Assert.That(result.Error!.Message, Is.EqualTo("Try `udr ipvsadm -h' or 'udr ipvsadm --help' for more information."));
    }
}
