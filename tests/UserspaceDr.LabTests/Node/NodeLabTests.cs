using UserspaceDr.Core.Packets;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.Node;

/// <summary>
/// `udr node` on real servers and `udr preflight` on the balancer, against real kernels in the namespace lab
/// (tools/lab.sh up PREFIX --bare-servers: rs1/rs2 start without the VIP on lo and with default sysctls). Every
/// udr command runs inside a lab namespace (`ip netns exec`), so the root namespace is never touched; the state and
/// --persist files go to a temporary directory.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class NodeLabTests
{
    private static readonly TimeSpan ArpWait = TimeSpan.FromMilliseconds(700);
    private string _scratch = null!;

    [SetUp]
    public void SetUp()
    {
        LabNetwork.RequireRoot();
        _scratch = Directory.CreateTempSubdirectory("udr-node-test-").FullName;
    }

    [TearDown]
    public void TearDown()
    {
        if (_scratch != null && Directory.Exists(_scratch))
        {
            Directory.Delete(_scratch, recursive: true);
        }
    }

    private string StateFile(LabHost host) => Path.Combine(_scratch, $"{LabNetwork.HostName(host)}-state.json");

    private UdrRun Setup(LabNetwork lab, LabHost host, params string[] extra) =>
        NodeLab.Udr(lab, host, ["node", "setup", "--vip", LabNetwork.Vip, "--state-file", StateFile(host), .. extra]);

    private UdrRun Teardown(LabNetwork lab, LabHost host) =>
        NodeLab.Udr(lab, host, "node", "teardown", "--state-file", StateFile(host));

    private static UdrRun Check(LabNetwork lab, LabHost host) => NodeLab.Udr(lab, host, "node", "check", "--vip", LabNetwork.Vip);

    [Test]
    public void After_setup_on_both_real_servers_only_the_balancer_answers_arp_for_the_vip_and_http_through_udr_succeeds()
    {
        using var lab = new LabNetwork(bareServers: true);
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        foreach (LabHost rs in new[] { LabHost.Rs1, LabHost.Rs2 })
        {
            UdrRun setup = Setup(lab, rs);
            Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
            UdrRun check = Check(lab, rs);
            Assert.That(check.ExitCode, Is.Zero, check.ToString());
            Assert.That(check.Output, Does.Contain("the node is ready").And.Not.Contain("[FAIL]"));
        }

        Assert.That(NodeLab.ArpRepliersFromClient(lab, LabNetwork.Vip, ArpWait), Is.EqualTo(new[] { lbMac }),
            "an ARP request for the VIP is answered by the balancer alone");

        string rules = Path.Combine(_scratch, "rules");
        File.WriteAllText(rules,
            $"-A -t {LabNetwork.Vip}:80 -s rr\n" +
            $"-a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs1Address}:80 -g -w 1\n" +
            $"-a -t {LabNetwork.Vip}:80 -r {LabNetwork.Rs2Address}:80 -g -w 1\n");
        using HttpResponder rs1 = NodeLab.StartHttp(lab, LabHost.Rs1);
        using HttpResponder rs2 = NodeLab.StartHttp(lab, LabHost.Rs2);
        using LabProcess udr = lab.StartProcess(LabHost.Lb, $"exec {NodeLab.UdrPath} run --interface eth0 --rules {rules} --workers 1");

        // The first request waits for udr to come up (until then the balancer's kernel refuses port 80).
        string first = lab.Exec(LabHost.Client,
            $"for i in $(seq 60); do curl -sf -m 2 http://{LabNetwork.Vip}/ && exit 0; sleep 0.2; done; exit 1", TimeSpan.FromSeconds(30));
        var bodies = new List<string> { first.Trim() };
        for (int i = 0; i < 3; i++)
        {
            bodies.Add(lab.Exec(LabHost.Client, $"curl -sf -m 5 http://{LabNetwork.Vip}/").Trim());
        }
        Assert.That(udr.HasExited, Is.False, "udr run is still serving");
        Assert.That(bodies, Is.All.Matches<string>(b => b is "served by rs1" or "served by rs2"));
        Assert.That(bodies, Does.Contain("served by rs1").And.Contain("served by rs2"), "rr spreads the requests over both real servers");
        Assert.That(rs1.Served + rs2.Served, Is.EqualTo(bodies.Count));
    }

    [Test]
    public void An_ipv6_vip_on_lo_is_never_advertised_while_the_same_vip_on_eth0_is_and_the_check_tells_them_apart()
    {
        const string Vip6 = "2001:2::100";
        using var lab = new LabNetwork(bareServers: true);
        lab.Exec(LabHost.Switch, "ip link set br0 type bridge mcast_snooping 0");
        foreach ((LabHost host, string address) in new[] { (LabHost.Client, "2001:2::1"), (LabHost.Rs1, "2001:2::11") })
        {
            lab.Exec(host, $"sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0 net.ipv6.conf.lo.disable_ipv6=0 && ip -6 addr add {address}/64 dev eth0 nodad");
        }
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        // A datagram to the VIP makes the client's kernel solicit it; after a second the neighbour entry says who answered.
        string Solicit() => lab.Exec(LabHost.Client,
            $"python3 -c \"import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'x', ('{Vip6}', 9))\"; sleep 1.2; " +
            $"ip -6 neigh show {Vip6}; ip -6 neigh flush {Vip6} dev eth0");

        UdrRun setup = NodeLab.Udr(lab, LabHost.Rs1, "node", "setup", "--vip", Vip6, "--state-file", StateFile(LabHost.Rs1));
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        Assert.That(lab.Exec(LabHost.Rs1, "ip -6 addr show dev lo"), Does.Contain($"{Vip6}/128"));
        UdrRun check = NodeLab.Udr(lab, LabHost.Rs1, "node", "check", "--vip", Vip6);
        Assert.That(check.ExitCode, Is.Zero, check.ToString());
        Assert.That(check.Output, Does.Contain("the node is ready").And.Not.Contain("arp_ignore"));
        Assert.That(Solicit(), Does.Not.Contain(rs1Mac.ToString()), "Linux does not answer a solicitation for an address on lo");

        // The mistake the check exists for: the VIP on eth0 is advertised, and the check says so.
        lab.Exec(LabHost.Rs1, $"ip -6 addr add {Vip6}/128 dev eth0 nodad");
        Assert.That(Solicit(), Does.Contain(rs1Mac.ToString()), "a VIP on eth0 is advertised: the detector works");
        UdrRun leaking = NodeLab.Udr(lab, LabHost.Rs1, "node", "check", "--vip", Vip6);
        Assert.That(leaking.ExitCode, Is.EqualTo(1), leaking.ToString());
        Assert.That(leaking.Output, Does.Contain("which answer neighbour solicitations for it"));
        lab.Exec(LabHost.Rs1, $"ip -6 addr del {Vip6}/128 dev eth0");

        UdrRun teardown = Teardown(lab, LabHost.Rs1);
        Assert.That(teardown.ExitCode, Is.Zero, teardown.ToString());
        Assert.That(lab.Exec(LabHost.Rs1, "ip -6 addr show dev lo"), Does.Not.Contain(Vip6));
    }

    [Test]
    public void Before_setup_the_check_reports_the_arp_leak_and_a_real_server_really_answers_arp_for_the_vip()
    {
        using var lab = new LabNetwork(bareServers: true);
        // The classic mistake: the VIP on lo, sysctls left at their defaults.
        lab.Exec(LabHost.Rs1, $"ip addr add {LabNetwork.Vip}/32 dev lo");

        UdrRun check = Check(lab, LabHost.Rs1);
        Assert.That(check.ExitCode, Is.EqualTo(1), check.ToString());
        Assert.That(check.Output, Does.Contain("[FAIL] arp_ignore on eth0: 0 (all=0, eth0=0)").And.Contain("ARP leak")
            .And.Contain("fix: sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1"));
        Assert.That(check.Output, Does.Contain("[pass] VIP 198.18.0.100 on lo"));

        List<MacAddress> repliers = NodeLab.ArpRepliersFromClient(lab, LabNetwork.Vip, ArpWait);
        Assert.That(repliers, Does.Contain(lab.MacAddressOf(LabHost.Rs1)), "the leak is real: rs1 answers ARP for the VIP");
        Assert.That(repliers, Does.Contain(lab.MacAddressOf(LabHost.Lb)));

        // And the same host, set up, stops answering.
        UdrRun setup = Setup(lab, LabHost.Rs1);
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        Assert.That(NodeLab.ArpRepliersFromClient(lab, LabNetwork.Vip, ArpWait), Does.Not.Contain(lab.MacAddressOf(LabHost.Rs1)));
    }

    [Test]
    public void Teardown_restores_every_sysctl_and_address_exactly_as_the_snapshot_before_setup()
    {
        using var lab = new LabNetwork(bareServers: true);
        // Earlier values that are not the defaults, so "restore" cannot pass by resetting to defaults.
        lab.Exec(LabHost.Rs1, "sysctl -qw net.ipv4.conf.eth0.arp_announce=1 net.ipv4.conf.lo.rp_filter=2 net.ipv4.conf.all.arp_ignore=2");
        string sysctlDirectory = Directory.CreateDirectory(Path.Combine(_scratch, "sysctl.d")).FullName;
        string before = NodeLab.Snapshot(lab, LabHost.Rs1);

        UdrRun setup = Setup(lab, LabHost.Rs1, "--vip", "198.18.0.101", "--mode", "tun", "--persist", "--sysctl-dir", sysctlDirectory);
        Assert.That(setup.ExitCode, Is.Zero, setup.ToString());
        string during = NodeLab.Snapshot(lab, LabHost.Rs1);
        Assert.That(during, Is.Not.EqualTo(before));
        Assert.That(during, Does.Contain("/proc/sys/net/ipv4/conf/eth0/arp_announce:2").And.Contain("/proc/sys/net/ipv4/conf/lo/rp_filter:0")
            .And.Contain("/proc/sys/net/ipv4/conf/all/arp_ignore:2").And.Contain("inet 198.18.0.101/32 scope global lo"));
        Assert.That(File.ReadAllText(Path.Combine(sysctlDirectory, "90-udr-node.conf")), Does.Contain("net.ipv4.conf.all.arp_ignore = 1"));
        Assert.That(setup.Output, Does.Contain("udr node tunnel").And.Contain("Address=198.18.0.101/32"));

        UdrRun teardown = Teardown(lab, LabHost.Rs1);
        Assert.That(teardown.ExitCode, Is.Zero, teardown.ToString());
        Assert.That(NodeLab.Snapshot(lab, LabHost.Rs1), Is.EqualTo(before));
        Assert.That(Directory.GetFileSystemEntries(sysctlDirectory), Is.Empty, "the --persist file is gone");
        Assert.That(File.Exists(StateFile(LabHost.Rs1)), Is.False, "the state file is gone");
        Assert.That(Teardown(lab, LabHost.Rs1).Output, Does.Contain("nothing to tear down"));
    }

    [Test]
    public void Setup_twice_is_idempotent_and_dry_run_changes_nothing()
    {
        using var lab = new LabNetwork(bareServers: true);
        string before = NodeLab.Snapshot(lab, LabHost.Rs1);
        UdrRun dryRun = Setup(lab, LabHost.Rs1, "--dry-run");
        Assert.That(dryRun.ExitCode, Is.Zero, dryRun.ToString());
        Assert.That(dryRun.Output, Does.Contain("would make 5 change(s)").And.Contain("sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1")
            .And.Contain("address add 198.18.0.100/32 dev lo").And.Contain("nothing was changed"));
        Assert.That(NodeLab.Snapshot(lab, LabHost.Rs1), Is.EqualTo(before));
        Assert.That(File.Exists(StateFile(LabHost.Rs1)), Is.False, "dry run writes no state file");

        UdrRun first = Setup(lab, LabHost.Rs1);
        Assert.That(first.ExitCode, Is.Zero, first.ToString());
        string afterFirst = NodeLab.Snapshot(lab, LabHost.Rs1);
        string state = File.ReadAllText(StateFile(LabHost.Rs1));

        UdrRun second = Setup(lab, LabHost.Rs1);
        Assert.That(second.ExitCode, Is.Zero, second.ToString());
        Assert.That(second.Output, Does.Contain("nothing to change"));
        Assert.That(NodeLab.Snapshot(lab, LabHost.Rs1), Is.EqualTo(afterFirst));
        Assert.That(File.ReadAllText(StateFile(LabHost.Rs1)), Is.EqualTo(state));
    }

    [Test]
    public void Each_bad_input_exits_2_with_a_message_and_changes_nothing()
    {
        using var lab = new LabNetwork(bareServers: true);
        string before = NodeLab.Snapshot(lab, LabHost.Rs1);
        string state = StateFile(LabHost.Rs1);
        (string[] Arguments, bool AsNobody, string Message)[] cases =
        [
            (["node", "setup", "--vip", "198.18.0.300", "--state-file", state], false, "'198.18.0.300' is not an IPv4 or IPv6 address"),
            (["node", "setup", "--vip", LabNetwork.Vip, "--interface", "eth9", "--state-file", state], false, "unknown interface 'eth9'"),
            (["node", "setup", "--vip", LabNetwork.Rs1Address, "--state-file", state], false, "this node's own address"),
            (["node", "setup", "--vip", LabNetwork.Vip, "--mode", "nat", "--state-file", state], false, "'nat' not recognized"),
            (["node", "setup", "--vip", LabNetwork.Vip, "--state-file", state], true, "run it as root"),
            (["node", "check", "--vip", "not-an-address"], false, "is not an IPv4 or IPv6 address"),
            // This lab keeps IPv6 off (net.ipv6.conf.*.disable_ipv6=1): the kernel's refusal, with nothing changed.
            (["node", "setup", "--vip", "2001:2::100", "--mode", "tun", "--state-file", state], false, "IPv6 is disabled on this device"),
        ];
        foreach ((string[] arguments, bool asNobody, string message) in cases)
        {
            UdrRun run = NodeLab.Udr(lab, LabHost.Rs1, asNobody, arguments);
            Assert.That(run.ExitCode, Is.EqualTo(2), $"{string.Join(' ', arguments)}: {run}");
            Assert.That(run.Error, Does.Contain(message), string.Join(' ', arguments));
            Assert.That(NodeLab.Snapshot(lab, LabHost.Rs1), Is.EqualTo(before), string.Join(' ', arguments));
            Assert.That(File.Exists(state), Is.False, string.Join(' ', arguments));
        }
    }

    [Test]
    public void Preflight_flags_gro_an_off_link_real_server_and_a_missing_vip_and_fix_clears_gro()
    {
        using var lab = new LabNetwork(bareServers: true);
        string Rules(string name, string vip, params string[] servers)
        {
            string path = Path.Combine(_scratch, name);
            File.WriteAllText(path, $"-A -t {vip}:80 -s rr\n" + string.Concat(servers.Select(s => $"-a -t {vip}:80 -r {s}:80 -g -w 1\n")));
            return path;
        }
        UdrRun Preflight(string rules, params string[] extra) => PreflightOn("eth0", rules, extra);
        UdrRun PreflightOn(string networkInterface, string rules, params string[] extra) =>
            NodeLab.Udr(lab, LabHost.Lb, ["preflight", "--interface", networkInterface, "--rules", rules, .. extra]);

        string good = Rules("good", LabNetwork.Vip, LabNetwork.Rs1Address, LabNetwork.Rs2Address);
        // A fresh namespace has rp_filter 0, which preflight warns about; the balancer is made right first, so the
        // baseline shows every check can pass and each finding below comes from its own cause.
        lab.Exec(LabHost.Lb, "sysctl -qw net.ipv4.conf.all.rp_filter=1 && ethtool -K eth0 gro off");
        UdrRun baseline = Preflight(good);
        Assert.That(baseline.ExitCode, Is.Zero, baseline.ToString());
        Assert.That(baseline.Output, Does.Contain("[pass] GRO on eth0: off").And.Contain("[pass] interface: eth0 is up, MTU 1500")
            .And.Contain($"[pass] real server {LabNetwork.Rs1Address} (dr): on-link on eth0, at {lab.MacAddressOf(LabHost.Rs1)}"));

        lab.Exec(LabHost.Lb, "ethtool -K eth0 gro on");
        UdrRun groOn = Preflight(good);
        Assert.That(groOn.ExitCode, Is.EqualTo(1), groOn.ToString());
        Assert.That(groOn.Output, Does.Contain("[WARN] GRO on eth0: on").And.Contain("fix: ethtool -K eth0 gro off"));

        UdrRun fixedRun = Preflight(good, "--fix");
        Assert.That(fixedRun.ExitCode, Is.Zero, fixedRun.ToString());
        Assert.That(fixedRun.Output, Does.Contain("[pass] GRO on eth0: was on; turned off (--fix)"));
        Assert.That(lab.Exec(LabHost.Lb, "ethtool -k eth0"), Does.Contain("generic-receive-offload: off"));
        Assert.That(Preflight(good).ExitCode, Is.Zero, "the finding stays cleared");

        UdrRun offLink = Preflight(Rules("offlink", LabNetwork.Vip, LabNetwork.Rs1Address, "198.18.1.11"));
        Assert.That(offLink.ExitCode, Is.EqualTo(2), offLink.ToString());
        Assert.That(offLink.Output, Does.Contain("[FAIL] real server 198.18.1.11 (dr): off-link"));

        UdrRun missingVip = Preflight(Rules("missingvip", "198.18.0.101", LabNetwork.Rs1Address));
        Assert.That(missingVip.ExitCode, Is.EqualTo(2), missingVip.ToString());
        Assert.That(missingVip.Output, Does.Contain("[FAIL] VIP 198.18.0.101: missing").And.Contain("fix: ip addr add 198.18.0.101/32 dev eth0"));
        Assert.That(Preflight(Rules("answered", "198.18.0.101", LabNetwork.Rs1Address), "--answer-arp").ExitCode, Is.Zero,
            "with --answer-arp udr answers for it");

        UdrRun badInterface = PreflightOn("eth9", good);
        Assert.That(badInterface.ExitCode, Is.EqualTo(2), badInterface.ToString());
        Assert.That(badInterface.Output, Does.Contain("[FAIL] interface: no interface named 'eth9'"));
    }
}
