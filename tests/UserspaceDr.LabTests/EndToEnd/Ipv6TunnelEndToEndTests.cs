using System.Text.Json;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// Tunnelling over IPv6 with `udr run`: IPv6 in IPv6 to IPv6 tunnel servers, and the mixes IPVS allows for tunnel
/// servers (an IPv4 VIP's IPv6 servers get IPv4 in IPv6, an IPv6 VIP's IPv4 servers IPv6 in IPv4). rs1 and rs2 run
/// `udr node tunnel` for both VIPs; this lab's kernel has no ip6tnl or sit module, so the endpoint is the user-space one.
/// The servers answer the client straight from the VIP; the captures show the outer packets at the servers.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class Ipv6TunnelEndToEndTests(string backend) : EndToEndFixture
{
    private const string Vip6 = "2001:2::100";
    private const string Client6 = "2001:2::1";
    private const string Rs1 = "2001:2::11";
    private const string Rs2 = "2001:2::12";

    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new(python);

    /// <summary>IPv6 on the public segment (without duplicate address detection), the IPv6 VIP on the servers' lo.</summary>
    internal override void Prepare(EndToEndLab lab)
    {
        lab.StartServers(); // the IPv4 VIP's
        lab.Network.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0");
        foreach ((LabHost host, string address) in new[] { (LabHost.Client, Client6), (LabHost.Lb, "2001:2::2"), (LabHost.Rs1, Rs1), (LabHost.Rs2, Rs2) })
        {
            lab.Network.Exec(host, $"sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 && ip -6 addr add {address}/64 dev eth0 nodad");
        }
        foreach (LabHost server in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            lab.Network.Exec(server, $"ip -6 addr add {Vip6}/128 dev lo");
        }
    }

    /// <summary>The servers' web servers on the IPv6 VIP and their tunnel endpoints for both VIPs, for the running test.</summary>
    private void StartServers() => StartServers([], []);

    /// <summary>As <see cref="StartServers()"/>, with more `udr node tunnel` arguments for rs1 and rs2 (a GUE or GRE endpoint).</summary>
    private void StartServers(string[] rs1Arguments, string[] rs2Arguments)
    {
        foreach ((LabHost server, string[] more) in ((LabHost, string[])[])[(LabHost.Rs1, rs1Arguments), (LabHost.Rs2, rs2Arguments)])
        {
            Lab.StartWebServer(server, Vip6);
            NamespacedProcess endpoint = Lab.StartLabCommand(server, "udr node tunnel", [UdrBinary.Executable, "node", "tunnel",
                "--vip", Vip6, "--vip", LabNetwork.Vip, "--stats-interval", "1", .. more]);
            Assert.That(endpoint.WaitForLine(l => l.StartsWith("ready: ", StringComparison.Ordinal), TimeSpan.FromSeconds(20)), Is.Not.Null, endpoint.Output);
        }
    }

    [Test]
    public void Gue_and_gre_over_ipv6_carry_connections_and_downloads_to_udr_s_endpoints()
    {
        // rs1's GUE endpoint with two queues: two sockets share the port (SO_REUSEPORT).
        StartServers(["--tun-type", "gue", "--tun-port", "6080", "--queues", "2"], ["--tun-type", "gre"]);
        Lab.WriteRules("""
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r [2001:2::11]:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
            -a -t [2001:2::100]:80 -r [2001:2::12]:80 -i -w 1 --tun-type gre

            """);
        LabCapture rs1Capture = Lab.StartCapture(LabHost.Rs1, "ip6 and udp port 6080");
        LabCapture rs2Capture = Lab.StartCapture(LabHost.Rs2, "ip6 and ip6[6] == 47");
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp");
        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "split", "40", "4", "60");
        JsonElement first = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "download", "/big.bin");
        JsonElement second = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "download", "/big.bin");
        UdrExit exit = udr.Stop();
        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        EndToEndSupport.AssertSplit(split, 40, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 }, tolerance: 0.1);
        string?[] servedBy = [.. new[] { first, second }.Select(d => Lab.ServerWithBigFile(d.GetProperty("sha256").GetString()!))];
        Assert.That(servedBy, Is.EquivalentTo(new[] { "rs1", "rs2" }), "rr: a 10 MiB download through each endpoint, byte for byte its server's");
        Assert.That(rs1Capture.Stop().Count(p => p.Destination == Rs1), Is.GreaterThan(40), "GUE in IPv6 to rs1's UDP port 6080");
        Assert.That(rs2Capture.Stop().Count(p => p.Destination == Rs2), Is.GreaterThan(40), "GRE in IPv6 to rs2");
    }

    [Test]
    public void An_ipv6_vip_is_balanced_by_ipv6_in_ipv6_and_the_servers_answer_straight_from_the_vip()
    {
        StartServers(["--queues", "2"], []); // rs1's endpoint with two queues: its IPv6-in-IPv6 socket filtered to each one's share
        Lab.StartLabProgram(LabHost.Rs2, "sink listening", LabScripts.TcpSinkFile, "rs2", Vip6);
        Lab.WriteRules("""
            -A -t [2001:2::100]:80 -s wrr
            -a -t [2001:2::100]:80 -r [2001:2::11]:80 -i -w 3
            -a -t [2001:2::100]:80 -r [2001:2::12]:80 -i -w 1
            -A -t [2001:2::100]:9000 -s rr
            -a -t [2001:2::100]:9000 -r [2001:2::12]:9000 -i -w 1

            """);
        LabCapture rs1Capture = Lab.StartCapture(LabHost.Rs1, "ip6 and ip6[6] == 41");
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "ip6 and tcp port 80");
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp", "--control", Lab.ControlPath);

        JsonElement split = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "split", "200", "4", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "download", "/big.bin");
        // The client's segmentation offload is on: its upload reaches the balancer as GSO super-frames, which udr cuts
        // before encapsulating them (the prefetch's hint says the flow may be tunnelled).
        JsonElement upload = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "upload", "1048576", "9000");
        string listing = Lab.Adm("-L", "-n");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atRs1 = rs1Capture.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        EndToEndSupport.AssertSplit(split, 200, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 });
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength));
        Assert.That(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!), Is.Not.Null, "the download is one server's big.bin, intact");
        Assert.That(upload.GetProperty("received_sha256").GetString(), Is.EqualTo(upload.GetProperty("sent_sha256").GetString()),
            "1 MiB uploaded through IPv6 in IPv6 arrived whole at rs2");
        CapturedPacket[] answers = [.. atClient.Where(p => p.Source == Vip6)];
        Assert.Multiple(() =>
        {
            Assert.That(atRs1, Is.Not.Empty, "IPv6-in-IPv6 packets reached rs1");
            Assert.That(atRs1.Where(p => p.Source != "2001:2::2" || p.Destination != Rs1 || p.SourceMac != Lab.LbMac), Is.Empty,
                "outer: from the balancer's IPv6 address and MAC to rs1's own address");
            Assert.That(answers.Count(p => p.Syn && p.Ack), Is.GreaterThanOrEqualTo(201));
            Assert.That(answers.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty, "answers come straight from the servers");
            Assert.That(EndToEndSupport.ConnectionResets(atClient).Where(p => p.Source == Vip6), Is.Empty, "no connection was reset");
            Assert.That(listing, Does.Contain("  -> [2001:2::11]:80              Tunnel  3"), listing);
            Assert.That(exit.Count("forwarded"), Is.GreaterThanOrEqualTo(200), exit.TotalsLine);
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }

    [Test]
    public void Tunnel_servers_of_the_other_family_get_ipv4_in_ipv6_and_ipv6_in_ipv4()
    {
        StartServers();
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s rr
            -a -t 198.18.0.100:80 -r [2001:2::11]:80 -i -w 1
            -A -t [2001:2::100]:80 -s rr
            -a -t [2001:2::100]:80 -r 198.18.0.12:80 -i -w 1

            """);
        LabCapture rs1Capture = Lab.StartCapture(LabHost.Rs1, "ip6 and ip6[6] == 4");
        LabCapture rs2Capture = Lab.StartCapture(LabHost.Rs2, "ip proto 41");
        UdrDaemon udr = Lab.StartUdr(backend, "--answer-arp");

        JsonElement ipv4OverIpv6 = Lab.RunClient(ClientPatience, "split", "40", "4", "30");
        JsonElement ipv6OverIpv4 = Lab.RunClient(ClientPatience, "--vip", Vip6, "--client", Client6, "split", "40", "4", "30");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atRs1 = rs1Capture.Stop();
        IReadOnlyList<CapturedPacket> atRs2 = rs2Capture.Stop();
        EndToEndSupport.AssertSplit(ipv4OverIpv6, 40, new Dictionary<string, double> { ["rs1"] = 1.0 });
        EndToEndSupport.AssertSplit(ipv6OverIpv4, 40, new Dictionary<string, double> { ["rs2"] = 1.0 });
        Assert.Multiple(() =>
        {
            Assert.That(atRs1, Is.Not.Empty, "IPv4-in-IPv6 packets reached rs1");
            Assert.That(atRs1.Where(p => p.Source != "2001:2::2" || p.Destination != Rs1), Is.Empty);
            Assert.That(atRs2, Is.Not.Empty, "IPv6-in-IPv4 packets reached rs2");
            Assert.That(atRs2.Where(p => p.Source != LabNetwork.LbAddress || p.Destination != LabNetwork.Rs2Address), Is.Empty);
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }
}
