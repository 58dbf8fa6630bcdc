using System.Globalization;
using System.Text.Json;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// Issue 15's groundwork, in the lab: a balancer that meets flows it has no entry for, as one behind an ECMP router does
/// when the router moves flows to it. Long-lived connections through an mh service, then udr replaced by a fresh
/// process (an empty table) while the balancer's kernel is kept off the VIP's port meanwhile (as udr's own guard keeps
/// it while it runs; a kernel that owns the VIP would reset the connections in the gap): without sloppy_tcp their
/// packets are dropped (tcp-not-syn); with
/// `--sloppy-tcp` each is scheduled by the hash to the server it was on, and every connection carries on. Both
/// processes log the same lookup-table digest for the service, as balancers with the same rules must.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class ScaleOutEndToEndTests : EndToEndFixture
{
    private const int ChatPort = 7000;
    private const int Connections = 20;
    private const string HoldTable = "udr_test_hold";
    private const string Service = "TCP 198.18.0.100:7000";

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    [Test]
    public void A_fresh_balancer_with_sloppy_tcp_sends_flows_it_never_saw_to_their_mh_servers()
    {
        foreach (LabHost server in (LabHost[])[LabHost.Rs1, LabHost.Rs2])
        {
            Lab.StartLabProgram(server, "chat listening", LabScripts.ChatServerFile, LabNetwork.HostName(server), LabNetwork.Vip, ChatPort.ToString(CultureInfo.InvariantCulture));
        }
        Lab.WriteRules("""
            -A -t 198.18.0.100:7000 -s mh -b mh-port
            -a -t 198.18.0.100:7000 -r 198.18.0.11:7000 -g -w 1
            -a -t 198.18.0.100:7000 -r 198.18.0.12:7000 -g -w 1

            """);
        UdrDaemon first = Lab.StartUdr("afpacket");
        NamespacedProcess sessions = Lab.StartClient("sessions", Connections.ToString(CultureInfo.InvariantCulture), ChatPort.ToString(CultureInfo.InvariantCulture), "90");
        Assert.That(sessions.WaitForLine(l => l.StartsWith("ready", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Is.Not.Null, sessions.Output);
        // Between the processes the kernel must not answer the flows (udr's guard goes with each process): a drop of
        // the service's frames at the netdev ingress hook, which packet sockets see before, as udr's guard does.
        Lab.Network.Exec(LabHost.Lb, $"nft add table netdev {HoldTable} && nft add chain netdev {HoldTable} ingress " +
            $"'{{ type filter hook ingress device eth0 priority -100; }}' && nft add rule netdev {HoldTable} ingress ip daddr {LabNetwork.Vip} tcp dport {ChatPort} drop");
        UdrExit firstExit = first.Stop();

        // A fresh process without sloppy_tcp: every packet of the running connections meets an empty table.
        UdrDaemon strict = Lab.StartUdr("afpacket");
        // Long enough for a retransmission of every connection whatever the start took (backing off: 0.2, 0.6, 1.4,
        // 3.0, 6.2 s after the first process stopped).
        Thread.Sleep(TimeSpan.FromSeconds(7));
        UdrExit strictExit = strict.Stop();
        Assert.That(strictExit.Count("tcp-not-syn"), Is.Positive, "mid-flow packets without an entry are dropped: " + strictExit.TotalsLine);
        Assert.That(strictExit.Count("forwarded"), Is.Zero, strictExit.TotalsLine);

        // Another fresh process, with sloppy_tcp: the same packets are scheduled, by the hash, to the same servers.
        UdrDaemon sloppy = Lab.StartUdr("afpacket", "--sloppy-tcp", "--control", Lab.ControlPath);
        // Each connection's next retransmission (up to 6.4 s apart by now) makes its entry; then a second of lines.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (ActiveConnections() < Connections && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            Thread.Sleep(200);
        }
        Lab.Step($"{ActiveConnections()} connections scheduled by the sloppy process {clock.Elapsed.TotalSeconds:F1} s after it started");
        Thread.Sleep(TimeSpan.FromSeconds(1));
        sessions.WriteLine("stop");
        Assert.That(sessions.WaitForExit(TimeSpan.FromSeconds(30)), Is.True, sessions.Output);
        UdrExit sloppyExit = sloppy.Stop();
        Lab.Network.Exec(LabHost.Lb, $"nft delete table netdev {HoldTable}");
        Lab.Step("sloppy totals: " + sloppyExit.TotalsLine);
        Assert.That(sloppyExit.Count("forwarded"), Is.Positive, sloppyExit.TotalsLine);

        using JsonDocument report = JsonDocument.Parse(sessions.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        var servers = new HashSet<string>();
        foreach (JsonElement connection in report.RootElement.GetProperty("connections").EnumerateArray())
        {
            Assert.That(connection.GetProperty("error").ValueKind, Is.EqualTo(JsonValueKind.Null), "no connection was reset: " + connection);
            Assert.That(connection.GetProperty("servers").GetArrayLength(), Is.EqualTo(1), "each stayed on its server: " + connection);
            Assert.That(connection.GetProperty("sent").GetInt32() - connection.GetProperty("answered").GetInt32(), Is.LessThanOrEqualTo(2),
                "everything sent across both restarts was answered: " + connection);
            servers.Add(connection.GetProperty("servers")[0].GetString()!);
        }
        Assert.That(servers, Has.Count.EqualTo(2), "mh with mh-port (the client port hashed too) spread one client's connections over both servers");

        string[] digests = [.. new[] { firstExit, strictExit, sloppyExit }.Select(e => e.TableDigest(Service) ?? "(none logged)")];
        Lab.Step("lookup-table digests: " + string.Join(", ", digests));
        Assert.That(digests, Has.All.Matches<string>(d => d.Length == 16), "each process logs the digest at start");
        Assert.That(digests.Distinct().Count(), Is.EqualTo(1), "three processes with the same rules, one digest");
    }

    /// <summary>
    /// `udr run --announce VIP=DEVICE` with Debian's BIRD beside it in the balancer's namespace, configured as a
    /// balancer's BIRD is (a static route for the VIP via udr's device): the route is in BIRD's table while a real server
    /// has weight above 0, leaves it within a second when none has, comes back, and leaves again within a second when
    /// udr is killed with SIGKILL, with no help from udr (the device dies with the process).
    /// </summary>
    [Test]
    public void Bird_announces_the_vip_only_while_udr_can_serve_it_and_withdraws_it_when_udr_is_killed()
    {
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s mh
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr("afpacket", "--control", Lab.ControlPath, "--announce", $"{LabNetwork.Vip}={Device}");
        string socket = Lab.StartBird(LabHost.Lb, $$"""
            router id 198.18.0.2;
            protocol device { scan time 1; }
            protocol static vip {
                ipv4;
                check link on;
                route {{LabNetwork.Vip}}/32 via "{{Device}}";
            }

            """);

        Assert.That(WaitForRoute(socket, present: true, TimeSpan.FromSeconds(10)), Is.Not.Null, "announced while both servers serve: " + Route(socket));

        Lab.Adm("-e", "-t", "198.18.0.100:80", "-r", "198.18.0.11:80", "-g", "-w", "0");
        Assert.That(Route(socket), Does.Contain($"dev {Device}"), "one server of weight 1 left: still announced");
        Lab.Adm("-e", "-t", "198.18.0.100:80", "-r", "198.18.0.12:80", "-g", "-w", "0");
        TimeSpan? withdrawn = WaitForRoute(socket, present: false, TimeSpan.FromSeconds(5));
        Lab.Step($"withdrawn {withdrawn?.TotalMilliseconds:F0} ms after the last server went to weight 0");
        Assert.That(withdrawn, Is.Not.Null.And.LessThan(TimeSpan.FromSeconds(1)), Route(socket));
        Assert.That(udr.WaitForLine(l => l.Contains($"{LabNetwork.Vip} withdrawn", StringComparison.Ordinal), TimeSpan.FromSeconds(5)), Is.Not.Null);

        Lab.Adm("-e", "-t", "198.18.0.100:80", "-r", "198.18.0.12:80", "-g", "-w", "1");
        Assert.That(WaitForRoute(socket, present: true, TimeSpan.FromSeconds(5)), Is.Not.Null.And.LessThan(TimeSpan.FromSeconds(1)), Route(socket));

        udr.Kill();
        TimeSpan? afterKill = WaitForRoute(socket, present: false, TimeSpan.FromSeconds(5));
        Lab.Step($"withdrawn {afterKill?.TotalMilliseconds:F0} ms after SIGKILL");
        Assert.That(afterKill, Is.Not.Null.And.LessThan(TimeSpan.FromSeconds(1)), Route(socket));
        Assert.That(Lab.Network.Exec(LabHost.Lb, $"ip link show {Device} 2>&1 || true"), Does.Contain("does not exist"), "the device died with udr");
    }

    private const string Device = "udrvip0";

    /// <summary>What BIRD's table holds for the VIP (birdc's answer).</summary>
    private string Route(string socket) =>
        Lab.Network.Exec(LabHost.Lb, $"birdc -s {socket} show route {LabNetwork.Vip}/32 2>&1 || true");

    /// <summary>Polls BIRD every 20 ms until the VIP's route is there (or gone); how long that took, or null.</summary>
    private TimeSpan? WaitForRoute(string socket, bool present, TimeSpan limit)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            if (Route(socket).Contains($"dev {Device}", StringComparison.Ordinal) == present)
            {
                return clock.Elapsed;
            }
            Thread.Sleep(20);
        }
        return null;
    }

    /// <summary>ActiveConn summed over the real servers (`udr adm -L -n`).</summary>
    private int ActiveConnections() =>
        Lab.Adm("-L", "-n").Split('\n').Where(l => l.Contains("->", StringComparison.Ordinal) && !l.Contains("RemoteAddress", StringComparison.Ordinal))
            .Sum(l => int.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[4], CultureInfo.InvariantCulture));
}
