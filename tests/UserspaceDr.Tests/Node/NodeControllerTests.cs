using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Node.Plans;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Node;

/// <summary>Apply, roll back, record and restore, on the in-memory host.</summary>
public class NodeControllerTests
{
    private const string StatePath = "/run/udr/node-state.json";

    private static NodeSetupRequest Request(params string[] vips) => new(NodeAddresses.ParseVips(vips.Length == 0 ? ["198.18.0.100"] : vips));

    private static (NodeController Controller, StringWriter Output) Controller(FakeHostSystem host)
    {
        var output = new StringWriter();
        return (new NodeController(host, output), output);
    }

    [Test]
    public void A_failing_change_rolls_back_the_earlier_ones_newest_first()
    {
        var host = new FakeHostSystem();
        string before = host.Snapshot();
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request(), host);
        host.FailOn.Add("sysctl net/ipv4/conf/eth0/arp_announce");
        PlanFailedException failure = Assert.Throws<PlanFailedException>(() => PlanExecutor.Apply(plan.Changes, host))!;
        Assert.That(failure.Message, Does.Contain("net.ipv4.conf.eth0.arp_announce").And.Contain("rolled back 3 earlier change(s)"));
        Assert.That(host.Log, Is.EqualTo(new[]
        {
            "sysctl net/ipv4/conf/all/arp_ignore=1",
            "sysctl net/ipv4/conf/all/arp_announce=2",
            "sysctl net/ipv4/conf/eth0/arp_ignore=1",
            "FAILED sysctl net/ipv4/conf/eth0/arp_announce=2",
            "sysctl net/ipv4/conf/eth0/arp_ignore=0",
            "sysctl net/ipv4/conf/all/arp_announce=0",
            "sysctl net/ipv4/conf/all/arp_ignore=0",
        }));
        Assert.That(host.Snapshot(), Is.EqualTo(before));
    }

    [Test]
    public void A_first_change_that_fails_leaves_nothing_to_undo_and_a_failed_undo_is_reported_not_hidden()
    {
        var host = new FakeHostSystem();
        NodeSetupPlan plan = NodePlanner.PlanSetup(Request(), host);
        host.FailOn.Add("sysctl");
        Assert.That(() => PlanExecutor.Apply(plan.Changes, host),
            Throws.InstanceOf<PlanFailedException>().With.Message.Contains("nothing had been changed"));

        host.FailOn.Clear();
        host.FailOn.AddRange(["addr add", "sysctl net/ipv4/conf/all/rp_filter=0"]);
        NodeChange[] changes = [new SysctlChange(SysctlKey.Conf("all", ConfSetting.RpFilter), "0", "1"), new AddressAddChange("lo", InetAddress.Parse("198.18.0.100"), 32)];
        PlanFailedException failure = Assert.Throws<PlanFailedException>(() => PlanExecutor.Apply(changes, host))!;
        Assert.That(failure.Message, Does.Contain("COULD NOT UNDO").And.Contain("net.ipv4.conf.all.rp_filter"));
        Assert.That(failure.UndoFailures, Has.Count.EqualTo(1));
    }

    [Test]
    public void Setup_failure_leaves_host_and_state_file_as_they_were_and_exits_through_a_node_exception()
    {
        var host = new FakeHostSystem();
        host.Directories.Add("/run/udr");
        string before = host.Snapshot();
        host.FailOn.Add("addr add");
        (NodeController controller, _) = Controller(host);
        Assert.That(() => controller.Setup(Request(), StatePath, dryRun: false),
            Throws.InstanceOf<NodeException>().With.Message.Contains("address add 198.18.0.100/32 dev lo failed"));
        Assert.That(host.Snapshot(), Is.EqualTo(before), "sysctls restored, no state file left behind");
    }

    [Test]
    public void Setup_then_teardown_gives_back_the_exact_host_even_with_non_default_earlier_values()
    {
        var host = new FakeHostSystem();
        host.Sysctls["net/ipv4/conf/eth0/arp_announce"] = "1";
        host.Sysctls["net/ipv4/conf/lo/rp_filter"] = "2";
        host.Files["/etc/sysctl.d/90-udr-node.conf"] = "# the operator's own\n";
        string before = host.Snapshot();
        (NodeController controller, StringWriter output) = Controller(host);

        controller.Setup(Request("198.18.0.100", "198.18.0.101") with { Mode = NodeMode.Tunnel, Persist = true }, StatePath, dryRun: false);
        Assert.That(host.Directories, Does.Contain("/run/udr"));
        Assert.That(host.Files, Does.ContainKey(StatePath));
        Assert.That(host.Snapshot(), Is.Not.EqualTo(before));
        Assert.That(output.ToString(), Does.Contain("applying 8 change(s)").And.Contain("udr node teardown"));

        controller.Teardown(StatePath, dryRun: false);
        Assert.That(host.Snapshot(), Is.EqualTo(before));
        Assert.That(host.Files, Does.Not.ContainKey(StatePath));
    }

    [Test]
    public void An_ipv6_vip_is_set_up_checked_and_torn_down_exactly()
    {
        var host = new FakeHostSystem();
        string before = host.Snapshot();
        (NodeController controller, StringWriter output) = Controller(host);
        controller.Setup(Request("2001:2::100"), StatePath, dryRun: false);
        Assert.That(output.ToString(), Does.Contain("applying 1 change(s)"));
        Assert.That(host.Snapshot(), Does.Contain("addr lo 2001:2::100/128"));
        IReadOnlyList<CheckResult> results = NodeCheck.Run(NodeAddresses.ParseVips(["2001:2::100"]), NodeMode.DirectRouting, null, host);
        Assert.That(results.Where(r => r.Status != CheckStatus.Pass), Is.Empty, string.Join("\n", results));
        Assert.That(results.Select(r => r.Check), Has.None.Contains("arp_ignore"), "no ARP sysctl matters to an IPv6 VIP");

        controller.Teardown(StatePath, dryRun: false);
        Assert.That(host.Snapshot(), Is.EqualTo(before));
    }

    [Test]
    public void Setup_twice_changes_nothing_the_second_time_and_says_so()
    {
        var host = new FakeHostSystem();
        (NodeController controller, StringWriter output) = Controller(host);
        controller.Setup(Request(), StatePath, dryRun: false);
        string after = host.Snapshot();
        int operations = host.Log.Count;
        controller.Setup(Request(), StatePath, dryRun: false);
        Assert.That(host.Snapshot(), Is.EqualTo(after));
        Assert.That(host.Log, Has.Count.EqualTo(operations), "not even the state file is rewritten");
        Assert.That(output.ToString(), Does.Contain("nothing to change"));
    }

    [Test]
    public void A_second_setup_with_another_vip_merges_and_teardown_still_restores_the_first_values()
    {
        var host = new FakeHostSystem();
        string before = host.Snapshot();
        (NodeController controller, _) = Controller(host);
        controller.Setup(Request("198.18.0.100"), StatePath, dryRun: false);
        controller.Setup(Request("198.18.0.101"), StatePath, dryRun: false);
        NodeState state = NodeState.Load(host, StatePath);
        Assert.That(state.Vips, Is.EqualTo(new[] { "198.18.0.100", "198.18.0.101" }));
        Assert.That(state.Addresses.Select(a => a.Address), Is.EqualTo(new[] { "198.18.0.100", "198.18.0.101" }));
        Assert.That(state.Sysctls.Select(s => s.Previous), Is.All.EqualTo("0"));
        controller.Teardown(StatePath, dryRun: false);
        Assert.That(host.Snapshot(), Is.EqualTo(before));
    }

    [Test]
    public void Teardown_leaves_alone_what_setup_found_in_place()
    {
        var host = new FakeHostSystem();
        host.Link("lo").Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("198.18.0.100"), 32));
        host.Sysctls["net/ipv4/conf/all/arp_ignore"] = "1";
        string before = host.Snapshot();
        (NodeController controller, _) = Controller(host);
        controller.Setup(Request(), StatePath, dryRun: false);
        controller.Teardown(StatePath, dryRun: false);
        Assert.That(host.Snapshot(), Is.EqualTo(before), "the VIP that was already on lo stays, arp_ignore stays 1");
    }

    [Test]
    public void Dry_run_prints_the_plan_and_touches_nothing_not_even_the_state_file()
    {
        var host = new FakeHostSystem { IsRoot = false };
        (NodeController controller, StringWriter output) = Controller(host);
        controller.Setup(Request() with { Persist = true }, StatePath, dryRun: true);
        Assert.That(host.Log, Is.Empty);
        Assert.That(output.ToString(), Does.Contain("would make 6 change(s)").And.Contain("sysctl net.ipv4.conf.all.arp_ignore: 0 -> 1")
            .And.Contain("file create /etc/sysctl.d/90-udr-node.conf").And.Contain("nothing was changed"));
    }

    [Test]
    public void Not_root_is_refused_before_anything()
    {
        var host = new FakeHostSystem { IsRoot = false };
        (NodeController controller, _) = Controller(host);
        Assert.That(() => controller.Setup(Request(), StatePath, dryRun: false), Throws.InstanceOf<NodeException>().With.Message.Contains("root"));
        Assert.That(() => controller.Teardown(StatePath, dryRun: false), Throws.InstanceOf<NodeException>().With.Message.Contains("root"));
        Assert.That(host.Log, Is.Empty);
    }

    [Test]
    public void Teardown_without_state_is_a_no_op_and_a_damaged_state_file_is_refused()
    {
        var host = new FakeHostSystem();
        (NodeController controller, StringWriter output) = Controller(host);
        controller.Teardown(StatePath, dryRun: false);
        Assert.That(output.ToString(), Does.Contain("nothing to tear down"));
        host.Directories.Add("/run/udr");
        host.Files[StatePath] = "{ not json";
        Assert.That(() => controller.Teardown(StatePath, dryRun: false), Throws.InstanceOf<NodeException>().With.Message.Contains("not readable JSON"));
        host.Files[StatePath] = """{"version":1,"sysctls":[{"path":"kernel/../../etc/x","previous":"0","applied":"1"}]}""";
        Assert.That(() => controller.Teardown(StatePath, dryRun: false), Throws.InstanceOf<HostException>(), "refused by the host layer's sysctl key check");
        Assert.That(host.Log, Is.Empty);
    }

    [Test]
    public void State_round_trips_through_json()
    {
        var state = new NodeState().Merge(
            [new SysctlChange(SysctlKey.Conf("eth0", "arp_ignore"), "0", "1"), new AddressAddChange("lo", InetAddress.Parse("198.18.0.100"), 32),
             new FileWriteChange("/etc/sysctl.d/90-udr-node.conf", null, "x")],
            "dr", "eth0", [InetAddress.Parse("198.18.0.100")]);
        NodeState back = NodeState.FromJson(state.ToJson(), "test");
        Assert.That(back.ToJson(), Is.EqualTo(state.ToJson()));
        Assert.That(back.Sysctls.Single(), Is.EqualTo(new SysctlRecord("net/ipv4/conf/eth0/arp_ignore", "0", "1")));
        Assert.That(back.Files.Single().Previous, Is.Null);
    }
}
