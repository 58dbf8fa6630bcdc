using System.Text.Json;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// A real server on the balancer itself (IPVS's local real server: CTDB's `ipvsadm -a -t VIP -r 127.0.0.1`, or the
/// balancer's own address): rr between rs1 and an HTTP server on the balancer, which listens on the VIP. udr hands the
/// balancer's share unchanged to its own stack through udrlocal0 while the nftables guard still keeps every other VIP
/// frame from the kernel; the local server's replies leave by the kernel's route, as a DR server's do. NAT to the
/// balancer's own address: the kernel's DNAT (table inet udr_local) rewrites what enters by udrlocal0 and conntrack
/// the replies; NAT to loopback is refused.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("pcap")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class LocalServerEndToEndTests(string backend) : EndToEndFixture
{
    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    internal override void Prepare(EndToEndLab lab)
    {
        lab.StartServers();
        lab.AddWebRoot(LabHost.Lb);
    }

    [TestCase("127.0.0.1", "-g", LabNetwork.Vip)]
    [TestCase(LabNetwork.LbAddress, "-g", LabNetwork.Vip)]
    [TestCase(LabNetwork.LbAddress, "-m", LabNetwork.LbAddress)]
    public void Rr_between_a_real_server_and_the_balancer_itself_serves_both_and_downloads_from_both_come_back_intact(string localServer, string method, string listen)
    {
        Lab.StartWebServer(LabHost.Lb, listen);
        Lab.WriteRules($"""
            -A -t {LabNetwork.Vip}:80 -s rr
            -a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs1Address}:80 -g -w 1
            -a -t {LabNetwork.Vip}:80 -r {localServer}:80 {method} -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend);
        Assert.That(udr.Output, Does.Contain($"real server {localServer} is on the balancer itself"), udr.Output);
        Assert.That(Lab.Network.Exec(LabHost.Lb, "ip -br link show udrlocal0"), Does.Contain("udrlocal0"), "udr's way into its own stack");
        bool nat = method == "-m";
        Assert.That(Lab.Network.Exec(LabHost.Lb, "nft list tables"), nat ? Does.Contain("inet udr_local") : Does.Not.Contain("udr_local"),
            "the kernel's DNAT for a NAT server on the balancer, and no table without one");

        JsonElement split = Lab.RunClient(ClientPatience, "split", "40", "4", "60");
        JsonElement first = Lab.RunClient(ClientPatience, "download", "/big.bin");
        JsonElement second = Lab.RunClient(ClientPatience, "download", "/big.bin");
        UdrExit exit = udr.Stop();

        // The client talks to VIP:80 only: with NAT, the local server's replies got VIP:80 back from conntrack.
        EndToEndSupport.AssertSplit(split, 40, new Dictionary<string, double> { ["rs1"] = 0.5, ["lb"] = 0.5 }, tolerance: 0.1);
        var servedBy = new List<string?>();
        foreach (JsonElement download in (JsonElement[])[first, second])
        {
            Assert.That(download.GetProperty("status").GetString(), Does.Contain(" 200 "), download.ToString());
            Assert.That(download.GetProperty("bytes").GetInt32(), Is.EqualTo(EndToEndLab.BigFileLength), download.ToString());
            servedBy.Add(Lab.ServerWithBigFile(download.GetProperty("sha256").GetString()!));
        }
        Assert.That(servedBy, Is.EquivalentTo(new[] { "rs1", "lb" }), "rr: one download from each, each byte for byte its server's big.bin");
        Assert.That(exit.ExitCode, Is.Zero, exit.Output);
        Assert.That(exit.Count("delivered-locally"), Is.GreaterThan(0), exit.TotalsLine);
        Assert.That(exit.Count("local-server-masquerade"), Is.Zero, exit.TotalsLine);
        Assert.That(Lab.Network.Exec(LabHost.Lb, "ip -br link show udrlocal0 2>&1; true"), Does.Contain("does not exist"), "the device goes with udr");
        Assert.That(Lab.Network.Exec(LabHost.Lb, "nft list tables"), Does.Not.Contain("udr_local"), "and so does the table");
    }

    /// <summary>
    /// The client's upload reaches udr as GSO super-frames with partial checksums (the veth's offloads are on): they go
    /// into the local stack whole, the checksum to finish in the virtio_net_hdr, and arrive intact.
    /// </summary>
    [TestCase("-g")]
    [TestCase("-m")]
    public void An_upload_to_a_server_on_the_balancer_itself_arrives_whole(string method)
    {
        string listen = method == "-g" ? LabNetwork.Vip : LabNetwork.LbAddress;
        Lab.StartLabProgram(LabHost.Lb, "sink listening", LabScripts.TcpSinkFile, "lb", listen);
        Lab.WriteRules($"""
            -A -t {LabNetwork.Vip}:9000 -s rr
            -a -t {LabNetwork.Vip}:9000 -r {(method == "-g" ? "127.0.0.1" : LabNetwork.LbAddress)}:9000 {method} -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend);
        JsonElement upload = Lab.RunClient(ClientPatience, "upload", "4194304", "9000");
        UdrExit exit = udr.Stop();
        Assert.That(upload.GetProperty("server").GetString(), Is.EqualTo("lb"), upload.ToString());
        Assert.That(upload.GetProperty("received_sha256").GetString(), Is.EqualTo(upload.GetProperty("sent_sha256").GetString()),
            "4 MiB byte for byte: " + upload);
        Assert.That(exit.Count("delivered-locally"), Is.GreaterThan(0), exit.TotalsLine);
    }

    [Test]
    public void Nat_to_loopback_on_the_balancer_is_refused_by_name_as_ipvs_refuses_it_and_the_other_server_still_serves()
    {
        Lab.StartWebServer(LabHost.Lb, "127.0.0.1");
        Lab.WriteRules($"""
            -A -t {LabNetwork.Vip}:80 -s rr
            -a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs1Address}:80 -g -w 1
            -a -t {LabNetwork.Vip}:80 -r 127.0.0.1:80 -m -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend);
        Assert.That(udr.Output, Does.Contain("preflight fail: real server 127.0.0.1 (nat)"), udr.Output);
        JsonElement split = Lab.RunClient(ClientPatience, "split", "8", "8", "30");
        UdrExit exit = udr.Stop();
        Assert.That(split.GetProperty("counts").GetProperty("rs1").GetInt32(), Is.EqualTo(4), split.ToString());
        Assert.That(split.GetProperty("errors").GetInt32(), Is.EqualTo(4), "the loopback NAT server's connections are dropped");
        Assert.That(exit.Count("local-server-masquerade"), Is.GreaterThan(0), exit.TotalsLine);
    }
}
