using UserspaceDr.Admin;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Tests.Admin;

/// <summary>
/// The compatibility corpus: sequences of ipvsadm command lines run through <see cref="IpvsadmExecutor"/>, and every
/// listing compared byte for byte with what ipvsadm 1.31 prints for the same state. The expected texts were written
/// from ipvsadm.c's own printf formats (reference §2: print_title, print_service_entry, print_largenum) with an
/// independent C-printf implementation, not with udr's printer: header, titles, "%-28s %-7s %-6d %-10u %-10u"
/// columns with their trailing spaces, Route/Masq/Tunnel, the 33- and 28-character cuts, K/M/G/T and --exact.
/// </summary>
public class IpvsadmCompatibilityCorpusTests
{
    /// <summary>The classic setup: a wrr TCP service and an rr UDP one, direct routing, ipvsadm's defaults.</summary>
    private static readonly string[] Classic =
    [
        "-A -t 198.18.0.100:80 -s wrr",
        "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1",
        "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3",
        "-A -u 198.18.0.100:53 -s rr",
        "-a -u 198.18.0.100:53 -r 198.18.0.12 -g -w 2",
        "-a -u 198.18.0.100:53 -r 198.18.0.11",
    ];

    /// <summary>
    /// Persistence with a netmask, scheduler flags, thresholds, all three forwarding methods, one-packet scheduling,
    /// -E/-e edits, a deleted server (leaving a service with none), long option forms, and a VIP in 198.19.0.0/16
    /// listed after the 198.18 ones (ipvsadm's wrapping comparator itself is covered by RulesFileTests).
    /// </summary>
    private static readonly string[] Persistence =
    [
        "-A -t 198.18.0.100:443 -s wlc -p 600 -M 255.255.255.0",
        "-a -t 198.18.0.100:443 -r 198.18.0.21:443 -m -w 2 -x 100 -y 50",
        "-a -t 198.18.0.100:443 -r 198.18.0.22:8443 -m -w 1 -x 10",
        "-a -t 198.18.0.100:443 -r 198.18.0.23 -i -w 5",
        "-A -t 198.18.0.101:0 -s sh -b sh-fallback,sh-port -p",
        "-a -t 198.18.0.101:0 -r 198.18.0.11 -g -w 4",
        "--add-service --udp-service 198.18.0.100:5000 --scheduler mh --sched-flags mh-port --ops",
        "--add-server --udp-service 198.18.0.100:5000 --real-server 198.18.0.12:5000 --weight 0",
        "-A -u 198.18.0.102:123 -s lc",
        "-a -u 198.18.0.102:123 -r 198.18.0.31:123 -m -x 8",
        "-E -t 198.18.0.100:443 -s lc -p 600 -M 255.255.255.0",
        "-e -t 198.18.0.100:443 -r 198.18.0.22:8443 -m -w 7 -x 20 -y 5",
        "-A -t 198.19.0.1:80 -s rr",
        "-a -t 198.19.0.1:80 -r 198.18.0.11 -g",
        "-d -u 198.18.0.102:123 -r 198.18.0.31:123",
    ];

    private sealed class Names : IIpvsadmNames
    {
        public string? HostName(Core.Packets.InetAddress address) => address.IsIPv4 ? address.IPv4 switch
        {
            0xC6120064 => "www.example-service.internal",
            0xC612000B => "realserver-one.example.internal",
            _ => null,
        } : null;

        public string? ServiceName(ushort port, Core.Services.ServiceProtocol protocol) => port switch
        {
            80 when protocol == Core.Services.ServiceProtocol.Tcp => "http",
            53 => "domain",
            _ => null,
        };
    }

    private static (IpvsadmExecutor Executor, InMemoryIpvsBackend Backend) Run(string[] lines)
    {
        var backend = new InMemoryIpvsBackend();
        var executor = new IpvsadmExecutor(backend, () => new Names());
        foreach (string line in lines)
        {
            IpvsadmOutcome outcome = executor.Execute("ipvsadm", line.Split(' '));
            Assert.That(outcome, Is.EqualTo(new IpvsadmOutcome(0, "", "")), line);
        }
        return (executor, backend);
    }

    private static void Expect(IpvsadmExecutor executor, string args, string expected)
    {
        IpvsadmOutcome outcome = executor.Execute("ipvsadm", args.Length == 0 ? [] : args.Split(' '));
        Assert.Multiple(() =>
        {
            Assert.That(outcome.Stdout, Is.EqualTo(expected), "ipvsadm " + args);
            Assert.That(outcome.Stderr, Is.Empty, "ipvsadm " + args);
            Assert.That(outcome.ExitCode, Is.Zero, "ipvsadm " + args);
        });
    }

