using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// udr as the backup of an IPVS sync master: `udr adm --start-daemon backup` on the balancer, and a master on the
/// client segment (tools/lab/sync_sender.py, an encoder written from the kernel's structs, apart from udr's) sending
/// version 1 messages to 224.0.0.81:8848. The synced connections appear in the balancer's table bound to their real
/// servers, with the state and timeout sent and the servers' active/inactive counts, and malformed messages are
/// counted and ignored.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class SyncBackupEndToEndTests : EndToEndFixture
{
    private string ControlPath => Path.Combine(Lab.Directory, "udr.sock");

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    internal override void Prepare(EndToEndLab lab)
    {
    }

    private string Adm(params string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(UdrBinary.Executable, ["adm", "--control", ControlPath, .. arguments], TimeSpan.FromSeconds(30));
        Lab.Step($"udr adm {string.Join(' ', arguments)} ({result.ExitCode}):\n{(result.Output + result.Error).TrimEnd()}");
        return result.ExitCode == 0 ? result.Output : $"exit {result.ExitCode}: {result.Error}";
    }

    private void SendFromClient(params string[] arguments) =>
        Lab.Network.Exec(LabHost.Client, $"{Lab.Python} {Path.Combine(Lab.Directory, LabScripts.SyncSenderFile)} {LabNetwork.ClientAddress} {string.Join(' ', arguments)}",
            TimeSpan.FromSeconds(30));

    [Test]
    public void A_backup_on_an_ipv6_group_enters_ipv6_and_ipv4_connections()
    {
        // IPv6 on the segment: link-local addresses at once (no duplicate address detection), the bridge flooding multicast.
        Lab.Network.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0");
        foreach (LabHost host in new[] { LabHost.Client, LabHost.Lb })
        {
            Lab.Network.Exec(host, "sysctl -qw net.ipv6.conf.eth0.accept_dad=0 && sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0");
        }
        try
        {
            Lab.WriteRules("""
                -A -t [2001:2::100]:80 -s rr
                -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1
                -A -t 198.18.0.100:80 -s rr
                -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1

                """);
            UdrDaemon udr = Lab.StartUdr("afpacket", "--control", ControlPath);
            Assert.That(Adm("--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "6", "--mcast-group", "ff02::81"), Is.Empty);
            Assert.That(Adm("-L", "--daemon"), Is.EqualTo("backup sync daemon (mcast=eth0, syncid=6, maxlen=1452, group=ff02::81, port=8848, ttl=1)\n"),
                "sync_maxlen less an IPv6 and a UDP header");
            Assert.That(udr.WaitForLine(l => l.Contains("backup sync daemon on eth0", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
            string connections = "";
            var patience = System.Diagnostics.Stopwatch.StartNew();
            while (patience.Elapsed < TimeSpan.FromSeconds(10) && !connections.Contains("40062", StringComparison.Ordinal))
            {
                // Sent again until it arrives: the group membership may take a moment to reach the bridge.
                Lab.Network.Exec(LabHost.Client, $"{Lab.Python} {Path.Combine(Lab.Directory, LabScripts.SyncSenderFile)} ff02::81%eth0 6 " +
                    "6,2001:2::1,40061,2001:2::100,80,2001:2::11,80,1,3,900 6,198.18.0.1,40062,198.18.0.100,80,198.18.0.11,80,1,3,900",
                    TimeSpan.FromSeconds(30));
                Thread.Sleep(300);
                connections = Adm("-L", "-c", "-n");
            }
            Assert.That(connections, Does.Match(@"TCP 1[45]:\d\d\s+ESTABLISHED \[2001:2::1\]:40061\s+\[2001:2::100\]:80\s+\[2001:2::11\]:80"), connections);
            Assert.That(connections, Does.Match(@"TCP 1[45]:\d\d\s+ESTABLISHED 198\.18\.0\.1:40062\s+198\.18\.0\.100:80\s+198\.18\.0\.11:80"), connections);
            Assert.That(Adm("--stop-daemon", "backup"), Is.Empty);
            Assert.That(udr.Stop().ExitCode, Is.Zero);
        }
        finally
        {
            foreach (LabHost host in new[] { LabHost.Client, LabHost.Lb })
            {
                Lab.Network.Exec(host, "sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1");
            }
        }
    }

    [Test]
    public void A_backup_enters_the_connections_a_master_syncs_and_counts_what_it_refuses()
    {
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s wlc
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr("afpacket", "--control", ControlPath);
        Assert.That(Adm("--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9"), Is.Empty);
        Assert.That(Adm("-L", "--daemon"), Is.EqualTo("backup sync daemon (mcast=eth0, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"));
        Assert.That(udr.WaitForLine(l => l.Contains("backup sync daemon on eth0", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);

        // Three connections: two established on rs1, one in FIN_WAIT (inactive) on rs2; and one for a service the
        // backup does not have.
        SendFromClient("9",
            "6,198.18.0.1,40001,198.18.0.100,80,198.18.0.11,80,1,3,900",
            "6,198.18.0.1,40002,198.18.0.100,80,198.18.0.11,80,1,3,800",
            "6,198.18.0.1,40003,198.18.0.100,80,198.18.0.12,80,4,259,100",
            "6,198.18.0.1,40004,198.18.0.100,8080,198.18.0.12,8080,1,3,900");
        string connections = "";
        var patience = System.Diagnostics.Stopwatch.StartNew();
        while (patience.Elapsed < TimeSpan.FromSeconds(10) && !connections.Contains("40003", StringComparison.Ordinal))
        {
            Thread.Sleep(200);
            connections = Adm("-L", "-c", "-n");
        }
        Assert.That(connections, Does.Match(@"TCP 1[45]:\d\d\s+ESTABLISHED 198\.18\.0\.1:40001\s+198\.18\.0\.100:80\s+198\.18\.0\.11:80"));
        Assert.That(connections, Does.Match(@"TCP 1[34]:\d\d\s+ESTABLISHED 198\.18\.0\.1:40002\s+198\.18\.0\.100:80\s+198\.18\.0\.11:80"));
        Assert.That(connections, Does.Match(@"TCP 01:[34]\d\s+FIN_WAIT\s+198\.18\.0\.1:40003\s+198\.18\.0\.100:80\s+198\.18\.0\.12:80"));
        Assert.That(connections, Does.Not.Contain("40004"), "no such service here");
        string listing = Adm("-L", "-n");
        Assert.That(listing, Does.Match(@"198\.18\.0\.11:80\s+Route\s+1\s+2\s+0"), "rs1: two active");
        Assert.That(listing, Does.Match(@"198\.18\.0\.12:80\s+Route\s+1\s+0\s+1"), "rs2: one inactive");

        // Malformed and foreign messages: counted, ignored, nothing changes.
        SendFromClient("9", "--hostile");
        Thread.Sleep(500);
        // Only the message whose count promises two entries but holds one has a readable entry: as the kernel does,
        // that entry is taken and the missing rest is counted as truncated.
        Assert.That(Adm("-L", "-c", "-n").Split('\n').Count(l => l.Contains(":41000", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(Adm("--stop-daemon", "backup"), Is.Empty);
        string? stopped = udr.WaitForLine(l => l.Contains("backup sync daemon stopped", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.That(stopped, Is.Not.Null, udr.Output);
        Assert.That(stopped, Does.Contain("Read=2").And.Contain("NotVersion1=2").And.Contain("OtherSyncId=1").And.Contain("SizeMismatch=1")
            .And.Contain("TooShort=1").And.Contain("truncated=1"));
        Assert.That(Adm("-L", "--daemon"), Is.Empty);
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    [Test]
    public void Keepalived_s_lvs_sync_daemon_starts_the_backup_with_the_instance_s_router_id_as_syncid()
    {
        string config = Path.Combine(Lab.Directory, "keepalived.conf");
        File.WriteAllText(config, """
            global_defs {
                lvs_sync_daemon eth0 VI_1
            }
            vrrp_instance VI_1 {
                state BACKUP
                interface eth0
                virtual_router_id 51
                priority 100
                virtual_ipaddress {
                    198.18.0.100/24 dev eth0
                }
            }
            virtual_server 198.18.0.100 80 {
                lb_algo rr
                lb_kind DR
                real_server 198.18.0.11 80 {
                }
            }
            """);
        UdrDaemon udr = Lab.StartUdrWithConfig("afpacket", config, "--control", ControlPath);
        Assert.That(udr.WaitForLine(l => l.Contains("backup sync daemon on eth0 (syncid 51", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(udr.Output, Does.Contain("the sync role cannot follow VRRP instance VI_1 without vrrp_notify_fifo in global_defs; running the backup daemon only"));
        Assert.That(Adm("-L", "--daemon"), Is.EqualTo("backup sync daemon (mcast=eth0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"));
        SendFromClient("51", "6,198.18.0.1,40001,198.18.0.100,80,198.18.0.11,80,1,3,900");
        string connections = "";
        var patience = System.Diagnostics.Stopwatch.StartNew();
        while (patience.Elapsed < TimeSpan.FromSeconds(10) && !connections.Contains("40001", StringComparison.Ordinal))
        {
            Thread.Sleep(200);
            connections = Adm("-L", "-c", "-n");
        }
        Assert.That(connections, Does.Match(@"ESTABLISHED 198\.18\.0\.1:40001\s+198\.18\.0\.100:80\s+198\.18\.0\.11:80"));
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>
    /// A SIGHUP re-applies keepalived.conf's HA half as keepalived does: a changed lvs_sync_daemon restarts the daemon
    /// (in the role keepalived last reported), a moved vrrp_notify_fifo is read from its new path, a removed daemon stops.
    /// </summary>
    [Test]
    public void A_sighup_applies_a_changed_lvs_sync_daemon_and_notify_fifo()
    {
        string config = Path.Combine(Lab.Directory, "keepalived.conf");
        string Config(string syncDaemon, string fifo) => $$"""
            global_defs {
                vrrp_notify_fifo {{Path.Combine(Lab.Directory, fifo)}}
                {{syncDaemon}}
            }
            vrrp_instance VI_1 {
                interface eth0
                virtual_router_id 51
            }
            virtual_server 198.18.0.100 80 {
                lb_algo rr
                lb_kind DR
                real_server 198.18.0.11 80 {
                }
            }
            """;
        void Announce(string fifo, string line) =>
            Assert.That(ProcessRunner.Run("sh", ["-c", $"echo '{line}' > {Path.Combine(Lab.Directory, fifo)}"], TimeSpan.FromSeconds(10)).ExitCode, Is.Zero);

        File.WriteAllText(config, Config("lvs_sync_daemon eth0 VI_1", "one.fifo"));
        UdrDaemon udr = Lab.StartUdrWithConfig("afpacket", config, "--control", ControlPath);
        Assert.That(udr.WaitForLine(l => l.Contains("reading keepalived's notify FIFO", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Announce("one.fifo", "INSTANCE \"VI_1\" MASTER 100");
        Assert.That(WaitForDaemons(l => l.StartsWith("master sync daemon (mcast=eth0, syncid=51,", StringComparison.Ordinal)), Is.True, "MASTER by the first FIFO");

        // A new syncid: the daemon restarts with it, still as master (keepalived does not repeat its state).
        File.WriteAllText(config, Config("lvs_sync_daemon eth0 VI_1 id 77", "one.fifo"));
        Assert.That(udr.Reload(), Does.Contain("rules applied"));
        Assert.That(WaitForDaemons(l => l == "master sync daemon (mcast=eth0, syncid=77, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"), Is.True);

        // The FIFO moves: the states come from the new one.
        File.WriteAllText(config, Config("lvs_sync_daemon eth0 VI_1 id 77", "two.fifo"));
        Assert.That(udr.Reload(), Does.Contain("rules applied"));
        Assert.That(udr.WaitForLine(l => l.Contains("two.fifo", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Announce("two.fifo", "INSTANCE \"VI_1\" BACKUP 100");
        Assert.That(WaitForDaemons(l => l.StartsWith("backup sync daemon (mcast=eth0, syncid=77,", StringComparison.Ordinal) && !l.Contains("master", StringComparison.Ordinal)), Is.True,
            "BACKUP by the second FIFO");

        // lvs_sync_daemon gone: no daemon.
        File.WriteAllText(config, Config("", "two.fifo"));
        Assert.That(udr.Reload(), Does.Contain("rules applied"));
        Assert.That(WaitForDaemons(l => l.Length == 0), Is.True, "no sync daemon without lvs_sync_daemon");
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>
    /// udr as the master: `--start-daemon master`, real HTTP connections through it, and a listener on the client
    /// segment; the messages, decoded by the tests' own decoder, carry every connection on its server in IPVS's format.
    /// </summary>
    [Test]
    public void A_master_syncs_every_connection_on_ipvs_s_wire_format()
    {
        Lab.StartWebServer(LabHost.Rs1);
        Lab.StartWebServer(LabHost.Rs2);
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s wrr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr("afpacket", "--control", ControlPath);
        NamespacedProcess listener = Lab.StartLabProgram(LabHost.Client, "listening", LabScripts.SyncListenerFile, LabNetwork.ClientAddress, "30");
        Assert.That(Adm("--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "4"), Is.Empty);
        Assert.That(Adm("-L", "--daemon"), Is.EqualTo("master sync daemon (mcast=eth0, syncid=4, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"));
        System.Text.Json.JsonElement split = Lab.RunClient(TimeSpan.FromSeconds(90), "split", "40", "4", "30");
        EndToEndSupport.AssertSplit(split, 40, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 }, tolerance: 0.1);
        Thread.Sleep(TimeSpan.FromSeconds(1.5)); // a partial message waits at most 1 s
        Assert.That(Adm("--stop-daemon", "master"), Is.Empty);
        listener.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));

        var messages = listener.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(l => l.StartsWith("198.18.", StringComparison.Ordinal))
            .Select(l => (Source: l.Split(' ')[0], Message: SyncWireDecoder.Decode(Convert.FromHexString(l.Split(' ')[1]))))
            .ToList();
        Lab.Step($"{messages.Count} sync message(s), {messages.Sum(m => m.Message.Count)} entries");
        Assert.That(messages, Is.Not.Empty);
        Assert.Multiple(() =>
        {
            Assert.That(messages.Select(m => m.Source).Distinct(), Is.EqualTo(new[] { LabNetwork.LbAddress }), "sent from the balancer's address");
            Assert.That(messages.All(m => m.Message is { Reserved: 0, SyncId: 4, Version: 1, Spare: 0 }), Is.True, "version 1 headers of syncid 4");
            DecodedSyncEntry[] entries = [.. messages.SelectMany(m => m.Message.Entries)];
            Assert.That(entries.All(e => e is { Type: 0, Protocol: 6, VirtualAddress: "198.18.0.100", VirtualPort: 80, DestinationPort: 80, ClientAddress: LabNetwork.ClientAddress }), Is.True);
            Assert.That(entries.All(e => (e.Flags & 7) == 3 && (e.Flags & 0x80) != 0), Is.True, "direct routing, input only");
            Assert.That(entries.All(e => e.State is 1 or 4 or 5 or 6 or 7), Is.True, "only the states IPVS syncs");
            Assert.That(entries.Where(e => e.State == 1).All(e => e.Timeout == 900 && (e.Flags & 0x100) == 0), Is.True, "ESTABLISHED: active, 900 s");
            // Every connection of the split was synced, on the server that served it.
            var synced = entries.Select(e => (e.ClientPort, e.DestinationAddress)).Distinct().ToList();
            Assert.That(synced.Select(c => c.ClientPort).Distinct().Count(), Is.EqualTo(synced.Count), "one server per connection");
            System.Text.Json.JsonElement counts = split.GetProperty("counts");
            Assert.That(synced.Count(c => c.DestinationAddress == "198.18.0.11"), Is.EqualTo(counts.GetProperty("rs1").GetInt32()));
            Assert.That(synced.Count(c => c.DestinationAddress == "198.18.0.12"), Is.EqualTo(counts.GetProperty("rs2").GetInt32()));
        });
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    /// <summary>
    /// keepalived itself (VRRP only) elects; udr reads its notify FIFO and runs the master sync daemon while the instance
    /// is MASTER and the backup daemon otherwise, and with --backup-only forwards nothing while it is a backup.
    /// </summary>
    [Test]
    public void The_sync_role_follows_keepalived_s_vrrp_state_through_its_notify_fifo()
    {
        Assume.That(File.Exists("/usr/sbin/keepalived"), Is.True, "keepalived is not installed (./build.sh test installs it)");
        string config = Path.Combine(Lab.Directory, "keepalived.conf");
        string fifo = Path.Combine(Lab.Directory, "vrrp.fifo");
        File.WriteAllText(config, $$"""
            global_defs {
                vrrp_notify_fifo {{fifo}}
                # udr's only: keepalived without kernel IPVS would fail to start the kernel's sync daemon
                @udr lvs_sync_daemon eth0 VI_1
            }
            vrrp_instance VI_1 {
                state BACKUP
                interface eth0
                virtual_router_id 61
                priority 100
                advert_int 1
                virtual_ipaddress {
                    198.18.0.199/32 dev eth0
                }
            }
            virtual_server 198.18.0.100 80 {
                lb_algo rr
                lb_kind DR
                real_server 198.18.0.11 80 {
                }
            }
            """);
        Lab.StartWebServer(LabHost.Rs1);
        UdrDaemon udr = Lab.StartUdrWithConfig("afpacket", config, "--control", ControlPath, "--backup-only");
        Assert.That(udr.WaitForLine(l => l.Contains("reading keepalived's notify FIFO", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(Adm("-L", "--daemon"), Does.StartWith("backup sync daemon (mcast=eth0, syncid=61,"), "before keepalived says anything: backup");
        // backup_only: a backup forwards nothing (its one connection attempt times out).
        Assert.That(udr.WaitForLine(l => l.Contains("data plane: standby (backup_only)", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(Lab.RunClient(TimeSpan.FromSeconds(60), "split", "1", "1", "10").GetProperty("errors").GetInt32(), Is.EqualTo(1));

        NamespacedProcess keepalived = Lab.StartKeepalived(LabHost.Lb, config, "lb");
        // Alone on the segment it becomes MASTER after its master-down timer (3 × advert_int + skew).
        Assert.That(udr.WaitForLine(l => l.Contains("VRRP instance VI_1 is MASTER", StringComparison.Ordinal), TimeSpan.FromSeconds(15)), Is.Not.Null,
            $"udr:\n{udr.Output}\nkeepalived:\n{keepalived.Output}");
        Assert.That(WaitForDaemons(l => l.StartsWith("master sync daemon (mcast=eth0, syncid=61,", StringComparison.Ordinal) && !l.Contains("backup", StringComparison.Ordinal)),
            Is.True, "MASTER: the master daemon alone");
        Assert.That(udr.WaitForLine(l => l.Contains("data plane: serving", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        EndToEndSupport.AssertSplit(Lab.RunClient(TimeSpan.FromSeconds(60), "split", "4", "2", "30"), 4, new Dictionary<string, double> { ["rs1"] = 1.0 });

        keepalived.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(10));
        Assert.That(udr.WaitForLine(l => l.Contains("VRRP instance VI_1 is STOP", StringComparison.Ordinal), TimeSpan.FromSeconds(10)), Is.Not.Null, udr.Output);
        Assert.That(WaitForDaemons(l => l.StartsWith("backup sync daemon", StringComparison.Ordinal) && !l.Contains("master", StringComparison.Ordinal)),
            Is.True, "no longer MASTER: the backup daemon alone");
        Assert.That(udr.WaitForLine(l => l.Contains("data plane: standby (backup_only)", StringComparison.Ordinal), TimeSpan.FromSeconds(10), skip: 1), Is.Not.Null, udr.Output);
        Assert.That(udr.Stop().ExitCode, Is.Zero);
    }

    private bool WaitForDaemons(Func<string, bool> wanted)
    {
        var patience = System.Diagnostics.Stopwatch.StartNew();
        while (patience.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (wanted(Adm("-L", "--daemon")))
            {
                return true;
            }
            Thread.Sleep(200);
        }
        return false;
    }
}
