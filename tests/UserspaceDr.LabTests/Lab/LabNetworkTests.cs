using System.Diagnostics;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.Io.FrameTestSupport;

namespace UserspaceDr.Tests.Lab;

/// <summary>tools/lab.sh and its C# helpers: the topology the other lab tests stand on.</summary>
[Category("Lab")]
[NonParallelizable]
public class LabNetworkTests
{
    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public void Up_builds_the_dr_topology_and_dispose_removes_every_namespace()
    {
        string prefix;
        using (var lab = new LabNetwork())
        {
            prefix = lab.Prefix;
            Assert.That(ListNamespaces(), Is.SupersetOf(new[] { "client", "lb", "rs1", "rs2", "rs3", "rs4", "sw" }.Select(h => $"{prefix}-{h}")));
            MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);

            // The client reaches every host, and the VIP resolves to the balancer: the real servers keep quiet.
            using (Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress))
            {
                foreach (string address in new[] { LabNetwork.LbAddress, LabNetwork.Rs1Address, LabNetwork.Rs2Address, LabNetwork.Vip })
                {
                    SendUdp(client, address, 9, "probe");
                }
            }
            string neighbours = lab.Exec(LabHost.Client, "sleep 0.3; ip -4 neigh show dev eth0");
            Assert.That(neighbours, Does.Contain($"{LabNetwork.Vip} lladdr {lbMac}"));
            Assert.That(neighbours, Does.Contain($"{LabNetwork.Rs1Address} lladdr {lab.MacAddressOf(LabHost.Rs1)}"));

