using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// `udr run` as an operator runs it, in the lab of tools/lab.sh: real TCP and UDP clients on the client host, real
/// servers on rs1/rs2 (the VIP on lo, ARP hidden), the daemon on the balancer's eth0 with each frame backend.
/// Asserts what arrived, where and intact: the scheduler's split, payload hashes, the path the replies take (from
/// captures), that the balancer's kernel never answers service traffic, hitless reload and a clean exit.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class DirectRoutingEndToEndTests(string backend) : EndToEndFixture
{
    private const string StandardRules = """
        -A -t 198.18.0.100:80 -s wrr
        -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
        -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
        -A -u 198.18.0.100:5353 -s rr
        -a -u 198.18.0.100:5353 -r 198.18.0.11:5353 -g -w 1
        -a -u 198.18.0.100:5353 -r 198.18.0.12:5353 -g -w 1

        """;

    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    [Test]
    public void Tcp_wrr_3_to_1_splits_fresh_connections_and_a_10_MiB_download_comes_back_intact_straight_from_the_real_server()
    {
        Lab.WriteRules(StandardRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        LabCapture lbCapture = Lab.StartCapture(LabHost.Lb, "tcp port 80 or icmp");
        UdrDaemon udr = Lab.StartUdr(backend);

        JsonElement split = Lab.RunClient(ClientPatience, "split", "400", "8", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "download", "/big.bin");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atLb = lbCapture.Stop();

        // The split: 400 connections, none failed, rs1's share 0.75 ± 0.05 under wrr 3:1.
        AssertSplit(split, 400, rs1Share: 0.75);

        // The download: complete, and byte for byte one server's file.
        Assert.That(download.GetProperty("status").GetString(), Does.Contain(" 200 "));
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength));
        string? server = Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!);
        Assert.That(server, Is.Not.Null, "the downloaded bytes hash to neither server's big.bin: corrupted on the way");
        int downloadPort = download.GetProperty("local_port").GetInt32();

        Assert.Multiple(() =>
        {
            // Direct routing, seen at the client: requests go to the balancer's MAC, every reply comes from a real
            // server's MAC with the VIP as source, and the download's bytes all came from the server that sent them.
            Assert.That(clientCapture.DroppedByKernel, Is.Zero, "the client capture must be complete for what it proves");
            CapturedPacket[] requests = [.. atClient.Where(p => p.IsTcp && p.Destination == LabNetwork.Vip && p.DestinationPort == 80)];
            CapturedPacket[] replies = [.. atClient.Where(p => p.IsTcp && p.Source == LabNetwork.Vip && p.SourcePort == 80)];
            Assert.That(requests.Count(p => p.Syn), Is.GreaterThanOrEqualTo(401), "every connection's SYN is in the client capture");
            Assert.That(requests.Where(p => p.DestinationMac != Lab.LbMac), Is.Empty, "the client sends VIP traffic to the balancer's MAC");
            Assert.That(replies.Count(p => p.Syn && p.Ack), Is.GreaterThanOrEqualTo(401), "every connection was answered");
            Assert.That(replies.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty,
                "replies come straight from a real server (source MAC), never through the balancer");
            CapturedPacket[] synAcks = [.. replies.Where(p => p.Syn && p.Ack)];
            Assert.That((double)synAcks.Count(p => p.SourceMac == Lab.Rs1Mac) / synAcks.Length, Is.EqualTo(0.75).Within(0.05),
                "on the wire too, rs1 (weight 3) accepted three connections in four");
            CapturedPacket[] downloadReplies = [.. replies.Where(p => p.DestinationPort == downloadPort)];
            Assert.That(downloadReplies.Where(p => p.SourceMac != Lab.MacOf(server!)), Is.Empty, $"the whole download came from {server}'s MAC");
            Assert.That(downloadReplies.Sum(p => (long)p.TransportPayloadLength), Is.GreaterThanOrEqualTo(EndToEndLab.BigFileLength),
                "the download's payload is in the capture as frames from the real server");

            // ... and at the balancer: requests arrive there, replies never do. With AF_XDP the requests are taken by
            // udr's XDP program before the kernel's packet taps, so the balancer's capture sees none of them.
            Assert.That(lbCapture.DroppedByKernel, Is.Zero);
            int synsAtLb = atLb.Count(p => p.IsTcp && p.Syn && !p.Ack && p.Destination == LabNetwork.Vip && p.SourceMac == Lab.ClientMac);
            Assert.That(synsAtLb, backend == "xdp" ? Is.Zero : Is.GreaterThanOrEqualTo(401),
                backend == "xdp" ? "XDP takes the SYNs before the taps" : "the client's SYNs cross the balancer");
            Assert.That(atLb.Where(p => p.Source == LabNetwork.Vip), Is.Empty, "no reply frame crosses the balancer");

            AssertKernelQuiet(atClient);
            AssertCleanExit(exit, minimumForwarded: 400 * 3);
        });
    }

    [Test]
    public void Udp_flows_reach_both_servers_and_every_flow_sticks_to_one()
    {
        Lab.WriteRules(StandardRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        UdrDaemon udr = Lab.StartUdr(backend);

        // 64 flows (source ports) x 4 datagrams, each round in a new random order: without per-flow stickiness rr
        // would hand a flow to whichever server is next, so about half of the flows would see both names.
        JsonElement udp = Lab.RunClient(ClientPatience, "udp", "64", "4");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();

        int[] ports = [.. udp.GetProperty("ports").EnumerateArray().Select(p => p.GetInt32())];
        string[][] replies = [.. udp.GetProperty("replies").EnumerateArray().Select(f => f.EnumerateArray().Select(r => r.GetString()!).ToArray())];
        Assert.That(ports.Distinct().Count(), Is.EqualTo(64), "64 distinct client source ports");
        Assert.That(udp.GetProperty("bad").GetArrayLength(), Is.Zero, $"unexpected replies: {udp.GetProperty("bad")}");
        Assert.Multiple(() =>
        {
            for (int flow = 0; flow < replies.Length; flow++)
            {
                Assert.That(replies[flow], Has.Length.EqualTo(4), $"flow {flow} (port {ports[flow]}): every datagram answered");
                Assert.That(replies[flow].Distinct().ToArray(), Has.Length.EqualTo(1), $"flow {flow} (port {ports[flow]}) sticks to one server: {string.Join(",", replies[flow])}");
            }
            string[] serverOfFlow = [.. replies.Where(r => r.Length > 0).Select(r => r[0])];
            // rr over two servers: the 64 first datagrams alternate, whatever worker each lands on.
            Assert.That(serverOfFlow.Count(s => s == "rs1"), Is.InRange(28, 36), "rr spreads flows evenly: rs1");
            Assert.That(serverOfFlow.Count(s => s == "rs2"), Is.InRange(28, 36), "rr spreads flows evenly: rs2");

            Assert.That(clientCapture.DroppedByKernel, Is.Zero);
            CapturedPacket[] answers = [.. atClient.Where(p => p.IsUdp && p.Source == LabNetwork.Vip && p.SourcePort == 5353)];
            Assert.That(answers, Has.Length.EqualTo(256), "256 answers in the capture");
            Assert.That(answers.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty, "UDP answers come straight from the real servers");
            AssertKernelQuiet(atClient);
            AssertCleanExit(exit, minimumForwarded: 256);
        });
    }

    [Test]
    public void The_balancer_kernel_answers_service_traffic_without_isolation_and_stays_quiet_with_it()
    {
        // (With AF_XDP it stays quiet even without isolation: the frames never reach it.)
        Lab.WriteRules(StandardRules);

        // Without the nftables guard the balancer's own stack sees SYNs and datagrams for the VIP, which it owns with
        // no listener: it answers RST and port-unreachable. The capture must catch exactly that, or the quiet
        // assertions everywhere else would prove nothing.
        IReadOnlyList<CapturedPacket> unguarded;
        using (LabCapture capture = Lab.StartCapture(LabHost.Client, "not arp"))
        {
            using UdrDaemon udr = Lab.StartUdr(backend, "--no-kernel-isolation");
            Assert.That(Lab.BalancerRuleset(), Does.Not.Contain("udr_"), "--no-kernel-isolation installs no table");
            Lab.RunClient(ClientPatience, "probe");
            AssertCleanExit(udr.Stop(), minimumForwarded: 1);
            unguarded = capture.Stop();
        }
        if (backend == "xdp")
        {
            // udr's XDP program takes the service's frames before the kernel's stack: quiet with no guard at all.
            AssertKernelQuiet(unguarded);
            return;
        }
        CapturedPacket[] fromBalancer = [.. AnswersFromBalancer(unguarded)];
        Assert.That(fromBalancer.Where(p => p.IsTcp && p.Rst && p.Source == LabNetwork.Vip && p.SourcePort == 80), Is.Not.Empty,
            "without isolation the balancer kernel resets a SYN to VIP:80, and the capture shows it");
        Assert.That(fromBalancer.Where(p => p.IsIcmp && p.Source == LabNetwork.Vip), Is.Not.Empty,
            "without isolation the balancer kernel answers a datagram to VIP:5353 with ICMP, and the capture shows it");

        // With the guard (the default) the same probes are answered by the real servers and by nothing else.
        IReadOnlyList<CapturedPacket> guarded;
        JsonElement probe;
        using (LabCapture capture = Lab.StartCapture(LabHost.Client, "not arp"))
        {
            using UdrDaemon udr = Lab.StartUdr(backend);
            Assert.That(Lab.BalancerRuleset(), Does.Contain("table netdev udr_eth0"));
            probe = Lab.RunClient(ClientPatience, "probe");
            AssertCleanExit(udr.Stop(), minimumForwarded: 1);
            guarded = capture.Stop();
        }
        Assert.That(probe.GetProperty("tcp").GetString(), Is.AnyOf("rs1", "rs2"), "the TCP probe is served by a real server");
        Assert.That(probe.GetProperty("udp").GetString(), Is.AnyOf("rs1", "rs2"), "the UDP probe is answered by a real server");
        Assert.That(guarded.Count(p => p.IsTcp && p.Syn && p.Ack && p.Source == LabNetwork.Vip), Is.GreaterThanOrEqualTo(1), "the capture saw the TCP probe's SYN-ACK");
        AssertKernelQuiet(guarded);
    }

    [Test]
    public void Sighup_reload_keeps_a_download_running_and_new_connections_and_services_follow_the_new_rules()
    {
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s wrr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3

            """);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        UdrDaemon udr = Lab.StartUdr(backend);
        AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, rs1Share: 1.0);

        // A download on rs1 (the only server), held after its first MiB with a small receive window: most of it
        // has to cross after the reload, its ACKs through the reloaded balancer.
        NamespacedProcess downloader = Lab.StartClient("download", "/big.bin", (1024 * 1024).ToString(CultureInfo.InvariantCulture));
        string? paused = downloader.WaitForLine(l => l.StartsWith("paused ", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        Assert.That(paused, Is.Not.Null, $"the download did not get going: {downloader.Output}");
        Lab.Step($"download {paused}");

        // Change rs1's weight and add rs2 (1:3 from now on), and add a UDP service: its traffic must be balanced,
        // and kept from the balancer's kernel (a port-unreachable from it would show in the capture), at once.
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s wrr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 3
            -A -u 198.18.0.100:5353 -s rr
            -a -u 198.18.0.100:5353 -r 198.18.0.11:5353 -g -w 1
            -a -u 198.18.0.100:5353 -r 198.18.0.12:5353 -g -w 1

            """);
        long reloadedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        string answer = udr.Reload();
        Lab.Step(answer);
        Assert.That(answer, Does.Contain("rules applied"));
        Assert.That(Lab.BalancerRuleset(), Does.Contain("udp dport 5353 drop"), "the new service is kept from the balancer's kernel");
        JsonElement afterReload = Lab.RunClient(ClientPatience, "split", "200", "8", "60");
        JsonElement probe = Lab.RunClient(ClientPatience, "probe");

        // A file that does not parse is refused and the running rules stay in force.
        Lab.WriteRules("-A -t 198.18.0.100:80 -s nosuchscheduler\n");
        answer = udr.Reload();
        Lab.Step(answer);
        Assert.That(answer, Does.Contain("reload refused"));
        JsonElement afterRefusal = Lab.RunClient(ClientPatience, "split", "40", "4", "30");

        downloader.WriteLine("go");
        Assert.That(downloader.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, $"the download did not finish: {downloader.Output}");
        string downloadResult = downloader.Output.Split('\n').Last(l => l.StartsWith('{'));
        Lab.Step($"download finished: {downloadResult}");
        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();

        using JsonDocument result = JsonDocument.Parse(downloadResult);
        JsonElement download = result.RootElement;
        int downloadPort = download.GetProperty("local_port").GetInt32();
        CapturedPacket[] downloadFrames = [.. atClient.Where(p => p.IsTcp && (p.SourcePort == downloadPort || p.DestinationPort == downloadPort))];
        Assert.Multiple(() =>
        {
            Assert.That(downloader.ExitCode, Is.Zero, downloader.Output);
            Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), "the download completed");
            Assert.That(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!), Is.EqualTo("rs1"), "intact, and still from rs1");
            // The download really spanned the reload: most of its bytes, and the ACKs that drew them through the
            // balancer, crossed after it.
            Assert.That(downloadFrames.Where(p => p.TimestampMicroseconds > reloadedAt && p.SourceMac == Lab.Rs1Mac).Sum(p => (long)p.TransportPayloadLength),
                Is.GreaterThan(EndToEndLab.BigFileLength / 2), "bytes of the download that arrived after the reload");
            Assert.That(downloadFrames.Count(p => p.TimestampMicroseconds > reloadedAt && p.SourceMac == Lab.ClientMac && p.DestinationMac == Lab.LbMac),
                Is.GreaterThan(10), "the download's ACKs went on through the balancer after the reload");
            AssertSplit(afterReload, 200, rs1Share: 0.25);
            Assert.That(probe.GetProperty("udp").GetString(), Is.AnyOf("rs1", "rs2"), "the UDP service added by the reload is served");
            AssertSplit(afterRefusal, 40, rs1Share: 0.25, tolerance: 0.1);
            Assert.That(clientCapture.DroppedByKernel, Is.Zero);
            AssertKernelQuiet(atClient);
            AssertCleanExit(exit, minimumForwarded: 260 * 3);
        });
    }

    [Test]
    public void Sigterm_exits_0_with_totals_and_removes_the_nftables_table()
    {
        Lab.WriteRules(StandardRules);
        UdrDaemon udr = Lab.StartUdr(backend);
        string running = Lab.BalancerRuleset();
        Assert.That(running, Does.Contain("table netdev udr_eth0"), "the guard is installed while udr runs");
        Assert.That(running, Does.Contain("tcp dport 80 drop").And.Contain("udp dport 5353 drop"));

        AssertSplit(Lab.RunClient(ClientPatience, "split", "20", "4", "30"), 20, rs1Share: 0.75, tolerance: 0.1);
        UdrExit exit = udr.Stop();

        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        Assert.That(exit.TotalsLine, Is.Not.Null, $"no 'stopped; totals:' line:\n{exit.Output}");
        Assert.That(exit.Count("forwarded"), Is.GreaterThanOrEqualTo(20 * 3), exit.TotalsLine);
        Assert.That(exit.Count("neighbor-unresolved"), Is.Zero, exit.TotalsLine);
        Assert.That(exit.Count("transmit-errors"), Is.Zero, exit.TotalsLine);
        Assert.That(Lab.BalancerRuleset(), Does.Not.Contain("udr_"), "the nftables table is gone after exit");
    }

    [Test]
    public void Cpus_pins_each_worker_thread_to_its_own_cpu_leaves_every_other_thread_free_and_traffic_flows()
    {
        Lab.WriteRules(StandardRules);
        // udr in the balancer's namespace may run where this test may: its CPUs, the afpacket workers given them in
        // reverse (so that worker i's CPU is not simply i), one CPU for the single-worker backends.
        IReadOnlyList<int> allowed = CpuAffinity.Allowed();
        int[] cpus = backend == "afpacket" ? [.. allowed.Take(2).Reverse()] : [allowed[^1]];
        CommandResult refused = RunUdrOnBalancer("--backend", backend, "--cpus", $"{CpuAffinity.MaxCpus - 1}");
        Assert.That((refused.ExitCode, refused.Error.Trim()),
            Is.EqualTo((2, $"udr: --cpus {CpuAffinity.MaxCpus - 1}: CPU {CpuAffinity.MaxCpus - 1} is not one udr may run on (allowed: {CpuAffinity.FormatList(allowed)})")),
            refused.Output);
        Assert.That(Lab.BalancerRuleset(), Does.Not.Contain("udr_"), "a refused start installs nothing");
        UdrDaemon udr = Lab.StartUdr(backend, "--workers", cpus.Length.ToString(CultureInfo.InvariantCulture), "--cpus", CpuList(cpus));

        AssertSplit(Lab.RunClient(ClientPatience, "split", "40", "4", "30"), 40, rs1Share: 0.75, tolerance: 0.15);
        Dictionary<string, string> threads = ThreadAffinities(udr.ProcessId); // after traffic: every worker has begun
        UdrExit exit = udr.Stop();

        string[] workers = backend switch
        {
            "afpacket" => [.. Enumerable.Range(0, cpus.Length).Select(i => $"udr-worker-{i}")],
            "xdp" => ["udr-xdp-worker"],
            _ => ["udr-pcap-0"],
        };
        Assert.Multiple(() =>
        {
            for (int i = 0; i < workers.Length; i++)
            {
                int cpu = cpus[backend == "afpacket" ? i : 0];
                Assert.That(threads.GetValueOrDefault(workers[i]), Is.EqualTo(cpu.ToString(CultureInfo.InvariantCulture)), $"{workers[i]}'s CPUs: {Describe(threads)}");
                Assert.That(exit.Output, Does.Contain($"{workers[i]} runs on CPU {cpu}"));
            }
            string all = CpuAffinity.FormatList(allowed);
            Assert.That(threads.Where(t => !workers.Contains(t.Key) && t.Value != all), Is.Empty,
                $"every other thread (main, ARP, control, the runtime's) may run on {all}: {Describe(threads)}");
            AssertCleanExit(exit, minimumForwarded: 40 * 3);
        });
    }

    [Test]
    public void Busy_polling_takes_frames_without_a_wake_up_and_an_idle_worker_stops_spinning()
    {
        Lab.WriteRules(StandardRules);
        if (backend == "pcap")
        {
            CommandResult refused = RunUdrOnBalancer("--backend", "pcap", "--busy-poll-usecs", "50");
            Assert.That((refused.ExitCode, refused.Error.Trim()),
                Is.EqualTo((2, "udr: --busy-poll-usecs needs --backend afpacket or xdp: libpcap's readers wait inside libpcap")), refused.Output);
            return;
        }
        UdrDaemon udr = Lab.StartUdr(backend, "--workers", "1", "--busy-poll-usecs", "1000");
        AssertSplit(Lab.RunClient(ClientPatience, "split", "40", "4", "30"), 40, rs1Share: 0.75, tolerance: 0.15);

        // Idle now: the worker spins at most 1 ms past its last frame, then sleeps in poll() as without busy polling.
        Thread.Sleep(300);
        long before = CpuTicks(udr.ProcessId);
        Thread.Sleep(1000);
        long idle = CpuTicks(udr.ProcessId) - before;
        UdrExit exit = udr.Stop();

        TestContext.Out.WriteLine($"  idle second: {idle} CPU ticks; {Regex.Match(exit.Output, "busy polling: .*")}");
        Match report = Regex.Match(exit.Output, @"(udr-worker-0|udr-xdp-worker) busy polling: (\d+) turn\(s\) took frames without a wake-up, (\d+) spun");
        Assert.Multiple(() =>
        {
            Assert.That(idle, Is.LessThanOrEqualTo(20), "an idle udr idles: CPU ticks (1/100 s) in a second without traffic; a worker that kept spinning uses 100");
            Assert.That(report.Success, Is.True, $"the worker reports its busy polling at exit:\n{exit.Output}");
            Assert.That(long.Parse(report.Groups[2].Value, CultureInfo.InvariantCulture), Is.Positive, "frames of the connections came while the worker spun");
            AssertCleanExit(exit, minimumForwarded: 40 * 3);
        });
    }

    /// <summary>`udr run` on eth0 of the balancer with the lab's rules and <paramref name="options"/>, to its end (a refused start).</summary>
    private CommandResult RunUdrOnBalancer(params string[] options) =>
        ProcessRunner.Run("ip", ["netns", "exec", Lab.Network.Namespace(LabHost.Lb), UdrBinary.Executable, "run",
            "--interface", "eth0", "--rules", Lab.RulesPath, .. options], TimeSpan.FromSeconds(30));

    /// <summary>A process's CPU time so far (user + system, all threads), in clock ticks (1/100 s).</summary>
    private static long CpuTicks(int pid)
    {
        string[] fields = File.ReadAllText($"/proc/{pid}/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture); // utime, stime: fields 14 and 15
    }

    /// <summary>Each thread of a process by name (its comm), with the CPUs it may run on (Cpus_allowed_list).</summary>
    private static Dictionary<string, string> ThreadAffinities(int pid)
    {
        var threads = new Dictionary<string, string>();
        foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
        {
            try
            {
                string name = File.ReadAllText(Path.Combine(task, "comm")).Trim();
                string cpus = File.ReadLines(Path.Combine(task, "status")).First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))["Cpus_allowed_list:".Length..].Trim();
                threads[threads.ContainsKey(name) ? $"{name} ({Path.GetFileName(task)})" : name] = cpus;
            }
            catch (IOException)
            {
                // a thread that ended meanwhile
            }
        }
        return threads;
    }

    private static string CpuList(int[] cpus) => string.Join(',', cpus);

    private static string Describe(Dictionary<string, string> threads) => string.Join("; ", threads.Select(t => $"{t.Key}: {t.Value}"));

    private IEnumerable<CapturedPacket> AnswersFromBalancer(IReadOnlyList<CapturedPacket> atClient) => EndToEndSupport.AnswersFromBalancer(Lab, atClient);

    private void AssertKernelQuiet(IReadOnlyList<CapturedPacket> atClient) => EndToEndSupport.AssertKernelQuiet(Lab, atClient);

    private static void AssertSplit(JsonElement split, int count, double rs1Share, double tolerance = 0.05) =>
        EndToEndSupport.AssertSplit(split, count, new Dictionary<string, double> { ["rs1"] = rs1Share, ["rs2"] = 1 - rs1Share }, tolerance);

    private void AssertCleanExit(UdrExit exit, long minimumForwarded) => EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded);
}
