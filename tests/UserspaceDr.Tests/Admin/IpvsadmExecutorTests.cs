using UserspaceDr.Core.Packets;
using UserspaceDr.Admin;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

/// <summary>
/// <see cref="IpvsadmExecutor"/>: ipvsadm's messages and exit statuses for each misuse, all-or-nothing changes,
/// -S/-R round trips, -R's comments, --set/--timeout, -Z, -L -c, -h and -v.
/// </summary>
public class IpvsadmExecutorTests
{
    private const string Setup =
        "-A -t 198.18.0.100:80 -s wrr\n" +
        "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n" +
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n" +
        "-A -u 198.18.0.100:53 -s rr\n" +
        "-a -u 198.18.0.100:53 -r 198.18.0.12:53 -g -w 2\n";

    // Written from print_conn's formats: "pro expire %-11s %-18s %-18s %s" and "%-3s %-6s %-11s %-18s %-18s %s",
    // expire "%02d:%02d" of minutes and seconds.
    private const string ConnectionsText =
            "IPVS connection entries\n" +
            "pro expire state       source             virtual            destination\n" +
            "TCP 14:58  ESTABLISHED 198.18.0.1:51234   198.18.0.100:80    198.18.0.11:80\n" +
            "TCP 05:52  NONE        198.18.0.0:0       198.18.0.100:443   198.18.0.21:443\n" +
            "UDP 04:59  UDP         198.18.0.1:40000   198.18.0.100:53    198.18.0.12:53\n" +
            "TCP 00:00  FIN_WAIT    198.18.0.1:51235   198.18.0.100:80    198.18.0.12:80\n" +
            "TCP 100:00 ASSURED     198.18.0.0:0       198.18.0.100:443   198.18.0.21:443\n";

    private const string ConnectionsHeaderPersistent =
            "IPVS connection entries\n" +
            "pro expire state       source             virtual            destination        pe name          pe_data\n";

    private static (IpvsadmExecutor Executor, InMemoryIpvsBackend Backend) Started()
    {
        var backend = new InMemoryIpvsBackend();
        var executor = new IpvsadmExecutor(backend);
        Assert.That(executor.Execute("ipvsadm", ["-R"], Setup), Is.EqualTo(IpvsadmOutcome.Output("")));
        return (executor, backend);
    }

    private static IpvsadmOutcome Run(IpvsadmExecutor executor, string args, string stdin = "") =>
        executor.Execute("ipvsadm", args.Split(' ', StringSplitOptions.RemoveEmptyEntries), stdin);

