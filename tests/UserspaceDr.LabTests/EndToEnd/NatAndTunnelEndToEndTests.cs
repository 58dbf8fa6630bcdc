using System.Globalization;
using System.Text.Json;
using UserspaceDr.Core.Packets;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// NAT (-m) and IP-in-IP (-i) through `udr run --interface eth0 --interface eth1`, in the lab's two segments: the
/// client and rs1/rs2 on the public one, the NAT servers rs3/rs4 behind the balancer on the private one (their
/// default gateway is the balancer's eth1). rs1/rs2 run `udr node tunnel` as their IP-in-IP endpoint. Real kernels
/// on both ends; captures decoded with PacketDotNet show where every frame went and what it carried.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class NatAndTunnelEndToEndTests(string backend) : EndToEndFixture
{
    private const string Vip = LabNetwork.Vip;
    private const string Client = LabNetwork.ClientAddress;

    private const string NatRules = """
        -A -t 198.18.0.100:80 -s wrr
        -a -t 198.18.0.100:80 -r 198.19.1.13:80 -m -w 3
        -a -t 198.18.0.100:80 -r 198.19.1.14:80 -m -w 1
        -A -u 198.18.0.100:5353 -s rr
        -a -u 198.18.0.100:5353 -r 198.19.1.13:5353 -m -w 1
        -a -u 198.18.0.100:5353 -r 198.19.1.14:5353 -m -w 1
        -A -u 198.18.0.100:5354 -s rr
        -a -u 198.18.0.100:5354 -r 198.19.1.13:5354 -m -w 1

        """;

    private const string TunnelRules = """
        -A -t 198.18.0.100:80 -s wrr
        -a -t 198.18.0.100:80 -r 198.18.0.11:80 -i -w 3
        -a -t 198.18.0.100:80 -r 198.18.0.12:80 -i -w 1
        -A -u 198.18.0.100:5353 -s rr
        -a -u 198.18.0.100:5353 -r 198.18.0.11:5353 -i -w 1
        -a -u 198.18.0.100:5353 -r 198.18.0.12:5353 -i -w 1
        -A -t 198.18.0.100:9000 -s rr
        -a -t 198.18.0.100:9000 -r 198.18.0.11:9000 -i -w 1

        """;

    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python, withNatServers: true);

    internal override void Prepare(EndToEndLab lab)
    {
        lab.StartServers();
        lab.StartTunnelEndpoints();
    }

    /// <summary>udr on both segments: eth0 (clients, VIP, rs1/rs2) and eth1 (the NAT servers).</summary>
    private UdrDaemon StartUdr() => Lab.StartUdr(backend, "--interface", "eth1");

    [Test]
    public void Nat_tcp_wrr_3_to_1_and_a_10_MiB_download_intact_with_the_client_seeing_only_the_vip()
    {
        Lab.WriteRules(NatRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        LabCapture rs3Capture = Lab.StartCapture(LabHost.Rs3, "tcp port 80 or icmp");
        UdrDaemon udr = StartUdr();

        JsonElement split = Lab.RunClient(ClientPatience, "split", "400", "8", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "download", "/big.bin");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atRs3 = rs3Capture.Stop();

        EndToEndSupport.AssertSplit(split, 400, new Dictionary<string, double> { ["rs3"] = 0.75, ["rs4"] = 0.25 });
        AssertIntactDownload(download, "rs3", "rs4");
        Assert.Multiple(() =>
        {
            Assert.That(clientCapture.DroppedByKernel, Is.Zero, "the client capture must be complete for what it proves");
            CapturedPacket[] toClient = [.. atClient.Where(p => p.Source != null && p.SourceMac != Lab.ClientMac)];
            Assert.That(toClient.Count(p => p.IsTcp && p.Syn && p.Ack), Is.GreaterThanOrEqualTo(401), "every connection was answered");
            Assert.That(toClient.Where(p => p.Source != Vip || !p.IsTcp || p.SourcePort != 80), Is.Empty,
                "in NAT the client only ever sees VIP:80 as the source (no real-server address, no kernel-routed reply)");
            Assert.That(toClient.Where(p => p.SourceMac != Lab.LbMac), Is.Empty, "NAT replies come back through the balancer");
            Assert.That(toClient.Where(p => p.DestinationPort == download.GetProperty("local_port").GetInt32()).Sum(p => (long)p.TransportPayloadLength),
                Is.GreaterThanOrEqualTo(EndToEndLab.BigFileLength), "the download crossed the balancer as VIP:80 frames");

            // At the real server: the client's address is kept, the destination is the server's own, and the frames
            // come from the balancer's private side; nothing from the balancer's kernel (ICMP, RST) reaches it.
            Assert.That(rs3Capture.DroppedByKernel, Is.Zero);
            CapturedPacket[] requests = [.. atRs3.Where(p => p.IsTcp && p.DestinationPort == 80)];
            Assert.That(requests.Count(p => p.Syn && !p.Ack), Is.InRange(260, 340), "rs3 (weight 3) got about three SYNs in four");
            Assert.That(requests.Where(p => p.Source != Client || p.Destination != LabNetwork.Rs3Address || p.SourceMac != Lab.LbPrivateMac), Is.Empty,
                "requests reach rs3 as client → RIP:80 from the balancer's eth1");
            Assert.That(atRs3.Where(p => p.SourceMac == Lab.LbPrivateMac && p.IsIcmp).Concat(EndToEndSupport.ConnectionResets(atRs3).Where(p => p.SourceMac == Lab.LbPrivateMac)),
                Is.Empty, "the balancer's kernel stays quiet on the private side");

            EndToEndSupport.AssertKernelQuiet(Lab, atClient);
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: 400 * 3);
            Assert.That(exit.Count("forwarded-reply"), Is.GreaterThanOrEqualTo(400 * 3), $"NAT replies forwarded: {exit.TotalsLine}");
        });
    }

    [Test]
    public void Nat_udp_flows_stick_to_their_server_and_every_answer_comes_from_the_vip()
    {
        Lab.WriteRules(NatRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        UdrDaemon udr = StartUdr();

        JsonElement udp = Lab.RunClient(ClientPatience, "udp", "64", "4");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        AssertStickyUdp(udp, "rs3", "rs4");
        Assert.Multiple(() =>
        {
            CapturedPacket[] answers = [.. atClient.Where(p => p.IsUdp && p.SourceMac != Lab.ClientMac)];
            Assert.That(answers, Has.Length.EqualTo(256), "256 answers in the capture");
            Assert.That(answers.Where(p => p.Source != Vip || p.SourcePort != 5353 || p.SourceMac != Lab.LbMac), Is.Empty,
                "every answer is VIP:5353 from the balancer");
            EndToEndSupport.AssertKernelQuiet(Lab, atClient);
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: 256);
        });
    }

    [Test]
    public void Nat_a_real_server_port_unreachable_reaches_the_client_translated()
    {
        Lab.WriteRules(NatRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        LabCapture rs3Capture = Lab.StartCapture(LabHost.Rs3, "icmp");
        UdrDaemon udr = StartUdr();

        // Nothing listens on rs3:5354: rs3's kernel answers port-unreachable to the client, quoting client → RIP:5354.
        JsonElement refused = Lab.RunClient(ClientPatience, "refused", "5354");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atRs3 = rs3Capture.Stop();
        int clientPort = refused.GetProperty("local_port").GetInt32();

        Assert.Multiple(() =>
        {
            Assert.That(refused.GetProperty("outcome").GetString(), Is.EqualTo("refused"),
                "the client's socket got ECONNREFUSED: the error arrived and quoted its own datagram (VIP:5354)");
            Assert.That(atRs3.Where(p => p.IcmpType == 3 && p.IcmpCode == 3 && p.Source == LabNetwork.Rs3Address && p.InnerDestination == LabNetwork.Rs3Address),
                Is.Not.Empty, "rs3 sent the error about client → RIP:5354");
            CapturedPacket[] errors = [.. atClient.Where(p => p.IsIcmp && p.SourceMac != Lab.ClientMac)];
            Assert.That(errors, Is.Not.Empty, "the error reached the client");
            Assert.That(errors.Where(p => !(p.IcmpType == 3 && p.IcmpCode == 3 && p.Source == Vip && p.Destination == Client &&
                    p.InnerSource == Client && p.InnerSourcePort == clientPort && p.InnerDestination == Vip && p.InnerDestinationPort == 5354)),
                Is.Empty, "translated: outer source VIP, quoted packet client → VIP:5354");
            Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        });
    }

    [Test]
    public void Tunnel_tcp_wrr_3_to_1_and_a_10_MiB_download_intact_with_replies_straight_from_the_real_servers()
    {
        Lab.WriteRules(TunnelRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        LabCapture rs1Capture = Lab.StartCapture(LabHost.Rs1, "ip proto 4");
        UdrDaemon udr = StartUdr();

        JsonElement split = Lab.RunClient(ClientPatience, "split", "400", "8", "60");
        JsonElement download = Lab.RunClient(ClientPatience, "download", "/big.bin");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        IReadOnlyList<CapturedPacket> atRs1 = rs1Capture.Stop();

        EndToEndSupport.AssertSplit(split, 400, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 });
        string server = AssertIntactDownload(download, "rs1", "rs2");
        Assert.Multiple(() =>
        {
            Assert.That(clientCapture.DroppedByKernel, Is.Zero);
            CapturedPacket[] replies = [.. atClient.Where(p => p.IsTcp && p.Source == Vip && p.SourcePort == 80)];
            Assert.That(replies.Count(p => p.Syn && p.Ack), Is.GreaterThanOrEqualTo(401), "every connection was answered");
            Assert.That(replies.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty,
                "tunnelled connections are answered straight from the real servers, never through the balancer");
            int downloadPort = download.GetProperty("local_port").GetInt32();
            Assert.That(replies.Where(p => p.DestinationPort == downloadPort && p.SourceMac != Lab.MacOf(server)), Is.Empty,
                $"the whole download came from {server}'s MAC");

            // At rs1: IP-in-IP from the balancer's address and MAC, carrying the client's packet to the VIP unchanged.
            Assert.That(rs1Capture.DroppedByKernel, Is.Zero);
            CapturedPacket[] tunnelled = [.. atRs1.Where(p => p.IsIpInIp)];
            Assert.That(tunnelled.Count(p => p.InnerDestinationPort == 80), Is.GreaterThan(250), "rs1's share arrived encapsulated");
            Assert.That(tunnelled.Where(p => p.Source != LabNetwork.LbAddress || p.Destination != LabNetwork.Rs1Address || p.SourceMac != Lab.LbMac ||
                    p.InnerSource != Client || p.InnerDestination != Vip), Is.Empty,
                "outer 198.18.0.2 → 198.18.0.11 from the balancer's MAC, inner client → VIP");

            EndToEndSupport.AssertKernelQuiet(Lab, atClient);
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: 400 * 3);
        });
    }

    [Test]
    public void Tunnel_udp_flows_stick_to_their_server()
    {
        Lab.WriteRules(TunnelRules);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        UdrDaemon udr = StartUdr();

        JsonElement udp = Lab.RunClient(ClientPatience, "udp", "64", "4");

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
        AssertStickyUdp(udp, "rs1", "rs2");
        Assert.Multiple(() =>
        {
            CapturedPacket[] answers = [.. atClient.Where(p => p.IsUdp && p.Source == Vip && p.SourcePort == 5353)];
            Assert.That(answers, Has.Length.EqualTo(256), "256 answers in the capture");
            Assert.That(answers.Where(p => p.SourceMac != Lab.Rs1Mac && p.SourceMac != Lab.Rs2Mac), Is.Empty, "UDP answers come straight from the real servers");
            EndToEndSupport.AssertKernelQuiet(Lab, atClient);
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: 256);
        });
    }

    [Test]
    public void Tunnel_with_a_lowered_path_mtu_a_df_upload_completes_because_the_client_learns_the_mtu_from_udr()
    {
        const int PathMtu = 1400;
        const int UploadBytes = 4 * 1024 * 1024;
        Lab.WriteRules(TunnelRules);
        // The balancer's route to rs1 carries at most 1400 bytes: a full-size 1500-byte client segment plus the
        // 20-byte outer header does not fit, and TCP from Linux sets DF.
        Lab.Network.Exec(LabHost.Lb, string.Create(CultureInfo.InvariantCulture, $"ip route replace {LabNetwork.Rs1Address}/32 dev eth0 mtu {PathMtu}"));
        try
        {
            LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
            LabCapture rs1Capture = Lab.StartCapture(LabHost.Rs1, "ip proto 4");
            UdrDaemon udr = StartUdr();

            JsonElement upload = Lab.RunClient(ClientPatience, "upload", UploadBytes.ToString(CultureInfo.InvariantCulture), "9000");

            string learned = Lab.Network.Exec(LabHost.Client, $"ip route get {Vip}");
            UdrExit exit = udr.Stop();
            IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();
            IReadOnlyList<CapturedPacket> atRs1 = rs1Capture.Stop();

            static bool IsUdrFragmentationNeeded(CapturedPacket p) => p.IcmpType == 3 && p.IcmpCode == 4;
            Assert.Multiple(() =>
            {
                Assert.That(upload.GetProperty("server").GetString(), Is.EqualTo("rs1"), upload.ToString());
                Assert.That(upload.GetProperty("received_sha256").GetString(), Is.EqualTo(upload.GetProperty("sent_sha256").GetString()),
                    "rs1 received every byte, intact");
                CapturedPacket[] tooBig = [.. atClient.Where(IsUdrFragmentationNeeded)];
                if (backend == "afpacket")
                {
                    // AF_PACKET shows each super-frame's segment size, and udr re-cuts to exactly that: the client's
                    // full-size segments meet the tunnel's MTU, and only the ICMP lets the upload go on.
                    Assert.That(tooBig, Is.Not.Empty, "udr told the client the path MTU");
                    Assert.That(learned, Does.Contain(string.Create(CultureInfo.InvariantCulture, $"mtu {PathMtu - 20}")), "the client's kernel learned it");
                    Assert.That(exit.Count("icmp-fragmentation-needed"), Is.Positive, exit.TotalsLine);
                }
                // libpcap does not show a super-frame's segment size: udr cuts super-frames to fit the narrowest tunnel,
                // so the client may never need the ICMP; whatever ICMP it got must still be right.
                Assert.That(tooBig.Where(p => p.Source != Vip || p.SourceMac != Lab.LbMac || p.IcmpNextHopMtu != PathMtu - 20 ||
                        p.InnerSource != Client || p.InnerDestination != Vip || p.InnerDestinationPort != 9000), Is.Empty,
                    "fragmentation-needed from VIP with MTU 1380 (the path's MTU less the outer header), quoting the client's segment");
                CapturedPacket[] tunnelled = [.. atRs1.Where(p => p.IsIpInIp && p.InnerDestinationPort == 9000)];
                Assert.That(tunnelled.Sum(p => (long)p.TransportPayloadLength), Is.GreaterThan(UploadBytes), "the upload crossed the tunnel");
                Assert.That(tunnelled.Where(p => p.TransportPayloadLength + 20 > PathMtu), Is.Empty, "no encapsulated packet exceeds the path MTU");
                EndToEndSupport.AssertKernelQuiet(Lab, atClient, expected: IsUdrFragmentationNeeded);
                Assert.That(exit.ExitCode, Is.Zero, exit.Output);
            });
        }
        finally
        {
            Lab.Network.Exec(LabHost.Lb, $"ip route del {LabNetwork.Rs1Address}/32 dev eth0 || true");
            // The client keeps a learned path MTU for minutes; later tests start from the link's.
            Lab.Network.Exec(LabHost.Client, "ip route flush cache");
        }
    }

    [Test]
    public void Mixed_service_with_a_direct_a_nat_and_a_tunnelled_server_serves_all_three()
    {
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s rr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -i -w 1
            -a -t 198.18.0.100:80 -r 198.19.1.13:80 -m -w 1

            """);
        LabCapture clientCapture = Lab.StartCapture(LabHost.Client, "not arp");
        UdrDaemon udr = StartUdr();

        JsonElement split = Lab.RunClient(ClientPatience, "split", "300", "8", "60");
        // rr: three downloads in a row go to the three servers, one each.
        JsonElement[] downloads = [.. Enumerable.Range(0, 3).Select(_ => Lab.RunClient(ClientPatience, "download", "/big.bin"))];

        UdrExit exit = udr.Stop();
        IReadOnlyList<CapturedPacket> atClient = clientCapture.Stop();

        EndToEndSupport.AssertSplit(split, 300, new Dictionary<string, double> { ["rs1"] = 1.0 / 3, ["rs2"] = 1.0 / 3, ["rs3"] = 1.0 / 3 });
        string[] servers = [.. downloads.Select(d => AssertIntactDownload(d, "rs1", "rs2", "rs3"))];
        Assert.Multiple(() =>
        {
            Assert.That(servers, Is.EquivalentTo(new[] { "rs1", "rs2", "rs3" }), "one download from each server");
            for (int i = 0; i < downloads.Length; i++)
            {
                int port = downloads[i].GetProperty("local_port").GetInt32();
                // DR and TUN answer from the real server's MAC; NAT through the balancer. Always from VIP:80.
                MacAddress expectedMac = servers[i] == "rs3" ? Lab.LbMac : Lab.MacOf(servers[i]);
                CapturedPacket[] frames = [.. atClient.Where(p => p.IsTcp && p.DestinationPort == port)];
                Assert.That(frames.Sum(p => (long)p.TransportPayloadLength), Is.GreaterThanOrEqualTo(EndToEndLab.BigFileLength), $"{servers[i]}'s download in the capture");
                Assert.That(frames.Where(p => p.Source != Vip || p.SourcePort != 80 || p.SourceMac != expectedMac), Is.Empty,
                    $"{servers[i]}'s download: VIP:80 from {expectedMac}");
            }
            EndToEndSupport.AssertKernelQuiet(Lab, atClient);
            EndToEndSupport.AssertCleanExit(Lab, exit, minimumForwarded: 300 * 3);
        });
    }

    /// <summary>A complete 200 download whose bytes are one of <paramref name="servers"/>' big.bin; returns that server.</summary>
    private string AssertIntactDownload(JsonElement download, params string[] servers)
    {
        Assert.That(download.GetProperty("status").GetString(), Does.Contain(" 200 "), download.ToString());
        Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), "the download completed");
        string? server = Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!);
        Assert.That(server, Is.AnyOf(servers), "the downloaded bytes are one server's big.bin, intact");
        return server!;
    }

    /// <summary>client.py udp 64 4: every datagram answered, no stray answer, each flow by one server, rr over both.</summary>
    private static void AssertStickyUdp(JsonElement udp, string first, string second)
    {
        string[][] replies = [.. udp.GetProperty("replies").EnumerateArray().Select(f => f.EnumerateArray().Select(r => r.GetString()!).ToArray())];
        Assert.That(udp.GetProperty("bad").GetArrayLength(), Is.Zero, $"answers not from VIP:5353 or for another flow: {udp.GetProperty("bad")}");
        Assert.Multiple(() =>
        {
            for (int flow = 0; flow < replies.Length; flow++)
            {
                Assert.That(replies[flow], Has.Length.EqualTo(4), $"flow {flow}: every datagram answered");
                Assert.That(replies[flow].Distinct().ToArray(), Has.Length.EqualTo(1), $"flow {flow} sticks to one server: {string.Join(",", replies[flow])}");
            }
            string[] serverOfFlow = [.. replies.Where(r => r.Length > 0).Select(r => r[0])];
            Assert.That(serverOfFlow.Count(s => s == first), Is.InRange(28, 36), $"rr spreads flows evenly: {first}");
            Assert.That(serverOfFlow.Count(s => s == second), Is.InRange(28, 36), $"rr spreads flows evenly: {second}");
        });
    }
}
