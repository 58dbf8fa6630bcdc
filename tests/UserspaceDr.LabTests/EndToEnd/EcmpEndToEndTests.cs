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
    /// their server by hash on the balancers left). Started again: its route is back. Then another balancer's udr killed
    /// with SIGKILL: its route is gone within a second without its help. Through all three changes at least 99% of the
    /// connections carry every line.
    /// </summary>
    [Test]
    public void Three_balancers_behind_ecmp_carry_their_connections_through_one_leaving_and_coming_back()
    {
        Dictionary<LabHost, UdrDaemon> udrs = StartBalancers(withChecks: false);
        NamespacedProcess sessions = StartSessions(Connections);
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

        // SIGKILL: udr does nothing more, its device dies with it, and BIRD withdraws on its own.
        udrs[LabHost.Lb3].Kill();
        TimeSpan? killed = WaitForNextHops(2, TimeSpan.FromSeconds(5));
        Lab.Step($"router: two next hops {killed?.TotalMilliseconds:F0} ms after lb3's udr was killed: {RouterRoute()}");
        Assert.That(killed, Is.Not.Null.And.LessThan(TimeSpan.FromSeconds(1)), RouterRoute());
        Thread.Sleep(TimeSpan.FromSeconds(5));

        (int carried, int total) = StopSessions(sessions);
        var totals = new[] { LabHost.Lb, LabHost.Lb2 }.ToDictionary(b => b, b => udrs[b].Stop());
        foreach ((LabHost balancer, UdrExit exit) in totals)
        {
            Lab.Step($"{LabNetwork.HostName(balancer)} totals: {exit.TotalsLine}");
        }
        // Every connection was made before lb2's second process started: whatever it forwarded, it never saw begin.
        Assert.That(totals[LabHost.Lb2].Count("forwarded"), Is.Positive, "the router moved flows back to lb2, which scheduled them by hash");
        Assert.That(total, Is.EqualTo(Connections));
        Assert.That(carried, Is.GreaterThanOrEqualTo(Connections * 99 / 100), "at least 99% of the connections keep exchanging messages");
        string?[] digests = [.. totals.Values.Select(e => e.TableDigest("TCP 198.18.0.100:7000"))];
        Assert.That(digests.Distinct().ToArray(), Has.Length.EqualTo(1).And.None.Null, "the balancers' mh tables are the same");
    }

    /// <summary>
    /// The balancers run keepalived.conf's TCP_CHECK against both servers. lb2's checks are made to fail (its own
    /// outgoing connections to the servers' port are dropped; what udr forwards is untouched): both servers go down for
    /// lb2 alone, lb2's udr has nothing to serve and removes its device, the router drops lb2 within seconds, and the
    /// connections go on through lb and lb3.
    /// </summary>
    [Test]
    public void A_balancer_whose_checks_all_fail_withdraws_and_the_others_keep_serving()
    {
        Dictionary<LabHost, UdrDaemon> udrs = StartBalancers(withChecks: true);
        const int count = 60;
        NamespacedProcess sessions = StartSessions(count);
        Lab.Network.Exec(LabHost.Lb2, $"nft add table inet udr_test_block && nft add chain inet udr_test_block out " +
            $"'{{ type filter hook output priority 0; }}' && nft add rule inet udr_test_block out tcp dport {ChatPort} drop");
        TimeSpan? withdrawn = WaitForNextHops(2, TimeSpan.FromSeconds(20));
        Lab.Step($"router: two next hops {withdrawn?.TotalSeconds:F1} s after lb2's checks began to fail: {RouterRoute()}");
        Assert.That(withdrawn, Is.Not.Null, RouterRoute());
        Assert.That(udrs[LabHost.Lb2].WaitForLine(l => l.Contains($"{LabNetwork.Vip} withdrawn", StringComparison.Ordinal), TimeSpan.FromSeconds(5)),
            Is.Not.Null, "lb2 logs why");
        Thread.Sleep(TimeSpan.FromSeconds(4));
        (int carried, int total) = StopSessions(sessions);
        Lab.Network.Exec(LabHost.Lb2, "nft delete table inet udr_test_block");
        Assert.That(total, Is.EqualTo(count));
        Assert.That(carried, Is.GreaterThanOrEqualTo(count * 99 / 100), "the clients keep being served by lb and lb3");
    }

    /// <summary>
    /// The chat servers, the router's BIRD, and on each balancer its BIRD and udr (the rules file, or with
    /// <paramref name="withChecks"/> a keepalived.conf with TCP_CHECKs); returns once the router routes the VIP to all three.
    /// </summary>
    private Dictionary<LabHost, UdrDaemon> StartBalancers(bool withChecks)
    {
        foreach (LabHost server in (LabHost[])[LabHost.Rs1, LabHost.Rs2])
        {
            // On every address: the VIP for the clients, the server's own for the balancers' TCP_CHECKs.
            Lab.StartLabProgram(server, "chat listening", LabScripts.ChatServerFile, LabNetwork.HostName(server), "0.0.0.0", ChatPort.ToString(CultureInfo.InvariantCulture));
        }
        Lab.WriteRules("""
            -A -t 198.18.0.100:7000 -s mh -b mh-port
            -a -t 198.18.0.100:7000 -r 198.18.0.11:7000 -g -w 1
            -a -t 198.18.0.100:7000 -r 198.18.0.12:7000 -g -w 1

            """);
        File.WriteAllText(KeepalivedPath, """
            virtual_server 198.18.0.100 7000 {
                delay_loop 1
                lb_algo mh
                mh-port
                lb_kind DR
                protocol TCP
                real_server 198.18.0.11 7000 {
                    weight 1
                    TCP_CHECK {
                        connect_timeout 1
                        retry 1
                        delay_before_retry 1
                    }
                }
                real_server 198.18.0.12 7000 {
                    weight 1
                    TCP_CHECK {
                        connect_timeout 1
                        retry 1
                        delay_before_retry 1
                    }
                }
            }

            """);
        Lab.StartBird(LabHost.Router, $$"""
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
            Lab.StartBird(balancer, $$"""
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
            udrs[balancer] = withChecks
                ? Lab.StartUdrWithConfigOn(balancer, "afpacket", KeepalivedPath, [.. UdrArguments(balancer)])
                : StartUdr(balancer);
        }
        Assert.That(WaitForNextHops(3, TimeSpan.FromSeconds(30)), Is.Not.Null, "the router learns the VIP from all three: " + RouterRoute());
        Lab.Step("router: " + RouterRoute());
        return udrs;
    }

    private string KeepalivedPath => Path.Combine(Lab.Directory, "keepalived.conf");

    /// <summary>Long-lived connections from the client through the VIP, a line every 100 ms each; returns once all answered.</summary>
    private NamespacedProcess StartSessions(int count)
    {
        // From four client addresses, spread over them in turn.
        NamespacedProcess sessions = Lab.StartClient("--client", string.Join(',', LabNetwork.EcmpClientAddresses), "sessions",
            count.ToString(CultureInfo.InvariantCulture), ChatPort.ToString(CultureInfo.InvariantCulture), "120");
        Assert.That(sessions.WaitForLine(l => l.StartsWith("ready", StringComparison.Ordinal), TimeSpan.FromSeconds(60)), Is.Not.Null, sessions.Output);
        return sessions;
    }

    /// <summary>Ends the sessions; how many carried every line on one server without an error (sent − answered ≤ 2), of how many.</summary>
    private (int Carried, int Total) StopSessions(NamespacedProcess sessions)
    {
        sessions.WriteLine("stop");
        Assert.That(sessions.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, sessions.Output);
        using JsonDocument report = JsonDocument.Parse(sessions.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Last());
        JsonElement[] connections = [.. report.RootElement.GetProperty("connections").EnumerateArray()];
        JsonElement[] broken = [.. connections.Where(c => c.GetProperty("error").ValueKind != JsonValueKind.Null ||
            c.GetProperty("servers").GetArrayLength() != 1 || c.GetProperty("sent").GetInt32() - c.GetProperty("answered").GetInt32() > 2)];
        Lab.Step($"{connections.Length - broken.Length} of {connections.Length} connections carried on; broken: {string.Join("; ", broken.Take(5))}");
        return (connections.Length - broken.Length, connections.Length);
    }

    private static string Address(LabHost balancer) => balancer switch
    {
        LabHost.Lb => LabNetwork.LbAddress,
        LabHost.Lb2 => LabNetwork.Lb2Address,
        _ => LabNetwork.Lb3Address,
    };

    private UdrDaemon StartUdr(LabHost balancer) => Lab.StartUdrOn(balancer, "afpacket", [.. UdrArguments(balancer)]);

    private IEnumerable<string> UdrArguments(LabHost balancer) =>
        ["--control", Path.Combine(Lab.Directory, $"udr-{LabNetwork.HostName(balancer)}.sock"), "--sloppy-tcp", "--announce", $"{LabNetwork.Vip}={Device}"];

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