    // ipvsadm.c fail(2, ...) / libipvs ipvs_strerror + "return -1" (255) / list_service exit(1).
    [TestCase("-A -t 198.18.0.100:80", "Service already exists", 255)]
    [TestCase("-A -t 198.18.0.100:8080 -s nosuch", "Scheduler or persistence engine not found", 255)]
    [TestCase("-E -t 198.18.0.100:8080", "No such service", 255)]
    [TestCase("-E -t 198.18.0.100:80 -s nosuch", "Scheduler or persistence engine not found", 255)]
    [TestCase("-D -t 198.18.0.100:8080", "No such service", 255)]
    [TestCase("-a -t 198.18.0.100:8080 -r 198.18.0.11", "Service not defined", 255)]
    [TestCase("-a -t 198.18.0.100:80 -r 198.18.0.11", "Destination already exists", 255)]
    [TestCase("-a -t 198.18.0.100:80 -r 198.18.0.13 -x 5 -y 10", "Numerical result out of range", 255)]
    [TestCase("-e -t 198.18.0.100:80 -r 198.18.0.13", "No such destination", 255)]
    [TestCase("-e -t 198.18.0.100:8080 -r 198.18.0.13", "Service not defined", 255)]
    [TestCase("-d -t 198.18.0.100:80 -r 198.18.0.13", "No such destination", 255)]
    [TestCase("-d -u 198.18.0.100:80 -r 198.18.0.13", "Service not defined", 255)]
    [TestCase("-Z -t 198.18.0.100:8080", "No such service", 255)]
    [TestCase("-L -t 198.18.0.100:8080", "No such service", 1)]
    [TestCase("-L -n -u 198.18.0.100:80", "No such service", 1)]
    [TestCase("-A -t 198.18.0.100:80 -r 198.18.0.11", "Illegal 'real-server' option with the 'add-service' command", 2)]
    [TestCase("-a -t 198.18.0.100:80", "You need to supply the 'real-server' option for the 'add-server' command", 2)]
    [TestCase("-A -t 198.18.0.100", "Zero port specified for non-persistent service", 2)]
    [TestCase("-A -t 198.18.0.100:80 -s rr -s wrr", "multiple 'scheduler' options specified", 2)]
    [TestCase("-a -t 198.18.0.100:80 -r 198.18.0.11 -w 65536", "illegal weight specified", 2)]
    [TestCase("-A -t 198.18.0.300:80", "illegal virtual server address[:port] specified", 2)]
    [TestCase("-A -u 198.18.0.100:53 -s sh -b mh-port", "incompatible scheduler flag `mh-port'", 2)]
    [TestCase("-A -t 198.18.0.100:81 -o", "One-Packet Scheduling is only for UDP virtual services", 2)]
    [TestCase("-L -c --stats", "options conflicts in the list command", 2)]
    [TestCase("-L -c -t 198.18.0.100:80", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", 2)]
    [TestCase("-S -c", "Illegal 'connection' option with the 'save' command", 2)]
    [TestCase("--set 1 2", "--set option requires 3 timeout values", 2)]
    [TestCase("--set 1 2 x", "invalid timeout value `x' specified", 2)]
    [TestCase("-L -n extra", "unexpected argument extra", 2)]
    [TestCase("-C -n", "Illegal 'numeric' option with the 'flush' command", 2)]
    [TestCase("-Q", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 255)]
    [TestCase("-A -t 198.18.0.100:81 --bogus", "--bogus: unknown option", 255)]
    public void Misuse_gets_ipvsadms_message_and_exit_status_and_changes_nothing(string args, string message, int exitCode)
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        RuleSetSpec before = backend.Rules;
        IpvsadmOutcome outcome = Run(executor, args);
        Assert.Multiple(() =>
        {
            Assert.That(outcome.Stderr, Is.EqualTo(message + "\n"));
            Assert.That(outcome.ExitCode, Is.EqualTo(exitCode));
            Assert.That(outcome.Stdout, Is.Empty);
            Assert.That(backend.Rules, Is.SameAs(before), "a refused command changes nothing");
        });
    }

    [Test]
    public void A_change_the_data_plane_refuses_is_reported_and_changes_nothing()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        RuleSetSpec before = backend.Rules;
        backend.RefuseNextPublish = new InvalidOperationException("nft failed (1): no such device");
        IpvsadmOutcome outcome = Run(executor, "-A -t 198.18.0.101:80");
        Assert.That(outcome, Is.EqualTo(new IpvsadmOutcome(255, "", "udr: the change was not applied: nft failed (1): no such device\n")));
        Assert.That(backend.Rules, Is.SameAs(before));
        Assert.That(Run(executor, "-A -t 198.18.0.101:80").ExitCode, Is.Zero, "the next change goes through");
    }

