using System.Text.Json;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// A real server on the balancer itself (IPVS's local real server: CTDB's `ipvsadm -a -t VIP -r 127.0.0.1`, or the
/// balancer's own address): rr between rs1 and an HTTP server on the balancer, which listens on the VIP. udr hands the
/// balancer's share unchanged to its own stack through udrlocal0 while the nftables guard still keeps every other VIP
/// frame from the kernel; the local server's replies leave by the kernel's route, as a DR server's do.
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

    [TestCase("127.0.0.1")]
    [TestCase(LabNetwork.LbAddress)]
    public void Rr_between_a_real_server_and_the_balancer_itself_serves_both_and_downloads_from_both_come_back_intact(string localServer)
    {
        Lab.StartWebServer(LabHost.Lb, LabNetwork.Vip);
        Lab.WriteRules($"""
            -A -t {LabNetwork.Vip}:80 -s rr
            -a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs1Address}:80 -g -w 1
            -a -t {LabNetwork.Vip}:80 -r {localServer}:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend);
        Assert.That(udr.Output, Does.Contain($"real server {localServer} is on the balancer itself"), udr.Output);
        Assert.That(Lab.Network.Exec(LabHost.Lb, "ip -br link show udrlocal0"), Does.Contain("udrlocal0"), "udr's way into its own stack");

        JsonElement split = Lab.RunClient(ClientPatience, "split", "40", "4", "60");
        JsonElement first = Lab.RunClient(ClientPatience, "download", "/big.bin");
        JsonElement second = Lab.RunClient(ClientPatience, "download", "/big.bin");
        UdrExit exit = udr.Stop();

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
        Assert.That(Lab.Network.Exec(LabHost.Lb, "ip -br link show udrlocal0 2>&1; true"), Does.Not.Contain("UP"), "the device goes with udr");
    }

    [Test]
    public void Nat_to_the_balancer_itself_is_refused_by_name_and_the_other_server_still_serves()
    {
        Lab.StartWebServer(LabHost.Lb, LabNetwork.LbAddress);
        Lab.WriteRules($"""
            -A -t {LabNetwork.Vip}:80 -s rr
            -a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs1Address}:80 -g -w 1
            -a -t {LabNetwork.Vip}:80 -r {LabNetwork.LbAddress}:80 -m -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend);
        Assert.That(udr.Output, Does.Contain($"preflight fail: real server {LabNetwork.LbAddress} (nat)"), udr.Output);
        JsonElement split = Lab.RunClient(ClientPatience, "split", "8", "8", "30");
        UdrExit exit = udr.Stop();
        Assert.That(split.GetProperty("counts").GetProperty("rs1").GetInt32(), Is.EqualTo(4), split.ToString());
        Assert.That(split.GetProperty("errors").GetInt32(), Is.EqualTo(4), "the local NAT server's connections are dropped, never answered half-translated");
        Assert.That(exit.Count("local-server-masquerade"), Is.GreaterThan(0), exit.TotalsLine);
    }
}