    private static void ClassicCounts(InMemoryIpvsBackend backend)
    {
        backend.Server("TCP 198.18.0.100:80", "198.18.0.11:80", s => s with { ActiveConnections = 12, InactiveConnections = 40 });
        backend.Server("TCP 198.18.0.100:80", "198.18.0.12:80", s => s with { ActiveConnections = 3 });
        backend.Server("UDP 198.18.0.100:53", "198.18.0.11:53", s => s with { InactiveConnections = 17 });
    }

    [Test]
    public void Classic_setup_lists_like_ipvsadm()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(Classic);
        ClassicCounts(backend);
        Expect(executor, "-L -n", A_L);
        Expect(executor, "-Ln", A_L);
        Expect(executor, "-l --numeric", A_L);
        Expect(executor, "--list -n --sort", A_L);
        Expect(executor, "-L -n --thresholds", A_thresholds);
        Expect(executor, "-L -n --persistent-conn", A_pc);
        Expect(executor, "-L -n -t 198.18.0.100:80", A_service_numeric);
    }

    [Test]
    public void Classic_setup_saves_like_ipvsadm()
    {
        (IpvsadmExecutor executor, _) = Run(Classic);
        Expect(executor, "-S -n", A_S);
        Expect(executor, "--save --numeric", A_S);
    }

    [Test]
    public void Without_n_names_are_looked_up_and_cut_as_ipvsadm_cuts_them()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(Classic);
        ClassicCounts(backend);
        Expect(executor, "-L", A_names);
        Expect(executor, "", A_names); // no arguments at all lists the table
        Expect(executor, "-S", A_S_names);
        Expect(executor, "-L -t 198.18.0.100:80", A_service);
    }

    [Test]
    public void Persistence_thresholds_and_methods_list_like_ipvsadm()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(Persistence);
        backend.Server("TCP 198.18.0.100:443", "198.18.0.21:443", s => s with { ActiveConnections = 5, InactiveConnections = 2, PersistentConnections = 3 });
        backend.Server("TCP 198.18.0.101:0", "198.18.0.11:0", s => s with { PersistentConnections = 1 });
        Expect(executor, "-L -n", B_L);
        Expect(executor, "-S -n", B_S);
        Expect(executor, "-L -n --thresholds", B_thresholds);
        Expect(executor, "-L -n --persistent-conn", B_pc);
        Expect(executor, "-L -n --tun-info", B_tun);
    }

    [Test]
    public void Nosort_prints_the_kernel_list_order()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(Classic);
        ClassicCounts(backend);
        // Services in the order they were added, servers newest first (list_add_rcu puts new ones at the head).
        Expect(executor, "-L -n --nosort", A_nosort);
    }

    [Test]
    public void Stats_and_rates_scale_like_print_largenum_and_exact_prints_every_digit()
    {
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(Classic);
        backend.Service("TCP 198.18.0.100:80", s => s with
        {
            Stats = Counters(99999999, 100000000, 0, 123456789012, 0),
            Rates = new TrafficRates(12, 340, 0, 41234, 0),
        });
        backend.Server("TCP 198.18.0.100:80", "198.18.0.11:80", s => s with
        {
            Stats = Counters(5, 999999999, 0, 99999999999, 0),
            Rates = new TrafficRates(100000000, 300, 0, 100000000, 0),
        });
        backend.Server("TCP 198.18.0.100:80", "198.18.0.12:80", s => s with
        {
            Stats = Counters(1000000000, 7, 0, 123456789012345678, 0),
            Rates = new TrafficRates(7, 1, 0, 999, 0),
        });
        Expect(executor, "-L -n --stats", C_stats);
        Expect(executor, "-L -n --rate", C_rate);
        Expect(executor, "-L -n --stats --exact", C_stats_exact);
        Expect(executor, "-L -n --rate --exact", C_rate_exact);
        // --stats wins over --rate and --thresholds, as in print_title / print_service_entry.
        Expect(executor, "-L -n --stats --rate --thresholds", C_stats);
    }

    /// <summary>
    /// IPv6: ipvsadm never cuts an IPv6 name (addrport_to_anyname writes "[address]:port" whole), so a long one pushes the
    /// columns right: in -L, in --stats and --rate (the "%-33s" service and "%-28s" server fields overflow), and -S
    /// writes the brackets and -M as a prefix length.
    /// </summary>
    [Test]
    public void Ipv6_names_are_never_cut_and_push_the_columns_as_ipvsadm_prints_them()
    {
        const string Vip = "[2001:2:ffff:ffff:ffff::100]:80";
        (IpvsadmExecutor executor, InMemoryIpvsBackend backend) = Run(
        [
            $"-A -t {Vip} -s wrr -p 300 -M 64",
            $"-a -t {Vip} -r [2001:2::11]:80 -g -w 1",
            $"-a -t {Vip} -r [2001:2:0:ffff:ffff::1234]:8080 -m -w 3",
        ]);
        const string Service = "TCP 2001:2:ffff:ffff:ffff::100:80";
        backend.Service(Service, s => s with { Stats = Counters(7, 1000, 900, 123456, 987654), Rates = new TrafficRates(3, 40, 30, 5000, 123456789) });
        backend.Server(Service, "2001:2::11:80", s => s with
        {
            ActiveConnections = 2,
            InactiveConnections = 3,
            Stats = Counters(5, 600, 0, 70000, 0),
            Rates = new TrafficRates(2, 25, 0, 3000, 0),
        });
        backend.Server(Service, "2001:2:0:ffff:ffff::1234:8080", s => s with
        {
            InactiveConnections = 1,
            Stats = Counters(2, 400, 900, 53456, 987654),
            Rates = new TrafficRates(1, 15, 30, 2000, 123456789),
        });
        Expect(executor, "-L -n",
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  [2001:2:ffff:ffff:ffff::100]:80 wrr persistent 300 mask 64\n" +
            "  -> [2001:2::11]:80              Route   1      2          3         \n" +
            "  -> [2001:2:0:ffff:ffff::1234]:8080 Masq    3      0          1         \n");
        Expect(executor, "-L -n --stats",
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n" +
            "TCP  [2001:2:ffff:ffff:ffff::100]:80        7     1000      900   123456   987654\n" +
            "  -> [2001:2::11]:80                     5      600        0    70000        0\n" +
            "  -> [2001:2:0:ffff:ffff::1234]:8080        2      400      900    53456   987654\n");
        Expect(executor, "-L -n --rate",
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n" +
            "TCP  [2001:2:ffff:ffff:ffff::100]:80        3       40       30     5000  123456K\n" +
            "  -> [2001:2::11]:80                     2       25        0     3000        0\n" +
            "  -> [2001:2:0:ffff:ffff::1234]:8080        1       15       30     2000  123456K\n");
        Expect(executor, "-S -n",
            "-A -t [2001:2:ffff:ffff:ffff::100]:80 -s wrr -p 300 -M 64\n" +
            "-a -t [2001:2:ffff:ffff:ffff::100]:80 -r [2001:2::11]:80 -g -w 1\n" +
            "-a -t [2001:2:ffff:ffff:ffff::100]:80 -r [2001:2:0:ffff:ffff::1234]:8080 -m -w 3\n");
    }

    private static TrafficCounters Counters(long connections, long inPackets, long outPackets, long inBytes, long outBytes) => new()
    {
        Connections = connections,
        InPackets = inPackets,
        OutPackets = outPackets,
        InBytes = inBytes,
        OutBytes = outBytes,
    };

    private const string A_L =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  198.18.0.100:80 wrr\n" +
            "  -> 198.18.0.11:80               Route   1      12         40        \n" +
            "  -> 198.18.0.12:80               Route   3      3          0         \n" +
            "UDP  198.18.0.100:53 rr\n" +
            "  -> 198.18.0.11:53               Route   1      0          17        \n" +
            "  -> 198.18.0.12:53               Route   2      0          0         \n";

    private const string A_S =
            "-A -t 198.18.0.100:80 -s wrr\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n" +
            "-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3\n" +
            "-A -u 198.18.0.100:53 -s rr\n" +
            "-a -u 198.18.0.100:53 -r 198.18.0.11:53 -g -w 1\n" +
            "-a -u 198.18.0.100:53 -r 198.18.0.12:53 -g -w 2\n";

    private const string A_thresholds =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80 wrr\n" +
            "  -> 198.18.0.11:80               0          0          12         40        \n" +
            "  -> 198.18.0.12:80               0          0          3          0         \n" +
            "UDP  198.18.0.100:53 rr\n" +
            "  -> 198.18.0.11:53               0          0          0          17        \n" +
            "  -> 198.18.0.12:53               0          0          0          0         \n";

    private const string A_pc =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80 wrr\n" +
            "  -> 198.18.0.11:80               1         0           12         40        \n" +
            "  -> 198.18.0.12:80               3         0           3          0         \n" +
            "UDP  198.18.0.100:53 rr\n" +
            "  -> 198.18.0.11:53               1         0           0          17        \n" +
            "  -> 198.18.0.12:53               2         0           0          0         \n";

    private const string A_names =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  www.example-service.internal wrr\n" +
            "  -> realserver-one.example.inter Route   1      12         40        \n" +
            "  -> 198.18.0.12:http             Route   3      3          0         \n" +
            "UDP  www.example-service.internal rr\n" +
            "  -> realserver-one.example.inter Route   1      0          17        \n" +
            "  -> 198.18.0.12:domain           Route   2      0          0         \n";

    private const string A_S_names =
            "-A -t www.example-service.internal:http -s wrr\n" +
            "-a -t www.example-service.internal:http -r realserver-one.example.internal:http -g -w 1\n" +
            "-a -t www.example-service.internal:http -r 198.18.0.12:http -g -w 3\n" +
            "-A -u www.example-service.internal:domain -s rr\n" +
            "-a -u www.example-service.internal:domain -r realserver-one.example.internal:domain -g -w 1\n" +
            "-a -u www.example-service.internal:domain -r 198.18.0.12:domain -g -w 2\n";

    private const string A_service =
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  www.example-service.internal wrr\n" +
            "  -> realserver-one.example.inter Route   1      12         40        \n" +
            "  -> 198.18.0.12:http             Route   3      3          0         \n";

    private const string B_L =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  198.18.0.100:443 lc persistent 600 mask 255.255.255.0\n" +
            "  -> 198.18.0.21:443              Masq    2      5          2         \n" +
            "  -> 198.18.0.22:8443             Masq    7      0          0         \n" +
            "  -> 198.18.0.23:443              Tunnel  5      0          0         \n" +
            "TCP  198.18.0.101:0 sh (sh-fallback,sh-port) persistent 360\n" +
            "  -> 198.18.0.11:0                Route   4      0          0         \n" +
            "TCP  198.19.0.1:80 rr\n" +
            "  -> 198.18.0.11:80               Route   1      0          0         \n" +
            "UDP  198.18.0.100:5000 mh (mh-port) ops\n" +
            "  -> 198.18.0.12:5000             Route   0      0          0         \n" +
            "UDP  198.18.0.102:123 lc\n";

    private const string B_S =
            "-A -t 198.18.0.100:443 -s lc -p 600 -M 255.255.255.0\n" +
            "-a -t 198.18.0.100:443 -r 198.18.0.21:443 -m -w 2\n" +
            "-a -t 198.18.0.100:443 -r 198.18.0.22:8443 -m -w 7\n" +
            "-a -t 198.18.0.100:443 -r 198.18.0.23:443 -i -w 5 --tun-type ipip\n" +
            "-A -t 198.18.0.101:0 -s sh -p 360 -b sh-fallback,sh-port\n" +
            "-a -t 198.18.0.101:0 -r 198.18.0.11:0 -g -w 4\n" +
            "-A -t 198.19.0.1:80 -s rr\n" +
            "-a -t 198.19.0.1:80 -r 198.18.0.11:80 -g -w 1\n" +
            "-A -u 198.18.0.100:5000 -s mh -o -b mh-port\n" +
            "-a -u 198.18.0.100:5000 -r 198.18.0.12:5000 -g -w 0\n" +
            "-A -u 198.18.0.102:123 -s lc\n";

    private const string B_thresholds =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:443 lc persistent 600 mask 255.255.255.0\n" +
            "  -> 198.18.0.21:443              100        50         5          2         \n" +
            "  -> 198.18.0.22:8443             20         5          0          0         \n" +
            "  -> 198.18.0.23:443              0          0          0          0         \n" +
            "TCP  198.18.0.101:0 sh (sh-fallback,sh-port) persistent 360\n" +
            "  -> 198.18.0.11:0                0          0          0          0         \n" +
            "TCP  198.19.0.1:80 rr\n" +
            "  -> 198.18.0.11:80               0          0          0          0         \n" +
            "UDP  198.18.0.100:5000 mh (mh-port) ops\n" +
            "  -> 198.18.0.12:5000             0          0          0          0         \n" +
            "UDP  198.18.0.102:123 lc\n";

    private const string B_pc =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:443 lc persistent 600 mask 255.255.255.0\n" +
            "  -> 198.18.0.21:443              2         3           5          2         \n" +
            "  -> 198.18.0.22:8443             7         0           0          0         \n" +
            "  -> 198.18.0.23:443              5         0           0          0         \n" +
            "TCP  198.18.0.101:0 sh (sh-fallback,sh-port) persistent 360\n" +
            "  -> 198.18.0.11:0                4         1           0          0         \n" +
            "TCP  198.19.0.1:80 rr\n" +
            "  -> 198.18.0.11:80               1         0           0          0         \n" +
            "UDP  198.18.0.100:5000 mh (mh-port) ops\n" +
            "  -> 198.18.0.12:5000             0         0           0          0         \n" +
            "UDP  198.18.0.102:123 lc\n";

    private const string B_tun =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n" +
            "TCP  198.18.0.100:443 lc persistent 600 mask 255.255.255.0\n" +
            "  -> 198.18.0.21:443              Masq    n/a           2      5          2         \n" +
            "  -> 198.18.0.22:8443             Masq    n/a           7      0          0         \n" +
            "  -> 198.18.0.23:443              Tunnel  ipip          5      0          0         \n" +
            "TCP  198.18.0.101:0 sh (sh-fallback,sh-port) persistent 360\n" +
            "  -> 198.18.0.11:0                Route   n/a           4      0          0         \n" +
            "TCP  198.19.0.1:80 rr\n" +
            "  -> 198.18.0.11:80               Route   n/a           1      0          0         \n" +
            "UDP  198.18.0.100:5000 mh (mh-port) ops\n" +
            "  -> 198.18.0.12:5000             Route   n/a           0      0          0         \n" +
            "UDP  198.18.0.102:123 lc\n";

    private const string C_stats =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80              99999999  100000K        0     123G        0\n" +
            "  -> 198.18.0.11:80                      5  999999K        0   99999M        0\n" +
            "  -> 198.18.0.12:80                  1000M        7        0  123456T        0\n" +
            "UDP  198.18.0.100:53                     0        0        0        0        0\n" +
            "  -> 198.18.0.11:53                      0        0        0        0        0\n" +
            "  -> 198.18.0.12:53                      0        0        0        0        0\n";

    private const string C_rate =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80                    12      340        0    41234        0\n" +
            "  -> 198.18.0.11:80               100000000      300        0  100000K        0\n" +
            "  -> 198.18.0.12:80                      7        1        0      999        0\n" +
            "UDP  198.18.0.100:53                     0        0        0        0        0\n" +
            "  -> 198.18.0.11:53                      0        0        0        0        0\n" +
            "  -> 198.18.0.12:53                      0        0        0        0        0\n";

    private const string C_stats_exact =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80              99999999 100000000        0 123456789012        0\n" +
            "  -> 198.18.0.11:80                      5 999999999        0 99999999999        0\n" +
            "  -> 198.18.0.12:80               1000000000        7        0 123456789012345678        0\n" +
            "UDP  198.18.0.100:53                     0        0        0        0        0\n" +
            "  -> 198.18.0.11:53                      0        0        0        0        0\n" +
            "  -> 198.18.0.12:53                      0        0        0        0        0\n";

    private const string C_rate_exact =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n" +
            "  -> RemoteAddress:Port\n" +
            "TCP  198.18.0.100:80                    12      340        0    41234        0\n" +
            "  -> 198.18.0.11:80               100000000      300        0 100000000        0\n" +
            "  -> 198.18.0.12:80                      7        1        0      999        0\n" +
            "UDP  198.18.0.100:53                     0        0        0        0        0\n" +
            "  -> 198.18.0.11:53                      0        0        0        0        0\n" +
            "  -> 198.18.0.12:53                      0        0        0        0        0\n";

    private const string A_service_numeric =
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  198.18.0.100:80 wrr\n" +
            "  -> 198.18.0.11:80               Route   1      12         40        \n" +
            "  -> 198.18.0.12:80               Route   3      3          0         \n";

    private const string A_nosort =
            "IP Virtual Server version 1.2.1 (size=4096)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
            "TCP  198.18.0.100:80 wrr\n" +
            "  -> 198.18.0.12:80               Route   3      3          0         \n" +
            "  -> 198.18.0.11:80               Route   1      12         40        \n" +
            "UDP  198.18.0.100:53 rr\n" +
            "  -> 198.18.0.11:53               Route   1      0          17        \n" +
            "  -> 198.18.0.12:53               Route   2      0          0         \n";

}