    [Test]
    public void Each_change_is_one_publish()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        Assert.That(backend.Publishes, Is.EqualTo(1), "-R publishes all its lines as one change");
        Run(executor, "-e -t 198.18.0.100:80 -r 198.18.0.11:80 -w 5");
        Run(executor, "-E -t 198.18.0.100:80 -s mh");
        Assert.That(backend.Publishes, Is.EqualTo(3));
        Assert.That(RulesFile.Save(backend.Rules), Does.Contain("-A -t 198.18.0.100:80 -s mh\n").And.Contain("-r 198.18.0.11:80 -g -w 5\n"));
    }

    [Test]
    public void Save_then_clear_then_restore_reproduces_the_same_state()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        Run(executor, "-A -t 198.18.0.101:443 -s sh -b sh-port -p 600 -M 255.255.0.0");
        Run(executor, "-a -t 198.18.0.101:443 -r 198.18.0.21:443 -m -w 4 -x 9 -y 3");
        Run(executor, "-a -t 198.18.0.101:443 -r 198.18.0.22 -i -w 0");
        Run(executor, "-A -u 198.18.0.102:5000 -o -s mh");
        string saved = Run(executor, "-S -n").Stdout;
        string listed = Run(executor, "-L -n").Stdout;

        Assert.That(Run(executor, "-C"), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "-S -n").Stdout, Is.Empty);
        Assert.That(Run(executor, "-R", saved), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "-S -n").Stdout, Is.EqualTo(saved));
        // Thresholds are not saved (as in ipvsadm); everything else lists the same.
        Assert.That(Run(executor, "-L -n").Stdout, Is.EqualTo(listed));
        Assert.That(backend.Rules.Services, Has.Length.EqualTo(4));
    }

    [Test]
    public void Restore_reads_what_ipvsadm_save_writes_with_comments_and_the_program_name()
    {
        var backend = new InMemoryIpvsBackend();
        var executor = new IpvsadmExecutor(backend);
        const string input =
            "# saved by ipvsadm-save on lb1\n" +
            "\n" +
            "ipvsadm -A -t 198.18.0.100:80 -s wrr   # the web service\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\r\n" +
            "\t-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n" +
            "--set 600 60 120\n" +
            "-Z\n";
        Assert.That(Run(executor, "-R", input), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "-S -n").Stdout, Is.EqualTo(
            "-A -t 198.18.0.100:80 -s wrr\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n"));
        Assert.That(Run(executor, "-L --timeout").Stdout, Is.EqualTo("Timeout (tcp tcpfin udp): 600 60 120\n"));
        Assert.That(backend.Zeroed, Is.EqualTo(new[] { "*" }));
    }

    [Test]
    public void Restore_is_all_or_nothing()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        RuleSetSpec before = backend.Rules;
        const string input =
            "-A -t 198.18.0.101:80 -s rr\n" +
            "-a -t 198.18.0.101:80 -r 198.18.0.11:80\n" +
            "-a -t 198.18.0.101:80 -r 198.18.0.11:80\n" +
            "-A -t 198.18.0.102:80\n";
        IpvsadmOutcome outcome = Run(executor, "-R", input);
        Assert.That(outcome, Is.EqualTo(new IpvsadmOutcome(255, "",
            "Destination already exists\nudr: -R stopped at line 3 of its input; nothing was applied\n")));
        Assert.That(backend.Rules, Is.SameAs(before));

        outcome = Run(executor, "-R", "-A -t 198.18.0.103:80\n-a -t 198.18.0.103:80 -r 198.18.0.11 -w x\n");
        Assert.That(outcome.ExitCode, Is.EqualTo(2));
        Assert.That(outcome.Stderr, Is.EqualTo("illegal weight specified\nudr: -R stopped at line 2 of its input; nothing was applied\n"));

        outcome = Run(executor, "-R", "-A -t 198.18.0.103:80\n-L -n\n");
        Assert.That(outcome.ExitCode, Is.EqualTo(2));
        Assert.That(outcome.Stderr, Does.StartWith("udr: -R input can only change rules").And.EndWith("line 2 of its input; nothing was applied\n"));
        Assert.That(backend.Rules, Is.SameAs(before));
    }

    [Test]
    public void Set_changes_only_the_timeouts_given_and_timeout_lists_them()
    {
        (IpvsadmExecutor executor, _) = Started();
        Assert.That(Run(executor, "-L --timeout").Stdout, Is.EqualTo("Timeout (tcp tcpfin udp): 900 120 300\n"));
        Assert.That(Run(executor, "--set 3600 0 60"), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "-L --timeout").Stdout, Is.EqualTo("Timeout (tcp tcpfin udp): 3600 120 60\n"));
    }

    [Test]
    public void Zero_names_the_service_or_all()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        Assert.That(Run(executor, "-Z -t 198.18.0.100:80"), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "--zero"), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(backend.Zeroed, Is.EqualTo(new[] { "TCP 198.18.0.100:80", "*" }));
    }

    [Test]
    public void Connections_list_like_ipvsadm_L_c()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        backend.ConnectionEntries.AddRange(
        [
            new IpvsConnection(ServiceProtocol.Tcp, "ESTABLISHED", InetAddress.FromIPv4(0xC6120001), 51234, InetAddress.FromIPv4(0xC6120064), 80, InetAddress.FromIPv4(0xC612000B), 80, 898),
            new IpvsConnection(ServiceProtocol.Tcp, "NONE", InetAddress.FromIPv4(0xC6120000), 0, InetAddress.FromIPv4(0xC6120064), 443, InetAddress.FromIPv4(0xC6120015), 443, 352),
            new IpvsConnection(ServiceProtocol.Udp, "UDP", InetAddress.FromIPv4(0xC6120001), 40000, InetAddress.FromIPv4(0xC6120064), 53, InetAddress.FromIPv4(0xC612000C), 53, 299),
            new IpvsConnection(ServiceProtocol.Tcp, "FIN_WAIT", InetAddress.FromIPv4(0xC6120001), 51235, InetAddress.FromIPv4(0xC6120064), 80, InetAddress.FromIPv4(0xC612000C), 80, -1),
            new IpvsConnection(ServiceProtocol.Tcp, "ASSURED", InetAddress.FromIPv4(0xC6120000), 0, InetAddress.FromIPv4(0xC6120064), 443, InetAddress.FromIPv4(0xC6120015), 443, 6000),
        ]);
        Assert.That(Run(executor, "-L -n -c").Stdout, Is.EqualTo(ConnectionsText));
        Assert.That(Run(executor, "-lnc").Stdout, Is.EqualTo(ConnectionsText));
        backend.ConnectionEntries.Clear();
        Assert.That(Run(executor, "-L -n -c --persistent-conn").Stdout, Is.EqualTo(ConnectionsHeaderPersistent));
    }

    [Test]
    public void Help_and_version_print_on_stdout_and_exit_0()
    {
        (IpvsadmExecutor executor, _) = Started();
        IpvsadmOutcome version = Run(executor, "-v");
        Assert.That(version, Is.EqualTo(IpvsadmOutcome.Output("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n")));
        IpvsadmOutcome help = executor.Execute("udr adm", ["--help"]);
        Assert.That(help.ExitCode, Is.Zero);
        Assert.That(help.Stdout, Does.StartWith(
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n" +
            "Usage:\n" +
            "  udr adm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n" +
            "  udr adm -D virtual-service\n"));
        Assert.That(help.Stdout, Does.Contain(
            "  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n" +
            "                                      the default scheduler is wlc.\n"));
        Assert.That(help.Stdout, Does.EndWith("  --mcast-ttl ttl                     Multicast TTL (default=1)\n"));
    }

    [Test]
    public void Daemon_listing_is_empty_and_the_sync_daemon_is_refused()
    {
        (IpvsadmExecutor executor, _) = Started();
        Assert.That(Run(executor, "-L --daemon"), Is.EqualTo(IpvsadmOutcome.Output("")));
        IpvsadmOutcome start = Run(executor, "--start-daemon master");
        Assert.That(start.ExitCode, Is.EqualTo(255));
        Assert.That(start.Stderr, Does.Contain("sync daemon"));
    }

    [Test]
    public void Sync_daemons_start_list_as_ipvsadm_prints_them_and_stop()
    {
        var backend = new InMemoryIpvsBackend { RunsDaemons = true };
        var executor = new IpvsadmExecutor(backend);
        Assert.That(Run(executor, "--start-daemon backup --mcast-interface eth1 --syncid 7"), Is.EqualTo(IpvsadmOutcome.Output("")));
        Assert.That(Run(executor, "--start-daemon master --syncid 7 --mcast-port 8900 --mcast-ttl 2").ExitCode, Is.Zero);
        Assert.That(Run(executor, "-L --daemon").Stdout, Is.EqualTo(
            "master sync daemon (mcast=eth0, syncid=7, maxlen=1472, group=224.0.0.81, port=8900, ttl=2)\n" +
            "backup sync daemon (mcast=eth1, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"));
        IpvsadmOutcome again = Run(executor, "--start-daemon backup --mcast-interface eth1");
        Assert.That((again.ExitCode, again.Stderr), Is.EqualTo((255, "Daemon has already run\n")));
        Assert.That(Run(executor, "--stop-daemon backup").ExitCode, Is.Zero);
        IpvsadmOutcome none = Run(executor, "--stop-daemon backup");
        Assert.That((none.ExitCode, none.Stderr), Is.EqualTo((255, "No daemon is running\n")));
    }

    [Test]
    public void A_sync_daemon_and_a_tunnel_server_of_the_other_family_exclude_each_other_as_in_the_kernel()
    {
        var backend = new InMemoryIpvsBackend { RunsDaemons = true };
        var executor = new IpvsadmExecutor(backend);
        const string Invalid = "Invalid operation.  Possibly wrong module version, address not unicast, ...\n";
        Assert.That(Run(executor, "-A -t [2001:2::100]:80 -s rr").ExitCode, Is.Zero);
        Assert.That(Run(executor, "--start-daemon master").ExitCode, Is.Zero);
        IpvsadmOutcome mixed = Run(executor, "-a -t [2001:2::100]:80 -r 198.18.0.21 -i");
        Assert.That((mixed.ExitCode, mixed.Stderr), Is.EqualTo((255, Invalid)), "ip_vs_genl_set_cmd refuses while a daemon runs");
        Assert.That(Run(executor, "-a -t [2001:2::100]:80 -r [2001:2::21]:80 -i").ExitCode, Is.Zero, "the same family is fine");
        Assert.That(Run(executor, "--stop-daemon master").ExitCode, Is.Zero);
        Assert.That(Run(executor, "-a -t [2001:2::100]:80 -r 198.18.0.21 -i").ExitCode, Is.Zero);
        IpvsadmOutcome start = Run(executor, "--start-daemon backup");
        Assert.That((start.ExitCode, start.Stderr), Is.EqualTo((255, Invalid)), "ip_vs_genl_new_daemon refuses while one exists");
        Assert.That(Run(executor, "-S -n").Stdout, Is.EqualTo(
            "-A -t [2001:2::100]:80 -s rr\n-a -t [2001:2::100]:80 -r 198.18.0.21:80 -i -w 1 --tun-type ipip\n-a -t [2001:2::100]:80 -r [2001:2::21]:80 -i -w 1 --tun-type ipip\n"));
    }

    [Test]
    public void Replace_swaps_the_whole_rule_set()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Started();
        IpvsadmResult<RuleSetSpec> file = RulesFile.Load("-A -u 198.18.0.100:9 -s rr\n");
        executor.Replace(file.Value!);
        Assert.That(Run(executor, "-S -n").Stdout, Is.EqualTo("-A -u 198.18.0.100:9 -s rr\n"));
        Assert.That(backend.Rules, Is.SameAs(file.Value));
    }
}
