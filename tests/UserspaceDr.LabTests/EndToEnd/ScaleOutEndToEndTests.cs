using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
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
public sealed partial class ScaleOutEndToEndTests : EndToEndFixture
{
    private const int ChatPort = 7000;
    private const int Connections = 20;
    private const string HoldTable = "udr_test_hold";

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
        Thread.Sleep(TimeSpan.FromSeconds(2));
        UdrExit strictExit = strict.Stop();
        Assert.That(strictExit.Count("tcp-not-syn"), Is.Positive, "mid-flow packets without an entry are dropped: " + strictExit.TotalsLine);
        Assert.That(strictExit.Count("forwarded"), Is.Zero, strictExit.TotalsLine);

        // Another fresh process, with sloppy_tcp: the same packets are scheduled, by the hash, to the same servers.
        UdrDaemon sloppy = Lab.StartUdr("afpacket", "--sloppy-tcp");
        Thread.Sleep(TimeSpan.FromSeconds(6)); // retransmissions back off to about 1.6 s during the outage
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

        string[] digests = [.. new[] { firstExit.Output, strictExit.Output, sloppyExit.Output }.Select(Digest)];
        Lab.Step("lookup-table digests: " + string.Join(", ", digests));
        Assert.That(digests, Has.All.Matches<string>(d => d.Length == 16), "each process logs the digest at start");
        Assert.That(digests.Distinct().Count(), Is.EqualTo(1), "three processes with the same rules, one digest");
    }

    private static string Digest(string log) =>
        DigestLine().Match(log) is { Success: true } match ? match.Groups[1].Value : "(none logged)";

    [GeneratedRegex(@"TCP\s+198\.18\.0\.100:7000 mh lookup table digest ([0-9a-f]{16})")]
    private static partial Regex DigestLine();
}
