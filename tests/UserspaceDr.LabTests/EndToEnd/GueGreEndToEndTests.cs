using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// GUE and GRE tunnel servers (`-i --tun-type gue --tun-port 6080 --tun-csum`, `-i --tun-type gre --tun-csum`), seen
/// on the wire at the real servers (tcpdump, decoded by PacketDotNet): each datagram for the VIP arrives inside a
/// UDP datagram to the GUE port or a GRE packet, from the balancer's own address, the client's packet unchanged inside
/// but for its TTL. The lab's kernel has neither fou nor gre, so nothing answers here; the user-space endpoint for
/// these types is still to come (README).
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
        // No servers: nothing on rs1/rs2 decapsulates GUE or GRE in this lab.
    }

    [Test]
    public void Rr_over_a_gue_and_a_gre_server_sends_every_datagram_encapsulated_from_the_balancer()
    {
        Lab.WriteRules($"""
            -A -u {LabNetwork.Vip}:5353 -s rr
            -a -u {LabNetwork.Vip}:5353 -r {LabNetwork.Rs1Address}:5353 -i -w 1 --tun-type gue --tun-port {GuePort} --tun-csum
            -a -u {LabNetwork.Vip}:5353 -r {LabNetwork.Rs2Address}:5353 -i -w 1 --tun-type gre --tun-csum

            """);
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
            CapturedPacket[] arrived = [.. captured.Where(p => p.Destination == server)];
            Assert.That(arrived, Has.Length.EqualTo(4), $"rr: four datagrams in {type}: {string.Join("; ", captured)}");
            Assert.That(arrived.Select(p => p.Encapsulation), Is.All.EqualTo(type));
            Assert.That(arrived.Select(p => p.Source), Is.All.EqualTo(LabNetwork.LbAddress), "from the balancer's own address");
            Assert.That(arrived.Select(p => p.InnerDestination), Is.All.EqualTo(LabNetwork.Vip), "the client's datagram inside, still to the VIP");
            Assert.That(arrived.Select(p => p.InnerSource), Is.All.EqualTo(LabNetwork.ClientAddress));
            Assert.That(arrived.Select(p => p.InnerDestinationPort), Is.All.EqualTo(5353));
        }
        Assert.That(gue.Where(p => p.Destination == LabNetwork.Rs1Address).Select(p => p.DestinationPort), Is.All.EqualTo(GuePort));
        Assert.That(gue.Where(p => p.Destination == LabNetwork.Rs1Address).Select(p => p.SourcePort), Is.All.InRange(32768, 60999));
    }
}
