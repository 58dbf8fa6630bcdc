using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// Two balancers (`tools/lab.sh up PREFIX --pair`), each running keepalived (VRRP only: the election, the VIP and the
/// NAT servers' gateway, the gratuitous ARPs) and udr, which follows keepalived's role through its notify FIFO, syncs
/// its connections as master and forwards nothing as backup (--backup-only). lb has priority 150, lb2 100. Long-lived
/// connections (tools/lab/chat_server.py answers every line, naming the server) and a download run through the VIP
/// while the master dies hard, comes back and preempts, or stops gracefully; every connection must keep its server.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed partial class FailoverEndToEndTests : EndToEndFixture
{
    private const string Backend = "afpacket";
    private const int ChatPort = 7000;
    private const int NatChatPort = 7001;
    private const int LongLivedConnections = 20;
    private const int DownloadBytesPerSecond = 1024 * 1024;
    private const string Vip6 = "2001:2::100";
    private const string Client6 = "2001:2::1";
    private const string Rs1v6 = "2001:2::11";
    private const string Rs2v6 = "2001:2::12";

    /// <summary>advert_int 1: a backup takes over after 3 × advert_int + skew (VRRP's master-down interval); the issue allows 1 s more.</summary>
    private static readonly TimeSpan HardTakeoverLimit = TimeSpan.FromSeconds(3 * 1 + 1);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python, withNatServers: true, balancerPair: true);

    internal override void Prepare(EndToEndLab lab)
    {
        Assume.That(File.Exists("/usr/sbin/keepalived"), Is.True, "keepalived is not installed (./build.sh test installs it)");
        lab.StartServers();
    }

    /// <summary>One balancer of the pair: its udr, its keepalived, and where their files are.</summary>
    private sealed class Balancer(LabHost host, string directory)
    {
        public LabHost Host { get; } = host;
        public string Name => LabNetwork.HostName(Host);
        public string ConfigPath => Path.Combine(directory, $"{Name}.conf");
        public string ControlPath => Path.Combine(directory, $"{Name}.sock");
        public UdrDaemon? Udr { get; set; }
        public NamespacedProcess? Keepalived { get; set; }
    }

    private Balancer Lb1 => _lb1 ??= new Balancer(LabHost.Lb, Lab.Directory);
    private Balancer Lb2 => _lb2 ??= new Balancer(LabHost.Lb2, Lab.Directory);
    private Balancer? _lb1;
    private Balancer? _lb2;

    [TearDown]
    public void ForgetBalancers()
    {
        // The lab's EndTest ends the processes; the next test starts both balancers afresh.
        _lb1 = null;
        _lb2 = null;
    }

    /// <summary>
    /// The keepalived.conf of one balancer: one VRRP instance moving the VIP (public side) and the NAT servers' gateway
    /// (private side) together, its FIFO for udr, and udr's services: chat and HTTP by direct routing (wrr 3:1), chat by
    /// NAT (lc) on rs3/rs4.
    /// </summary>
    private void WriteConfig(Balancer balancer, int priority, string state, bool ipv6 = false)
    {
        // With ipv6, the instance also moves the IPv6 VIP (keepalived keeps one family per instance's virtual_ipaddress,
        // the other in virtual_ipaddress_excluded) and udr serves the chat port on it too.
        string ipv6Address = ipv6 ? $"virtual_ipaddress_excluded {{\n        {Vip6}/128 dev eth0\n    }}" : "";
        string ipv6Service = !ipv6 ? "" : $$"""
            virtual_server {{Vip6}} {{ChatPort}} {
                lb_algo wrr
                lb_kind DR
                real_server {{Rs1v6}} {{ChatPort}} {
                    weight 3
                }
                real_server {{Rs2v6}} {{ChatPort}} {
                    weight 1
                }
            }
            """;
        File.WriteAllText(balancer.ConfigPath, $$"""
            global_defs {
                router_id {{balancer.Name}}
                vrrp_notify_fifo {{Path.Combine(Lab.Directory, balancer.Name + ".fifo")}}
                # udr's only: keepalived here runs VRRP alone, the sync daemon is udr's
                @udr lvs_sync_daemon eth0 VI_1
            }
            vrrp_instance VI_1 {
                state {{state}}
                interface eth0
                virtual_router_id 51
                priority {{priority}}
                advert_int 1
                virtual_ipaddress {
                    {{LabNetwork.Vip}}/32 dev eth0
                    {{LabNetwork.LbPrivateAddress}}/24 dev eth1
                }
                {{ipv6Address}}
            }
            {{ipv6Service}}
            virtual_server {{LabNetwork.Vip}} {{ChatPort}} {
                lb_algo wrr
                lb_kind DR
                real_server {{LabNetwork.Rs1Address}} {{ChatPort}} {
                    weight 3
                }
                real_server {{LabNetwork.Rs2Address}} {{ChatPort}} {
                    weight 1
                }
            }
            virtual_server {{LabNetwork.Vip}} 80 {
                lb_algo wrr
                lb_kind DR
                real_server {{LabNetwork.Rs1Address}} 80 {
                    weight 3
                }
                real_server {{LabNetwork.Rs2Address}} 80 {
                    weight 1
                }
            }
            virtual_server {{LabNetwork.Vip}} {{NatChatPort}} {
                lb_algo lc
                lb_kind NAT
                real_server {{LabNetwork.Rs3Address}} {{ChatPort}} {
                }
                real_server {{LabNetwork.Rs4Address}} {{ChatPort}} {
                }
            }
            """);
    }

    private void StartUdr(Balancer balancer) =>
        balancer.Udr = Lab.StartUdrWithConfigOn(balancer.Host, Backend, balancer.ConfigPath,
            "--interface", "eth1", "--control", balancer.ControlPath, "--backup-only");

    private void StartKeepalived(Balancer balancer) =>
        balancer.Keepalived = Lab.StartKeepalived(balancer.Host, balancer.ConfigPath, balancer.Name);

    private static string? WaitForRole(Balancer balancer, string role, TimeSpan timeout, int skip = 0) =>
        balancer.Udr!.WaitForLine(l => l.Contains($"VRRP instance VI_1 is {role}", StringComparison.Ordinal), timeout, skip);

    private static int CountRole(Balancer balancer, string role) =>
        balancer.Udr!.CountLines(l => l.Contains($"VRRP instance VI_1 is {role}", StringComparison.Ordinal));

    /// <summary>lb (150, starting as MASTER) and lb2 (100) up; returns once lb is master and lb2 its backup.</summary>
    private void StartPair(bool ipv6 = false)
    {
        WriteConfig(Lb1, 150, "MASTER", ipv6);
        WriteConfig(Lb2, 100, "BACKUP", ipv6);
        StartUdr(Lb1);
        StartUdr(Lb2);
        StartKeepalived(Lb2);
        StartKeepalived(Lb1);
        string Both() => $"lb's keepalived:\n{Lb1.Keepalived!.Output}\nlb2's keepalived:\n{Lb2.Keepalived!.Output}\nlb's udr:\n{Lb1.Udr!.Output}\nlb2's udr:\n{Lb2.Udr!.Output}";
        Assert.That(WaitForRole(Lb1, "MASTER", TimeSpan.FromSeconds(15)), Is.Not.Null, Both);
        Assert.That(WaitForRole(Lb2, "BACKUP", TimeSpan.FromSeconds(15)), Is.Not.Null, Both);
        Assert.That(Lb1.Udr!.WaitForLine(l => l.Contains("master sync daemon on eth0", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, Lb1.Udr.Output);
        Lab.Step("lb is MASTER, lb2 BACKUP");
        foreach (Balancer balancer in (Balancer[])[Lb1, Lb2])
        {
            // A VIP that VRRP moves, NAT servers on eth1 and DR servers on eth0 are all as they should be.
            Assert.That(balancer.Udr!.Output.Split('\n').Where(l => l.Contains("preflight fail", StringComparison.Ordinal)), Is.Empty, balancer.Name);
        }
    }

    private static string Adm(Balancer balancer, params string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(UdrBinary.Executable, ["adm", "--control", balancer.ControlPath, .. arguments], TimeSpan.FromSeconds(30));
        Assert.That(result.ExitCode, Is.Zero, $"udr adm {string.Join(' ', arguments)} on {balancer.Name}: {result.Error}");
        return result.Output;
    }

    /// <summary>The balancer's connections to <paramref name="virtualPort"/> by client port, in the given state, with their real servers.</summary>
    private static Dictionary<int, string> Connections(Balancer balancer, int virtualPort, string state = "ESTABLISHED")
    {
        var found = new Dictionary<int, string>();
        foreach (Match match in ConnectionLine().Matches(Adm(balancer, "-L", "-c", "-n")))
        {
            if (match.Groups["state"].Value == state && int.Parse(match.Groups["vport"].Value, System.Globalization.CultureInfo.InvariantCulture) == virtualPort)
            {
                found[int.Parse(match.Groups["cport"].Value, System.Globalization.CultureInfo.InvariantCulture)] = match.Groups["rs"].Value;
            }
        }
        return found;
    }

    /// <summary>Waits until the balancer holds every one of <paramref name="expected"/> (client port → real server address).</summary>
    private void AssertLearns(Balancer balancer, int virtualPort, Dictionary<int, string> expected, TimeSpan patience)
    {
        var clock = Stopwatch.StartNew();
        Dictionary<int, string> held = [];
        while (clock.Elapsed < patience)
        {
            held = Connections(balancer, virtualPort);
            if (expected.All(e => held.GetValueOrDefault(e.Key) == e.Value))
            {
                Lab.Step($"{balancer.Name} holds all {expected.Count} connections to port {virtualPort} on their servers");
                return;
            }
            Thread.Sleep(250);
        }
        Assert.Fail($"{balancer.Name} did not learn the connections to port {virtualPort} within {patience.TotalSeconds} s: " +
                    $"missing {string.Join(", ", expected.Where(e => held.GetValueOrDefault(e.Key) != e.Value).Select(e => $"{e.Key}→{e.Value}"))}");
    }

    private static string AddressOf(string server) => server switch
    {
        "rs1" => LabNetwork.Rs1Address,
        "rs2" => LabNetwork.Rs2Address,
        "rs3" => LabNetwork.Rs3Address,
        "rs4" => LabNetwork.Rs4Address,
        _ => throw new ArgumentOutOfRangeException(nameof(server), server, null),
    };

    private void StartChatServers(params LabHost[] servers)
    {
        foreach (LabHost server in servers)
        {
            Lab.StartLabProgram(server, "chat listening", LabScripts.ChatServerFile, LabNetwork.HostName(server), EndToEndLab.ListenAddress(server), ChatPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>client.py sessions: returns the process and, from its ready line, each connection's client port → server name.</summary>
    private (NamespacedProcess Client, Dictionary<int, string> Servers) StartSessions(int count, int port, int seconds, params string[] more)
    {
        NamespacedProcess client = Lab.StartClient(["sessions", count.ToString(System.Globalization.CultureInfo.InvariantCulture), port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            seconds.ToString(System.Globalization.CultureInfo.InvariantCulture), .. more]);
        string ready = client.WaitForLine(l => l.StartsWith("ready", StringComparison.Ordinal), TimeSpan.FromSeconds(20))
            ?? throw new AssertionException($"the sessions did not start: {client.Output}");
        Dictionary<int, string> servers = ready.Split(' ').Skip(1).Select(p => p.Split(':'))
            .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => p[1]);
        Lab.Step($"{count} connections to port {port}: {string.Join(", ", servers.Values.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Key} {g.Count()}"))}");
        return (client, servers);
    }

    /// <summary>Ends a sessions client ("stop") and returns its report.</summary>
    private JsonElement EndSessions(NamespacedProcess client)
    {
        client.WriteLine("stop");
        Assert.That(client.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, $"the sessions client did not end: {client.Output}");
        string last = client.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last();
        Lab.Step($"sessions: {(last.Length > 300 ? last[..300] + "…" : last)}");
        using JsonDocument document = JsonDocument.Parse(last);
        return document.RootElement.Clone();
    }

    /// <summary>
    /// Every connection was answered to the end, by the one server it started on, with no error: none broke or moved.
    /// </summary>
    private static void AssertEveryConnectionKeptItsServer(JsonElement report, Dictionary<int, string> servers, TimeSpan longestSilence)
    {
        JsonElement[] connections = [.. report.GetProperty("connections").EnumerateArray()];
        Assert.Multiple(() =>
        {
            foreach (JsonElement connection in connections.Where(c => !c.GetProperty("closed").GetBoolean()))
            {
                int port = connection.GetProperty("port").GetInt32();
                string what = $"connection from port {port}: {connection}";
                Assert.That(connection.GetProperty("error").ValueKind, Is.EqualTo(JsonValueKind.Null), what);
                Assert.That(connection.GetProperty("servers").EnumerateArray().Select(s => s.GetString()), Is.EqualTo(new[] { servers[port] }), "one server, the first: " + what);
                Assert.That(connection.GetProperty("sent").GetInt32() - connection.GetProperty("answered").GetInt32(), Is.LessThanOrEqualTo(2), "every line answered: " + what);
                Assert.That(connection.GetProperty("quiet_at_end").GetDouble(), Is.LessThan(1.0), "still answered at the end: " + what);
                Assert.That(connection.GetProperty("max_silence").GetDouble(), Is.LessThan(longestSilence.TotalSeconds), what);
            }
        });
    }

    /// <summary>The balancer dies as a machine does: its links go first (nothing more leaves it), then its processes, with SIGKILL.</summary>
    private void KillHard(Balancer balancer)
    {
        Lab.Network.Exec(LabHost.Switch, $"ip link set {balancer.Name} down; ip link set {balancer.Name}p down");
        string vrrpPidFile = Lab.KeepalivedPidFile(balancer.Name, "vrrp");
        string vrrpPid = File.Exists(vrrpPidFile) ? File.ReadAllText(vrrpPidFile).Trim() : "";
        balancer.Keepalived!.Stop(NamespacedProcess.SigKill, TimeSpan.FromSeconds(5));
        if (vrrpPid.Length > 0)
        {
            // keepalived's VRRP child is a process of its own; a crash takes it too.
            ProcessRunner.Run("kill", ["-KILL", vrrpPid], TimeSpan.FromSeconds(5));
        }
        balancer.Udr!.Kill();
        Lab.Step($"{balancer.Name} killed (links cut, SIGKILL)");
    }

    /// <summary>The dead balancer boots again: none of the VRRP addresses it held, its links up, nothing running.</summary>
    private void Reboot(Balancer balancer)
    {
        Lab.Network.Exec(balancer.Host, $"ip addr del {LabNetwork.Vip}/32 dev eth0 2>/dev/null; ip addr del {LabNetwork.LbPrivateAddress}/24 dev eth1 2>/dev/null; " +
                                        "for t in udr_eth0 udr_eth1; do nft delete table netdev $t 2>/dev/null; done; true");
        Lab.Network.Exec(LabHost.Switch, $"ip link set {balancer.Name} up; ip link set {balancer.Name}p up");
        Lab.Step($"{balancer.Name} rebooted");
    }

    [Test]
    public void A_hard_killed_master_s_connections_and_download_survive_on_the_backup_and_come_back_with_failback()
    {
        StartChatServers(LabHost.Rs1, LabHost.Rs2);
        StartPair();
        (NamespacedProcess client, Dictionary<int, string> servers) = StartSessions(LongLivedConnections, ChatPort, 60,
            DownloadBytesPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.That(servers.Values.Count(s => s == "rs1"), Is.EqualTo(15), "wrr 3:1 over 20 fresh connections");
        Dictionary<int, string> bound = servers.ToDictionary(s => s.Key, s => AddressOf(s.Value));
        // The backup knows every connection before the master dies (IPVS syncs on a connection's 3rd packet).
        AssertLearns(Lb2, ChatPort, bound, TimeSpan.FromSeconds(10));

        int lb2Masters = CountRole(Lb2, "MASTER");
        var takeover = Stopwatch.StartNew();
        KillHard(Lb1);
        Assert.That(WaitForRole(Lb2, "MASTER", TimeSpan.FromSeconds(10), lb2Masters), Is.Not.Null, Lb2.Udr!.Output);
        TimeSpan tookOver = takeover.Elapsed;
        Lab.Step($"lb2 MASTER {tookOver.TotalSeconds:F2} s after lb died");
        Assert.That(tookOver, Is.LessThan(HardTakeoverLimit), "3 × advert_int + 1 s");
        Assert.That(Lb2.Udr!.WaitForLine(l => l.Contains("data plane: serving", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), Is.Not.Null, Lb2.Udr.Output);

        // New connections through the new master, scheduled by its own wrr.
        EndToEndSupport.AssertSplit(Lab.RunClient(TimeSpan.FromSeconds(60), "split", "8", "1", "30"), 8,
            new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 }, tolerance: 0);

        // lb comes back; while it is a backup (its keepalived not yet started) it learns every connection from lb2.
        Reboot(Lb1);
        StartUdr(Lb1);
        AssertLearns(Lb1, ChatPort, bound, TimeSpan.FromSeconds(15));
        int lb2Backups = CountRole(Lb2, "BACKUP");
        StartKeepalived(Lb1);
        Assert.That(WaitForRole(Lb1, "MASTER", TimeSpan.FromSeconds(10)), Is.Not.Null, Lb1.Udr!.Output);
        Assert.That(WaitForRole(Lb2, "BACKUP", TimeSpan.FromSeconds(10), lb2Backups), Is.Not.Null, Lb2.Udr!.Output);
        Lab.Step("failback: lb MASTER again");
        Thread.Sleep(TimeSpan.FromSeconds(3));

        JsonElement report = EndSessions(client);
        // TCP's retransmission backoff (200 ms doubling) adds to the takeover: a lost segment is resent 3 s and 6.2 s on.
        AssertEveryConnectionKeptItsServer(report, servers, TimeSpan.FromSeconds(10));
        JsonElement download = report.GetProperty("download");
        Assert.That(download.GetProperty("status").GetString(), Is.EqualTo("HTTP/1.0 200 OK"), download.ToString());
        Assert.That(download.GetProperty("complete").GetBoolean(), Is.True, download.ToString());
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), download.ToString());
        Assert.That(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!), Is.Not.Null, "intact: the hash of a server's big.bin");
        Assert.That(Lb1.Udr.Stop().ExitCode, Is.Zero);
        Assert.That(Lb2.Udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void A_gracefully_stopped_master_hands_over_in_under_a_second_with_its_nat_connections_and_least_connection_counts()
    {
        StartChatServers(LabHost.Rs3, LabHost.Rs4);
        StartPair();
        (NamespacedProcess client, Dictionary<int, string> servers) = StartSessions(6, NatChatPort, 60);
        Assert.That(servers.Values.Count(s => s == "rs3"), Is.EqualTo(3), "lc alternates over fresh connections");
        // Unbalance lc: rs4 keeps one active connection (and two closing), rs3 three.
        client.WriteLine("close rs4 2");
        Assert.That(client.WaitForLine(l => l == "closed", TimeSpan.FromSeconds(10)), Is.Not.Null, client.Output);
        string Counts(Balancer balancer) => string.Join(" | ", Adm(balancer, "-L", "-n").Split('\n').Where(l => l.Contains("Masq", StringComparison.Ordinal))
            .Select(l => Regex.Replace(l.Trim(), @"\s+", " ")));
        string onMaster = "";
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            onMaster = Counts(Lb1);
            if (onMaster.Contains($"{LabNetwork.Rs3Address}:{ChatPort} Masq 1 3 0", StringComparison.Ordinal) &&
                onMaster.Contains($"{LabNetwork.Rs4Address}:{ChatPort} Masq 1 1 2", StringComparison.Ordinal) && Counts(Lb2) == onMaster)
            {
                break;
            }
            Thread.Sleep(250);
        }
        Lab.Step($"active/inactive on lb: {onMaster}; on lb2: {Counts(Lb2)}");
        Assert.That(onMaster, Does.Contain($"{LabNetwork.Rs3Address}:{ChatPort} Masq 1 3 0").And.Contain($"{LabNetwork.Rs4Address}:{ChatPort} Masq 1 1 2"));
        Assert.That(Counts(Lb2), Is.EqualTo(onMaster), "the backup's counts are the master's");

        int lb2Masters = CountRole(Lb2, "MASTER");
        var takeover = Stopwatch.StartNew();
        // keepalived's graceful stop: a priority-0 advert tells the backup to take over after its skew time alone.
        Lb1.Keepalived!.Signal(NamespacedProcess.SigTerm);
        Assert.That(WaitForRole(Lb2, "MASTER", TimeSpan.FromSeconds(10), lb2Masters), Is.Not.Null, Lb2.Udr!.Output);
        TimeSpan tookOver = takeover.Elapsed;
        Assert.That(Lb1.Keepalived.WaitForExit(TimeSpan.FromSeconds(10)), Is.True, Lb1.Keepalived.Output);
        Lab.Step($"lb2 MASTER {tookOver.TotalSeconds:F2} s after lb's keepalived stopped");
        Assert.That(tookOver, Is.LessThan(TimeSpan.FromSeconds(1)),
            $"a priority-0 advert: the backup takes over at once.\nlb's keepalived:\n{Lb1.Keepalived.Output}\nlb2's keepalived:\n{Lb2.Keepalived!.Output}\nlb2's udr:\n{Lb2.Udr.Output}");
        Assert.That(Lb1.Udr!.WaitForLine(l => l.Contains("data plane: standby (backup_only)", StringComparison.Ordinal), TimeSpan.FromSeconds(5), skip: 1), Is.Not.Null,
            "lb, no longer master, forwards nothing: " + Lb1.Udr.Output);
        Assert.That(Lb2.Udr!.WaitForLine(l => l.Contains("data plane: serving", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), Is.Not.Null, Lb2.Udr.Output);

        // lc on lb2 decides with the synced counts: rs4 (1 active, 2 inactive) takes the next two, as lb would have.
        (NamespacedProcess more, Dictionary<int, string> next) = StartSessions(2, NatChatPort, 30);
        Assert.That(next.Values, Is.EqualTo(new[] { "rs4", "rs4" }), "lc with the master's counts");
        Thread.Sleep(TimeSpan.FromSeconds(2));
        AssertEveryConnectionKeptItsServer(EndSessions(more), next, TimeSpan.FromSeconds(2));
        // The NAT connections made through lb live on through lb2: their replies reach it by the moved gateway.
        AssertEveryConnectionKeptItsServer(EndSessions(client), servers, TimeSpan.FromSeconds(10));
        Assert.That(Lb1.Udr.Stop().ExitCode, Is.Zero);
        Assert.That(Lb2.Udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void Ipv6_connections_of_a_hard_killed_master_survive_on_the_backup()
    {
        // IPv6 on the public segment (no duplicate address detection), the IPv6 VIP on the servers' lo.
        Lab.Network.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0");
        LabHost[] hosts = [LabHost.Client, LabHost.Lb, LabHost.Lb2, LabHost.Rs1, LabHost.Rs2];
        string[] addresses = [Client6, "2001:2::2", "2001:2::3", Rs1v6, Rs2v6];
        try
        {
            for (int i = 0; i < hosts.Length; i++)
            {
                Lab.Network.Exec(hosts[i], "sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.lo.disable_ipv6=0 && " +
                    $"sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0 && ip -6 addr add {addresses[i]}/64 dev eth0 nodad");
            }
            foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
            {
                Lab.Network.Exec(server, $"ip -6 addr add {Vip6}/128 dev lo");
                Lab.StartLabProgram(server, "chat listening", LabScripts.ChatServerFile, LabNetwork.HostName(server), Vip6, ChatPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            StartPair(ipv6: true);
            NamespacedProcess client = Lab.StartClient(["--vip", Vip6, "--client", Client6, "sessions",
                LongLivedConnections.ToString(System.Globalization.CultureInfo.InvariantCulture), ChatPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "60"]);
            string ready = client.WaitForLine(l => l.StartsWith("ready", StringComparison.Ordinal), TimeSpan.FromSeconds(20))
                ?? throw new AssertionException($"the sessions did not start: {client.Output}");
            Dictionary<int, string> servers = ready.Split(' ').Skip(1).Select(p => p.Split(':'))
                .ToDictionary(p => int.Parse(p[0], System.Globalization.CultureInfo.InvariantCulture), p => p[1]);
            Assert.That(servers.Values.Count(s => s == "rs1"), Is.EqualTo(15), "wrr 3:1 over 20 fresh IPv6 connections");
            // The backup knows every IPv6 connection (72-byte sync entries) before the master dies.
            AssertLearns(Lb2, ChatPort, servers.ToDictionary(s => s.Key, s => $"[{(s.Value == "rs1" ? Rs1v6 : Rs2v6)}]"), TimeSpan.FromSeconds(10));

            int lb2Masters = CountRole(Lb2, "MASTER");
            KillHard(Lb1);
            Assert.That(WaitForRole(Lb2, "MASTER", TimeSpan.FromSeconds(10), lb2Masters), Is.Not.Null, Lb2.Udr!.Output);
            Assert.That(Lb2.Udr!.WaitForLine(l => l.Contains("data plane: serving", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), Is.Not.Null, Lb2.Udr.Output);
            Thread.Sleep(TimeSpan.FromSeconds(4)); // the connections talk on through lb2 (keepalived's unsolicited advertisements move the VIP)
            AssertEveryConnectionKeptItsServer(EndSessions(client), servers, TimeSpan.FromSeconds(10));
            Assert.That(Lb2.Udr.Stop().ExitCode, Is.Zero);
        }
        finally
        {
            foreach (LabHost host in hosts)
            {
                Lab.Network.Exec(host, "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 net.ipv6.conf.lo.disable_ipv6=1; true");
            }
            Reboot(Lb1);
        }
    }

    [GeneratedRegex(@"TCP\s+\S+\s+(?<state>[A-Z_]+)\s+\S+:(?<cport>\d+)\s+\S+:(?<vport>\d+)\s+(?<rs>\[[0-9a-f:]+\]|[\d.]+):\d+")]
    private static partial Regex ConnectionLine();
}
