using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// GUE and GRE tunnel servers (`-i --tun-type gue --tun-port 6080 --tun-csum`, `-i --tun-type gre --tun-csum`), seen
/// on the wire at the real servers (tcpdump, decoded by PacketDotNet): each datagram for the VIP arrives inside a
/// UDP datagram to the GUE port or a GRE packet, from the balancer's own address, the client's packet unchanged inside
/// but for its TTL; and udr's own endpoints (`udr node tunnel --tun-type gue --tun-port 6080`, `--tun-type gre`; the
/// lab's kernel has neither fou nor gre) take them apart for real connections and downloads.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class GueGreEndToEndTests(string backend) : EndToEndFixture
{
    private const int GuePort = 6080;

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    internal override void Prepare(EndToEndLab lab)
    {
        lab.StartServers();
        // The lab's kernel has neither fou nor gre: udr's own endpoint decapsulates, GUE on rs1 and GRE on rs2, the
        // GRE one with two queues (each GRE socket filtered to its share of the flows).
        lab.StartTunnelEndpoints(["--tun-type", "gue", "--tun-port", GuePort.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            ["--tun-type", "gre", "--queues", "2"]);
    }

    private static string Rules(string protocol, int port) => $"""
        -A -{protocol} {LabNetwork.Vip}:{port} -s rr
        -a -{protocol} {LabNetwork.Vip}:{port} -r {LabNetwork.Rs1Address}:{port} -i -w 1 --tun-type gue --tun-port {GuePort} --tun-csum
        -a -{protocol} {LabNetwork.Vip}:{port} -r {LabNetwork.Rs2Address}:{port} -i -w 1 --tun-type gre --tun-csum

        """;

    [Test]
    public void Connections_over_gue_and_gre_to_udr_s_own_endpoints_split_and_downloads_come_back_intact()
    {
        Lab.WriteRules(Rules("t", 80));
        UdrDaemon udr = Lab.StartUdr(backend);
        System.Text.Json.JsonElement split = Lab.RunClient(TimeSpan.FromSeconds(90), "split", "40", "4", "60");
        System.Text.Json.JsonElement first = Lab.RunClient(TimeSpan.FromSeconds(90), "download", "/big.bin");
        System.Text.Json.JsonElement second = Lab.RunClient(TimeSpan.FromSeconds(90), "download", "/big.bin");
        UdrExit exit = udr.Stop();
        EndToEndSupport.AssertSplit(split, 40, new Dictionary<string, double> { ["rs1"] = 0.5, ["rs2"] = 0.5 }, tolerance: 0.1);
        var servedBy = new List<string?>();
        foreach (System.Text.Json.JsonElement download in (System.Text.Json.JsonElement[])[first, second])
        {
            Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), download.ToString());
            servedBy.Add(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!));
        }
        Assert.That(servedBy, Is.EquivalentTo(new[] { "rs1", "rs2" }), "rr: a download through each endpoint, byte for byte its server's");
        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
    }

    [Test]
    public void Rr_over_a_gue_and_a_gre_server_sends_every_datagram_encapsulated_from_the_balancer()
    {
        Lab.WriteRules(Rules("u", 5353));
        LabCapture atRs1 = Lab.StartCapture(LabHost.Rs1, $"udp port {GuePort}");
        LabCapture atRs2 = Lab.StartCapture(LabHost.Rs2, "ip proto 47");
        UdrDaemon udr = Lab.StartUdr(backend, "--control", Lab.ControlPath);
        string listing = Lab.Adm("-L", "-n", "--tun-info");
        Assert.That(listing, Does.Contain($"gue:{GuePort}:+c").And.Contain("gre:+c"), listing);

        // Eight datagrams, each from a socket of its own (a new source port: a new connection, rr alternates).
        Lab.Network.Exec(LabHost.Client, $"{Lab.Python} -c \"import socket, time\n" +
            $"for i in range(8):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b'datagram %d' % i, ('{LabNetwork.Vip}', 5353)); s.close(); time.sleep(0.05)\"");
        Thread.Sleep(500);
        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> gue = atRs1.Stop();
        IReadOnlyList<CapturedPacket> gre = atRs2.Stop();

        Assert.That(exit.Count("forwarded"), Is.EqualTo(8), exit.TotalsLine);
        foreach ((IReadOnlyList<CapturedPacket> captured, string type, string server) in
                 ((IReadOnlyList<CapturedPacket>, string, string)[])[(gue, "gue", LabNetwork.Rs1Address), (gre, "gre", LabNetwork.Rs2Address)])
        {
            // The datagrams; the client's port-unreachables about the echoes (its sockets closed) follow them in the tunnel too.
            CapturedPacket[] arrived = [.. captured.Where(p => p.Destination == server && p.InnerProtocol == PacketDotNet.ProtocolType.Udp)];
            Assert.That(arrived, Has.Length.EqualTo(4), $"rr: four datagrams in {type}: {string.Join("; ", captured)}");
            Assert.That(arrived.Select(p => p.Encapsulation), Is.All.EqualTo(type));
            Assert.That(arrived.Select(p => p.Source), Is.All.EqualTo(LabNetwork.LbAddress), "from the balancer's own address");
            Assert.That(arrived.Select(p => p.InnerDestination), Is.All.EqualTo(LabNetwork.Vip), "the client's datagram inside, still to the VIP");
            Assert.That(arrived.Select(p => p.InnerSource), Is.All.EqualTo(LabNetwork.ClientAddress));
            Assert.That(arrived.Select(p => p.InnerDestinationPort), Is.All.EqualTo(5353));
        }
        Assert.That(gue.Where(p => p.Destination == LabNetwork.Rs1Address).Select(p => p.Encapsulation), Is.All.EqualTo("gue"));
        Assert.That(gue.Where(p => p.Destination == LabNetwork.Rs1Address).Select(p => p.DestinationPort), Is.All.EqualTo(GuePort));
        Assert.That(gue.Where(p => p.Destination == LabNetwork.Rs1Address).Select(p => p.SourcePort), Is.All.InRange(32768, 60999));
    }
}
