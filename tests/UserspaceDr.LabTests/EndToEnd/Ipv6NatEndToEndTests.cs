using System.Text.Json;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// NAT over IPv6 with `udr run --interface eth0 --interface eth1`: the client on the public segment (2001:2::/64), the
/// NAT servers rs3/rs4 on the private one (2001:2:1::/64, their default route via the balancer's 2001:2:1::1). Their
/// replies and ICMPv6 errors come back through udr, which sends them on from the VIP; the client never sees a server's
/// address.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class Ipv6NatEndToEndTests(string backend) : EndToEndFixture
{
    private const string Vip = "2001:2::100";
    private const string Client = "2001:2::1";
    private const string Rs3 = "2001:2:1::13";
    private const string Rs4 = "2001:2:1::14";

    private const string Rules = """
        -A -t [2001:2::100]:80 -s wrr
        -a -t [2001:2::100]:80 -r [2001:2:1::13]:80 -m -w 3
        -a -t [2001:2::100]:80 -r [2001:2:1::14]:80 -m -w 1
        -A -t [2001:2::100]:8000 -s rr
        -a -t [2001:2::100]:8000 -r [2001:2:1::13]:9000 -m -w 1
        -A -u [2001:2::100]:5353 -s rr
        -a -u [2001:2::100]:5353 -r [2001:2:1::13]:5353 -m -w 1
        -a -u [2001:2::100]:5353 -r [2001:2:1::14]:5353 -m -w 1
        -A -u [2001:2::100]:5354 -s rr
        -a -u [2001:2::100]:5354 -r [2001:2:1::13]:5354 -m -w 1

        """;

    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new(python, withNatServers: true);

    /// <summary>IPv6 on both segments (without duplicate address detection); the NAT servers route through the balancer.</summary>
    internal override void Prepare(EndToEndLab lab)
    {
        lab.Network.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0 && ip link set br1 type bridge mcast_snooping 0");
        foreach ((LabHost host, string device, string address) in new[]
        {
            (LabHost.Client, "eth0", Client), (LabHost.Lb, "eth0", "2001:2::2"), (LabHost.Lb, "eth1", "2001:2:1::1"),
            (LabHost.Rs3, "eth0", Rs3), (LabHost.Rs4, "eth0", Rs4),
        })
        {
            lab.Network.Exec(host, $"sysctl -qw net.ipv6.conf.{device}.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 && ip -6 addr add {address}/64 dev {device} nodad");
        }
        foreach (LabHost server in new[] { LabHost.Rs3, LabHost.Rs4 })
        {
            lab.Network.Exec(server, "ip -6 route add default via 2001:2:1::1 dev eth0");
        }
    }

    /// <summary>udr on both segments: eth0 (the client, the VIP) and eth1 (the NAT servers).</summary>
    private UdrDaemon StartUdr() => Lab.StartUdr(backend, "--answer-arp", "--interface", "eth1", "--control", Lab.ControlPath);

    [Test]
    public void Tcp_and_udp_to_an_ipv6_vip_are_balanced_by_nat_and_every_answer_comes_from_the_vip_through_the_balancer()
    {
        foreach ((LabHost server, string address) in new[] { (LabHost.Rs3, Rs3), (LabHost.Rs4, Rs4) })
        {
            Lab.StartWebServer(server, address);
            Lab.StartLabProgram(server, "echo listening", LabScripts.UdpEchoFile, LabNetwork.HostName(server), address);
        }
        Lab.StartLabProgram(LabHost.Rs3, "sink listening", LabScripts.TcpSinkFile, "rs3", Rs3);
        Lab.WriteRules(Rules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "ip6 and (tcp or udp)");
        LabCapture rs3Capture = Lab.StartCapture(LabHost.Rs3, "ip6 and tcp port 9000");
        UdrDaemon udr = StartUdr();

        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "split", "200", "4", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "download", "/big.bin");
        JsonElement upload = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "upload", "1048576", "8000");
        JsonElement udp = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "udp", "32", "4");
        string listing = Lab.Adm("-L", "-n");
        string connections = Lab.Adm("-L", "-c", "-n");
        Lab.Step($"udr adm -L -n:\n{listing}");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atRs3 = rs3Capture.Stop();
        string[][] replies = [.. udp.GetProperty("replies").EnumerateArray().Select(f => f.EnumerateArray().Select(r => r.GetString()!).ToArray())];
        CapturedPacket[] toClient = [.. atClient.Where(p => p.SourceMac != Lab.ClientMac)];
        EndToEndSupport.AssertSplit(split, 200, new Dictionary<string, double> { ["rs3"] = 0.75, ["rs4"] = 0.25 });
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength));
        Assert.That(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!), Is.AnyOf("rs3", "rs4"), "the download is one server's big.bin, intact");
        Assert.Multiple(() =>
        {
            Assert.That(upload.GetProperty("received_sha256").GetString(), Is.EqualTo(upload.GetProperty("sent_sha256").GetString()),
                "1 MiB uploaded through NAT arrived whole at a server");
            Assert.That(udp.GetProperty("bad").GetArrayLength(), Is.Zero, $"unexpected replies: {udp.GetProperty("bad")}");
            Assert.That(replies.All(r => r.Length == 4 && r.Distinct().Count() == 1), Is.True, "every UDP flow answered 4 times by one server");
            Assert.That(replies.Select(r => r[0]).Distinct().Order(), Is.EqualTo(new[] { "rs3", "rs4" }), "rr spreads flows over both servers");

            Assert.That(clientCapture.DroppedByKernel, Is.Zero, "the client capture must be complete for what it proves");
            Assert.That(toClient, Is.Not.Empty);
            Assert.That(toClient.Where(p => p.Source != Vip || (p.IsTcp && p.SourcePort is not (80 or 8000)) || (p.IsUdp && p.SourcePort != 5353)), Is.Empty,
                "the client only ever sees VIP:vport as the source");
            Assert.That(toClient.Where(p => p.SourceMac != Lab.LbMac), Is.Empty, "NAT replies come back through the balancer");
            Assert.That(EndToEndSupport.ConnectionResets(atClient).Where(p => p.SourceMac != Lab.ClientMac), Is.Empty, "no connection was reset");
            Assert.That(toClient.Where(p => p.IsTcp && p.SourcePort == 80).Sum(p => (long)p.TransportPayloadLength), Is.GreaterThanOrEqualTo(EndToEndLab.BigFileLength),
                "the download crossed the balancer as VIP:80 frames");
            CapturedPacket[] uploaded = [.. atRs3.Where(p => p.DestinationPort == 9000)];
            Assert.That(uploaded.Sum(p => (long)p.TransportPayloadLength), Is.GreaterThanOrEqualTo(1048576), "the upload reached rs3:9000");
            Assert.That(uploaded.Where(p => p.Source != Client || p.Destination != Rs3 || p.SourceMac != Lab.LbPrivateMac), Is.Empty,
                "requests reach rs3 as client → RIP:9000 from the balancer's eth1");

            Assert.That(listing, Does.Contain("TCP  [2001:2::100]:80 wrr\n  -> [2001:2:1::13]:80            Masq    3"), listing);
            Assert.That(listing, Does.Contain("  -> [2001:2:1::13]:9000          Masq    1"), listing);
            Assert.That(connections, Does.Contain($"[{Client}]:").And.Contain($"[{Vip}]:5353").And.Contain("[2001:2:1::1"), connections);
            Assert.That(exit.Count("forwarded-reply"), Is.Positive, exit.TotalsLine);
            Assert.That(exit.Count("neighbor-unresolved"), Is.Zero, exit.TotalsLine);
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }

    [Test]
    public void A_nat_servers_icmpv6_port_unreachable_reaches_the_client_translated()
    {
        Lab.WriteRules(Rules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "icmp6 and ip6[40] == 1");
        LabCapture rs3Capture = Lab.StartCapture(LabHost.Rs3, "icmp6 and ip6[40] == 1");
        UdrDaemon udr = StartUdr();

        // Nothing listens on rs3:5354: rs3's kernel answers port unreachable to the client, quoting client → RIP:5354.
        JsonElement refused = Lab.RunClient(ClientPatience, "--vip", Vip, "--client", Client, "refused", "5354");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atRs3 = rs3Capture.Stop();
        int clientPort = refused.GetProperty("local_port").GetInt32();
        Assert.Multiple(() =>
        {
            Assert.That(refused.GetProperty("outcome").GetString(), Is.EqualTo("refused"),
                "the client's socket got ECONNREFUSED: the error arrived, its checksum right, quoting its own datagram (VIP:5354)");
            Assert.That(atRs3.Where(p => p.IcmpType == 1 && p.IcmpCode == 4 && p.Source == Rs3 && p.InnerDestination == Rs3), Is.Not.Empty,
                "rs3 sent the error about client → RIP:5354");
            CapturedPacket[] errors = [.. atClient.Where(p => p.SourceMac != Lab.ClientMac)];
            Assert.That(errors, Is.Not.Empty, "the error reached the client");
            Assert.That(errors.Where(p => !(p.IcmpType == 1 && p.IcmpCode == 4 && p.Source == Vip && p.Destination == Client && p.SourceMac == Lab.LbMac &&
                    p.InnerSource == Client && p.InnerSourcePort == clientPort && p.InnerDestination == Vip && p.InnerDestinationPort == 5354)),
                Is.Empty, "translated: outer source VIP, quoted packet client → VIP:5354");
            Assert.That(exit.Count("forwarded-reply-icmp-error"), Is.Positive, exit.TotalsLine);
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }
}