            Assert.That(lab.Exec(LabHost.Lb, "ip -4 -o addr show dev eth0"), Does.Contain($"{LabNetwork.Vip}/32"));
            foreach (LabHost rs in new[] { LabHost.Rs1, LabHost.Rs2 })
            {
                Assert.That(lab.Exec(rs, "ip -4 -o addr show dev lo"), Does.Contain($"{LabNetwork.Vip}/32"));
                Assert.That(lab.Exec(rs, "sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.eth0.arp_ignore " +
                                         "net.ipv4.conf.all.arp_announce net.ipv4.conf.eth0.arp_announce net.ipv4.conf.all.rp_filter net.ipv4.conf.eth0.rp_filter")
                    .Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "1", "1", "2", "2", "0", "0" }));
            }
            Assert.That(lab.Exec(LabHost.Switch, "ip -o link show master br0"), Does.Contain("client@").And.Contain("rs2@").And.Not.Contain("rs3@"));
        }
        Assert.That(ListNamespaces().Where(n => n.StartsWith(prefix + "-", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public void Up_builds_the_private_nat_segment_behind_a_balancer_whose_kernel_does_not_forward()
    {
        using var lab = new LabNetwork();
        Assert.That(lab.Exec(LabHost.Switch, "ip -o link show master br1"), Does.Contain("lbp@").And.Contain("rs3@").And.Contain("rs4@")
            .And.Not.Contain("client@"));
        Assert.That(lab.Exec(LabHost.Lb, $"ip -4 -o addr show dev {LabNetwork.LbPrivateInterface}"), Does.Contain($"{LabNetwork.LbPrivateAddress}/24"));
        Assert.That(lab.Exec(LabHost.Lb, "sysctl -n net.ipv4.ip_forward").Trim(), Is.EqualTo("0"), "udr does NAT, never the balancer's kernel");
        foreach ((LabHost rs, string address) in new[] { (LabHost.Rs3, LabNetwork.Rs3Address), (LabHost.Rs4, LabNetwork.Rs4Address) })
        {
            Assert.That(lab.Exec(rs, "ip -4 -o addr show dev eth0"), Does.Contain($"{address}/24"));
            Assert.That(lab.Exec(rs, "ip -4 route show default"), Does.Contain($"default via {LabNetwork.LbPrivateAddress} dev eth0"));
            Assert.That(lab.Exec(rs, "ip -4 -o addr show dev lo"), Does.Not.Contain(LabNetwork.Vip), "a NAT server answers from its own address");
        }

        // rs3 reaches the balancer's private address (a real UDP datagram, received by a socket there) ...
        using (Socket lb = UdpSocket(lab, LabHost.Lb, LabNetwork.LbPrivateAddress, 7000))
        using (Socket rs3 = UdpSocket(lab, LabHost.Rs3, LabNetwork.Rs3Address))
        {
            SendUdp(rs3, LabNetwork.LbPrivateAddress, 7000, "private hello");
            Assert.That(ReceiveUdp(lb, 1), Is.EqualTo(new[] { "private hello" }));
        }
        // ... but nothing reaches the client through the balancer's kernel, and the segments share no link.
        using (Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress, 7001))
        using (Socket rs4 = UdpSocket(lab, LabHost.Rs4, LabNetwork.Rs4Address))
        {
            client.ReceiveTimeout = 500;
            SendUdp(rs4, LabNetwork.ClientAddress, 7001, "must not arrive");
            Assert.That(ReceiveUdp(client, 1), Is.Empty);
        }
        Assert.That(lab.Exec(LabHost.Rs3, "ip -4 neigh show dev eth0"), Does.Not.Contain(LabNetwork.ClientAddress));
    }

    [Test]
    public void NetworkNamespace_run_executes_inside_the_named_namespace()
    {
        using var lab = new LabNetwork();
        string[] addresses = lab.RunIn(LabHost.Rs1, () => NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses.Select(a => $"{i.Name} {a.Address}")).ToArray());
        Assert.That(addresses, Does.Contain($"eth0 {LabNetwork.Rs1Address}").And.Contain($"lo {LabNetwork.Vip}"));
        Assert.That(() => NetworkNamespace.Run(lab.Prefix + "-nothere", () => 0), Throws.InstanceOf<FileNotFoundException>());
        Assert.That(() => NetworkNamespace.Run(lab.Namespace(LabHost.Lb), () => throw new InvalidOperationException("inner")),
            Throws.InvalidOperationException.With.Message.EqualTo("inner"));
    }

    [Test]
    public void Started_processes_end_with_their_handle()
    {
        using var lab = new LabNetwork();
        LabProcess sleeper = lab.StartProcess(LabHost.Client, "sleep 30");
        Assert.That(sleeper.WaitForExit(TimeSpan.FromMilliseconds(300)), Is.False);
        Assert.That(ProcessesIn(lab.Namespace(LabHost.Client)), Is.Not.Empty);
        sleeper.Dispose();
        Assert.That(sleeper.HasExited, Is.True);
        Assert.That(ProcessesIn(lab.Namespace(LabHost.Client)), Is.Empty, "nothing of it is left in the namespace");
    }

    [Test]
    public void The_script_validates_prefixes_and_down_never_fails()
    {
        Assert.That(RunLabScript("up", "Bad-Prefix"), Is.EqualTo(2));
        Assert.That(RunLabScript("up", "../etc"), Is.EqualTo(2));
        Assert.That(RunLabScript("up", "waytoolongprefix"), Is.EqualTo(2));
        Assert.That(RunLabScript("down", "neverup0"), Is.Zero);
        Assert.That(RunLabScript("exec", "neverup0", "router", "true"), Is.EqualTo(2));
        Assert.That(RunLabScript("exec", "neverup0", "rs5", "true"), Is.EqualTo(2));
    }

    private static string[] ListNamespaces() =>
        Directory.Exists("/var/run/netns") ? [.. Directory.GetFiles("/var/run/netns").Select(Path.GetFileName).OfType<string>()] : [];

    private static string[] ProcessesIn(string networkNamespace)
    {
        string output = ProcessRunner.Run("ip", ["netns", "pids", networkNamespace], TimeSpan.FromSeconds(10)).Output;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    private static int RunLabScript(params string[] arguments) =>
        ProcessRunner.Run(RepositoryPaths.LabScript, arguments, TimeSpan.FromSeconds(10)).ExitCode;
}
