using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// Issue 15 in the lab (`tools/lab.sh up PREFIX --ecmp`): three balancers behind a router, each with udr (mh with the
/// port hashed too, `--sloppy-tcp`, `--announce`) and Debian's BIRD announcing the VIP by BGP while udr can serve it;
/// the router's BIRD takes the balancers as dynamic BGP neighbours and installs one multipath route for the VIP
/// (`merge paths on`), which its kernel spreads by layer-4 hash (fib_multipath_hash_policy=1). No state is shared
/// between the balancers: a flow that the router moves to another balancer is scheduled there by the same hash.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class EcmpEndToEndTests : EndToEndFixture
{
    private const int ChatPort = 7000;
    private const int Connections = 200;
    private const string Device = "udrvip0";

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python, ecmp: true);

    /// <summary>
    /// 200 long-lived connections, a line every 100 ms each, through the VIP. One balancer's udr stopped: its route is
    /// gone from the router within a second, and at least 99% of the connections go on (those the router moved find
    /// their server by hash on the balancers left). Started again: its route is back, and the same holds.
    /// </summary>
    [Test]
    public void Three_balancers_behind_ecmp_carry_their_connections_through_one_leaving_and_coming_back()
    {
        Assume.That(File.Exists("/usr/sbin/bird"), Is.True, "bird2 is not installed (./build.sh test installs it)");
        foreach (LabHost server in (LabHost[])[LabHost.Rs1, LabHost.Rs2])
        {
            Lab.StartLabProgram(server, "chat listening", LabScripts.ChatServerFile, LabNetwork.HostName(server), LabNetwork.Vip, ChatPort.ToString(CultureInfo.InvariantCulture));
        }
        Lab.WriteRules("""
            -A -t 198.18.0.100:7000 -s mh -b mh-port
            -a -t 198.18.0.100:7000 -r 198.18.0.11:7000 -g -w 1
            -a -t 198.18.0.100:7000 -r 198.18.0.12:7000 -g -w 1

            """);
        StartBird(LabHost.Router, $$"""
            router id {{LabNetwork.RouterAddress}};
            protocol device { scan time 1; }
            protocol kernel {
                ipv4 { import none; export where source = RTS_BGP; };
                merge paths on;
            }
            protocol bgp balancers {
                local {{LabNetwork.RouterAddress}} as 64511;
                neighbor range 198.18.0.0/24 as 64512;
                dynamic name "lb";
                ipv4 { import where net = {{LabNetwork.Vip}}/32; export none; };
            }

            """);
        var udrs = new Dictionary<LabHost, UdrDaemon>();
        foreach (LabHost balancer in Lab.Balancers)
        {
            string address = Address(balancer);
            StartBird(balancer, $$"""
                router id {{address}};
                protocol device { scan time 1; }
                protocol static vip { ipv4; check link on; route {{LabNetwork.Vip}}/32 via "{{Device}}"; }
                protocol bgp upstream {
                    local {{address}} as 64512;
                    neighbor {{LabNetwork.RouterAddress}} as 64511;
                    connect retry time 1;
                    connect delay time 1;
                    ipv4 { import none; export where proto = "vip"; next hop self; };
                }

                """);
            udrs[balancer] = StartUdr(balancer);
        }
        Assert.That(WaitForNextHops(3, TimeSpan.FromSeconds(30)), Is.Not.Null, "the router learns the VIP from all three: " + RouterRoute());
        Lab.Step("router: " + RouterRoute());

        NamespacedProcess sessions = Lab.StartClient("--client", LabNetwork.EcmpClientAddress, "sessions",
            Connections.ToString(CultureInfo.InvariantCulture), ChatPort.ToString(CultureInfo.InvariantCulture), "120");
        Assert.That(sessions.WaitForLine(l => l.StartsWith("ready", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.Not.Null, sessions.Output);
        Thread.Sleep(TimeSpan.FromSeconds(2));

        UdrExit stopped = udrs[LabHost.Lb2].Stop();
        Lab.Step("lb2's udr stopped: " + stopped.TotalsLine);
        TimeSpan? withdrawn = WaitForNextHops(2, TimeSpan.FromSeconds(5));
        Lab.Step($"router: two next hops {withdrawn?.TotalMilliseconds:F0} ms after lb2's udr stopped: {RouterRoute()}");
        Assert.That(withdrawn, Is.Not.Null.And.LessThan(TimeSpan.FromSeconds(1)), RouterRoute());
        Thread.Sleep(TimeSpan.FromSeconds(5));

        udrs[LabHost.Lb2] = StartUdr(LabHost.Lb2);
        Assert.That(WaitForNextHops(3, TimeSpan.FromSeconds(10)), Is.Not.Null, "lb2 announces again: " + RouterRoute());
        Thread.Sleep(TimeSpan.FromSeconds(5));

        sessions.WriteLine("stop");
        Assert.That(sessions.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, sessions.Output);
        using JsonDocument report = JsonDocument.Parse(sessions.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        JsonElement[] connections = [.. report.RootElement.GetProperty("connections").EnumerateArray()];
        JsonElement[] broken = [.. connections.Where(c => c.GetProperty("error").ValueKind != JsonValueKind.Null ||
            c.GetProperty("servers").GetArrayLength() != 1 || c.GetProperty("sent").GetInt32() - c.GetProperty("answered").GetInt32() > 2)];
        var totals = Lab.Balancers.ToDictionary(b => b, b => udrs[b].Stop());
        foreach ((LabHost balancer, UdrExit exit) in totals)
        {
            Lab.Step($"{LabNetwork.HostName(balancer)} totals: {exit.TotalsLine}");
        }
        // Every connection was made before lb2's second process started: whatever it forwarded, it never saw begin.
        Assert.That(totals[LabHost.Lb2].Count("forwarded"), Is.Positive, "the router moved flows back to lb2, which scheduled them by hash");
        Lab.Step($"{connections.Length - broken.Length} of {connections.Length} connections carried on; broken: {string.Join("; ", broken.Take(5))}");
        Assert.That(connections, Has.Length.EqualTo(Connections));
        Assert.That(broken.Length, Is.LessThanOrEqualTo(Connections / 100), "at least 99% of the connections keep exchanging messages");
    }

    private static string Address(LabHost balancer) => balancer switch
    {
        LabHost.Lb => LabNetwork.LbAddress,
        LabHost.Lb2 => LabNetwork.Lb2Address,
        _ => LabNetwork.Lb3Address,
    };

    private UdrDaemon StartUdr(LabHost balancer) => Lab.StartUdrOn(balancer, "afpacket",
        "--control", Path.Combine(Lab.Directory, $"udr-{LabNetwork.HostName(balancer)}.sock"), "--sloppy-tcp", "--announce", $"{LabNetwork.Vip}={Device}");

    private void StartBird(LabHost host, string config)
    {
        string name = LabNetwork.HostName(host);
        string path = Path.Combine(Lab.Directory, $"bird-{name}.conf");
        File.WriteAllText(path, config);
        Lab.StartLabCommand(host, "bird", "bird", "-f", "-c", path, "-s", Path.Combine(Lab.Directory, $"bird-{name}.ctl"),
            "-P", Path.Combine(Lab.Directory, $"bird-{name}.pid"));
    }

    /// <summary>The router's kernel route for the VIP.</summary>
    private string RouterRoute() => Lab.Network.Exec(LabHost.Router, $"ip route show {LabNetwork.Vip} 2>&1 || true").Trim();

    /// <summary>Polls the router every 20 ms until its VIP route has <paramref name="count"/> next hops; how long that took, or null.</summary>
    private TimeSpan? WaitForNextHops(int count, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            string route = RouterRoute();
            int hops = route.Split('\n').Count(l => l.TrimStart().StartsWith("nexthop via", StringComparison.Ordinal));
            if (hops == 0 && route.Contains(" via ", StringComparison.Ordinal))
            {
                hops = 1; // a single path is written without "nexthop"
            }
            if (hops == count)
            {
                return clock.Elapsed;
            }
            Thread.Sleep(20);
        }
        return null;
    }
}
