using System.Text.Json;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// IPv6 direct routing with `udr run`, in a lab of its own whose public segment also speaks IPv6 (2001:2::/64; the
/// shared lab keeps IPv6 off so that other tests can count frames exactly): udr announces the VIP and answers the
/// client's solicitation for it, finds the servers through its own solicitations, and the servers (the VIP on lo, which
/// Linux never advertises on eth0) answer the client straight. The same balancer serves an IPv4 VIP at once.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class Ipv6EndToEndTests(string backend) : EndToEndFixture
{
    private const string Vip = "2001:2::100";
    private const string Client = "2001:2::1";

    private const string Rules = """
        -A -t [2001:2::100]:80 -s wrr
        -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 3
        -a -t [2001:2::100]:80 -r [2001:2::12]:80 -g -w 1
        -A -u [2001:2::100]:5353 -s rr
        -a -u [2001:2::100]:5353 -r [2001:2::11]:5353 -g -w 1
        -a -u [2001:2::100]:5353 -r [2001:2::12]:5353 -g -w 1
        -A -t 198.18.0.100:80 -s rr
        -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
        -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

        """;

    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new(python);

    /// <summary>IPv6 on the public segment's hosts (without duplicate address detection, so addresses work at once).</summary>
    internal override void Prepare(EndToEndLab lab)
    {
        lab.StartServers(); // the IPv4 VIP's
        // Snooping would forward a solicited-node group only to ports that reported it; a plain segment floods.
        lab.Network.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0");
        foreach ((LabHost host, string address) in new[] { (LabHost.Client, Client), (LabHost.Lb, "2001:2::2"), (LabHost.Rs1, "2001:2::11"), (LabHost.Rs2, "2001:2::12") })
        {
            lab.Network.Exec(host, $"sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 && ip -6 addr add {address}/64 dev eth0 nodad");
        }
        foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            lab.Network.Exec(server, $"ip -6 addr add {Vip}/128 dev lo");
        }
    }

    [Test]
    public void Tcp_and_udp_to_an_ipv6_vip_are_balanced_by_direct_routing_beside_an_ipv4_vip_and_come_back_straight_from_the_servers()
    {
        foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            Lab.StartWebServer(server, Vip);
            Lab.StartLabProgram(server, "echo listening", LabScripts.UdpEchoFile, LabNetwork.HostName(server), Vip);
        }
        Lab.WriteRules(Rules);
        // The client solicits the VIP afresh (another test may have left it in its neighbour cache).
        Lab.Network.Exec(LabHost.Client, "ip -6 neigh flush dev eth0");
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "ip6 and (tcp port 80 or udp port 5353 or (ip6[6] == 58 and ip6[40] == 136))");
        // The balancer's kernel does not hold the IPv6 VIP: udr answers the client's solicitation for it.
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp", "--control", Lab.ControlPath);

        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "200", "4", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "download", "/big.bin");
        JsonElement udp = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "udp", "32", "4");
        JsonElement ipv4Split = Lab.RunClient(ClientPatience, "split", "40", "4", "30");
        string neighbours = Lab.Network.Exec(LabHost.Client, $"ip -6 neigh show {Vip}");
        // A live edit over the control socket, in ipvsadm's IPv6 syntax, then the listing as ipvsadm prints it.
        Lab.Adm("-e", "-t", $"[{Vip}]:80", "-r", "[2001:2::12]:80", "-g", "-w", "2");
        string listing = Lab.Adm("-L", "-n");
        string connections = Lab.Adm("-L", "-c", "-n");
        Lab.Step($"udr adm -L -n:\n{listing}");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();

        EndToEndSupport.AssertSplit(split, 200, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 });
        EndToEndSupport.AssertSplit(ipv4Split, 40, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength));
        Assert.That(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!), Is.Not.Null, "the download is one server's big.bin, intact");
        string[][] replies = [.. udp.GetProperty("replies").EnumerateArray().Select(f => f.EnumerateArray().Select(r => r.GetString()!).ToArray())];
        Assert.That(udp.GetProperty("bad").GetArrayLength(), Is.Zero, $"unexpected replies: {udp.GetProperty("bad")}");
        CapturedPacket[] requests = [.. atClient.Where(p => p.Destination == Vip && (p.IsTcp || p.IsUdp))];
        CapturedPacket[] announcements = [.. atClient.Where(p => p.Destination == "ff02::1" && p.Source == Vip)];
        CapturedPacket[] answers = [.. atClient.Where(p => p.Source == Vip && (p.IsTcp || p.IsUdp))];
        Assert.Multiple(() =>
        {
            Assert.That(replies.All(r => r.Length == 4 && r.Distinct().Count() == 1), Is.True, "every UDP flow answered 4 times by one server");
            Assert.That(replies.Select(r => r[0]).Distinct().Order(), Is.EqualTo(new[] { "rs1", "rs2" }), "rr spreads flows over both servers");

            Assert.That(neighbours, Does.Contain(Lab.LbMac.ToString()), "the client reaches the VIP at the balancer's MAC (udr's advertisement)");
            Assert.That(announcements, Is.Not.Empty, "udr announced the VIP to all nodes when it started");
            Assert.That(announcements.Where(p => p.SourceMac != Lab.LbMac), Is.Empty, "from the balancer's MAC");
            Assert.That(clientCapture.DroppedByKernel, Is.Zero);
            Assert.That(requests.Count(p => p.IsTcp && p.Syn), Is.GreaterThanOrEqualTo(201));
            Assert.That(requests.Where(p => p.DestinationMac != Lab.LbMac), Is.Empty, "the client sends to the balancer");
            Assert.That(answers.Count(p => p.IsTcp && p.Syn && p.Ack), Is.GreaterThanOrEqualTo(201));
            Assert.That(answers.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty,
                "every answer from the VIP comes straight from a real server's MAC");
            Assert.That(EndToEndSupport.ConnectionResets(atClient).Where(p => p.Source == Vip), Is.Empty, "no connection was reset");

            Assert.That(listing, Does.Contain("TCP  [2001:2::100]:80 wrr\n  -> [2001:2::11]:80              Route   3"), listing);
            Assert.That(listing, Does.Contain("  -> [2001:2::12]:80              Route   2"), listing);
            Assert.That(connections, Does.Contain($"[{Client}]:").And.Contain($"[{Vip}]:80").And.Contain("[2001:2::11]:80"), connections);

            Assert.That(exit.Count("neighbor-advertisement"), Is.Positive, exit.TotalsLine);
            Assert.That(exit.Count("neighbor-unresolved"), Is.Zero, exit.TotalsLine);
        });
        // Every frame the client sent to the VIP was forwarded (the capture is complete: nothing dropped above).
        EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: requests.Length);
    }

    [Test]
    public void A_keepalived_ipv6_virtual_server_checks_its_servers_over_ipv6_and_takes_a_dead_one_out()
    {
        foreach ((LabHost server, string address) in new[] { (LabHost.Rs1, "2001:2::11"), (LabHost.Rs2, "2001:2::12") })
        {
            Lab.StartWebServer(server, Vip);
        }
        Lab.StartWebServer(LabHost.Rs1, "2001:2::11");
        NamespacedProcess rs2Check = Lab.StartWebServer(LabHost.Rs2, "2001:2::12"); // what the balancer's checks reach
        string config = Path.Combine(Lab.Directory, "keepalived6.conf");
        File.WriteAllText(config, """
            virtual_server 2001:2::100 80 {
                delay_loop 1
                lb_algo rr
                lb_kind DR
                protocol TCP
                real_server 2001:2::11 80 {
                    TCP_CHECK {
                        connect_timeout 1
                    }
                }
                real_server 2001:2::12 80 {
                    HTTP_GET {
                        url {
                            path /index.html
                            status_code 200
                        }
                        connect_timeout 1
                        retry 1
                        delay_before_retry 1
                    }
                }
            }
            """);
        UdrDaemon udr = Lab.StartUdrWithConfig(backend, config, "--answer-arp", "--control", Lab.ControlPath);
        EndToEndSupport.AssertSplit(Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "20", "4", "30"), 20,
            new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });

        // rs2's own address stops answering: its HTTP_GET fails (delay_loop + connect + retry × (delay + connect), plus slack).
        rs2Check.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
        string? down = udr.WaitForLine(l => l.Contains("[2001:2::12]:80", StringComparison.Ordinal) && l.Contains("is down", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15));
        Assert.That(down, Is.Not.Null, udr.Output);
        EndToEndSupport.AssertSplit(Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "20", "4", "30"), 20,
            new Dictionary<string, double> { ["rs1"] = 1.0 });
        string listing = Lab.Adm("-L", "-n");
        Assert.That(listing, Does.Contain("[2001:2::11]:80").And.Not.Contain("[2001:2::12]:80"), listing);
        UdrExit exit = udr.Stop();
        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
    }

    [Test]
    public void A_master_syncs_ipv6_connections_as_72_byte_entries_of_type_1_to_an_ipv6_group()
    {
        foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            Lab.StartWebServer(server, Vip);
        }
        Lab.WriteRules("""
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1
            -a -t [2001:2::100]:80 -r [2001:2::12]:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp", "--control", Lab.ControlPath);
        NamespacedProcess listener = Lab.StartLabProgram(LabHost.Client, "listening", LabScripts.SyncListenerFile, LabNetwork.ClientAddress, "30", "ff02::81");
        Assert.That(Lab.Adm("--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "6", "--mcast-group", "ff02::81"), Is.Empty);
        Assert.That(Lab.Adm("-L", "--daemon"), Is.EqualTo("master sync daemon (mcast=eth0, syncid=6, maxlen=1452, group=ff02::81, port=8848, ttl=1)\n"));
        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "20", "4", "30");
        EndToEndSupport.AssertSplit(split, 20, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 });
        Thread.Sleep(TimeSpan.FromSeconds(1.5)); // a partial message waits at most 1 s
        Assert.That(Lab.Adm("--stop-daemon", "master"), Is.Empty);
        listener.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
        UdrExit exit = udr.Stop();

        DecodedSyncEntry[] entries = [.. listener.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("fe80:", StringComparison.Ordinal) || l.StartsWith("2001:2::2 ", StringComparison.Ordinal)) // from the balancer's eth0
            .SelectMany(l => SyncWireDecoder.Decode(Convert.FromHexString(l.Split(' ')[1])).Entries)];
        Lab.Step($"{entries.Length} IPv6 sync entries");
        Assert.Multiple(() =>
        {
            Assert.That(entries, Is.Not.Empty);
            Assert.That(entries.All(e => e is { Type: 1, Protocol: 6, VirtualAddress: Vip, VirtualPort: 80, ClientAddress: Client } && (e.VerSize & 0xFFF) >= 72),
                Is.True, string.Join("\n", entries));
            var synced = entries.Select(e => (e.ClientPort, e.DestinationAddress)).Distinct().ToList();
            Assert.That(synced.Count(c => c.DestinationAddress == "2001:2::11"), Is.EqualTo(split.GetProperty("counts").GetProperty("rs1").GetInt32()));
            Assert.That(synced.Count(c => c.DestinationAddress == "2001:2::12"), Is.EqualTo(split.GetProperty("counts").GetProperty("rs2").GetInt32()));
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }

    /// <summary>
    /// An IPv6 firewall-mark service (-f 5 -6) from ip6tables-save output: TCP 80 and UDP 5353 to the IPv6 VIP carry one
    /// mark, and persistence on it keeps the client on one server for both.
    /// </summary>
    [Test]
    public void An_ipv6_mark_service_keeps_the_client_on_one_server_for_tcp_and_udp()
    {
        foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            Lab.StartWebServer(server, Vip);
            Lab.StartLabProgram(server, "echo listening", LabScripts.UdpEchoFile, LabNetwork.HostName(server), Vip);
        }
        string marks = Path.Combine(Lab.Directory, "marks.ip6tables");
        File.WriteAllText(marks, $"""
            # Generated by ip6tables-save v1.8.9 (nf_tables) on Mon Dec  7 10:00:00 2026
            *mangle
            :PREROUTING ACCEPT [0:0]
            -A PREROUTING -d {Vip}/128 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x5/0xffffffff
            -A PREROUTING -d {Vip}/128 -p udp -m udp --dport 5353 -j MARK --set-xmark 0x5/0xffffffff
            COMMIT

            """);
        Lab.WriteRules("""
            -A -f 5 -6 -s rr -p 300
            -a -f 5 -6 -r [2001:2::11]:0 -g -w 1
            -a -f 5 -6 -r [2001:2::12]:0 -g -w 1

            """);
        Lab.Network.Exec(LabHost.Client, "ip -6 neigh flush dev eth0");
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp", "--fwmark-rules", marks, "--control", Lab.ControlPath);
        string listing = Lab.Adm("-L", "-n");
        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "20", "4", "60");
        JsonElement udp = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "udp", "6", "2");
        UdrExit exit = udr.Stop();
        Assert.Multiple(() =>
        {
            Assert.That(listing, Does.Contain("FWM  5 IPv6 rr persistent 300\n"), listing);
            Assert.That(split.GetProperty("errors").GetInt32(), Is.Zero, split.ToString());
            string[] tcpServers = [.. split.GetProperty("counts").EnumerateObject().Select(p => p.Name)];
            Assert.That(tcpServers, Has.Length.EqualTo(1), "one template for the client: " + split);
            string[] udpServers = [.. udp.GetProperty("replies").EnumerateArray().SelectMany(r => r.EnumerateArray()).Select(r => r.GetString()!).Distinct()];
            Assert.That(udpServers, Is.EqualTo(tcpServers), "UDP carries the same mark: " + udp);
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }

    [Test]
    public void A_path_mtu_below_the_clients_is_learnt_from_udrs_packet_too_big_and_an_upload_completes()
    {
        Lab.StartLabProgram(LabHost.Rs2, "sink listening", LabScripts.TcpSinkFile, "rs2", Vip);
        Lab.WriteRules("""
            -A -t [2001:2::100]:9000 -s rr
            -a -t [2001:2::100]:9000 -r [2001:2::12]:9000 -g -w 1

            """);
        // The way to rs2 is narrower than the client's link (a route MTU of 1280, IPv6's minimum), and the client sends
        // segments of its own MTU (no segmentation offload, so every frame is checked as it is).
        Lab.Network.Exec(LabHost.Lb, "ip -6 route add 2001:2::12/128 dev eth0 mtu 1280");
        Lab.Network.Exec(LabHost.Client, "ethtool -K eth0 tso off gso off >/dev/null");
        try
        {
            LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "ip6[6] == 58 and ip6[40] == 2");
            UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp");
            JsonElement upload = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "upload", "1048576", "9000");
            UdrExit exit = udr.Stop();
            IReadOnlyList<CapturedPacket> tooBig = clientCapture.Stop();
            Assert.Multiple(() =>
            {
                Assert.That(upload.GetProperty("received_sha256").GetString(), Is.EqualTo(upload.GetProperty("sent_sha256").GetString()),
                    "the upload arrived whole at rs2");
                Assert.That(tooBig.Where(p => p.Source == Vip && p.SourceMac == Lab.LbMac), Is.Not.Empty,
                    "Packet Too Big from the VIP, sent by the balancer, on the wire");
                Assert.That(exit.Count("icmpv6-packet-too-big"), Is.Positive, exit.TotalsLine);
                Assert.That(exit.ExitCode, Is.Zero, exit.Output);
            });
            Assert.That(Lab.Network.Exec(LabHost.Client, $"ip -6 route get {Vip}"), Does.Contain("mtu 1280"), "the client learnt the path MTU");
        }
        finally
        {
            Lab.Network.Exec(LabHost.Client, "ethtool -K eth0 tso on gso on >/dev/null 2>&1; ip -6 route flush cache; true");
            Lab.Network.Exec(LabHost.Lb, "ip -6 route del 2001:2::12/128 dev eth0 mtu 1280; true");
        }
    }
}
