using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Node.Plans;
using UserspaceDr.Node.Tunnel;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.TestSupport.FakeHostSystem;

namespace UserspaceDr.Tests.Node;

/// <summary>`udr node tunnel`'s decisions on an in-memory host: which endpoint, what it changes, what it refuses, and that it puts back.</summary>
public class TunnelPlannerTests
{
    private static readonly InetAddress Vip = InetAddress.Parse("198.18.0.100");

    private static FakeHostSystem RealServer()
    {
        var host = new FakeHostSystem();
        host.Link("lo").Addresses.Add(new InterfaceAddress(Vip.IPv4, 32));
        return host;
    }

    private static void AddTunl0(FakeHostSystem host, bool up = false) =>
        host.AddLink("tunl0", up ? ["NOARP", "UP"] : ["NOARP"], 1480, linkType: "ipip");

    [Test]
    public void Auto_without_the_ipip_module_chooses_the_user_space_endpoint_and_says_why()
    {
        FakeHostSystem host = RealServer();
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip]), host);
        Assert.That(plan.Mode, Is.EqualTo(TunnelMode.User));
        Assert.That(plan.Device, Is.EqualTo("udrtun0"));
        Assert.That(plan.Reason, Does.Contain("no ipip module").And.Contain("modprobe is not installed"));
        Assert.That(plan.Notes, Is.Empty);
        Assert.That(host.Log, Is.EqualTo(new[] { "modprobe ipip" }), "auto tried to load the module, and changed nothing else");
    }

    [Test]
    public void Auto_with_tunl0_or_a_loadable_module_chooses_the_kernel()
    {
        FakeHostSystem loaded = RealServer();
        AddTunl0(loaded);
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip]), loaded);
        Assert.That((plan.Mode, plan.Device), Is.EqualTo((TunnelMode.Kernel, "tunl0")));
        Assert.That(loaded.Log, Is.Empty, "tunl0 is there: no modprobe");

        FakeHostSystem loadable = RealServer();
        loadable.ModuleLoader = module => AddTunl0(loadable);
        plan = TunnelPlanner.Plan(new TunnelOptions([Vip]) { Mode = TunnelMode.Kernel }, loadable);
        Assert.That((plan.Mode, plan.Device), Is.EqualTo((TunnelMode.Kernel, "tunl0")));
        Assert.That(loadable.Log, Is.EqualTo(new[] { "modprobe ipip" }));
    }

    [Test]
    public void Gue_and_gre_take_the_user_space_endpoint_even_where_tunl0_exists_and_refuse_kernel_mode_and_a_missing_or_stray_port()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        TunnelPlan gue = TunnelPlanner.Plan(new TunnelOptions([Vip]) { Type = TunnelType.Gue, GuePort = 6080 }, host);
        Assert.That((gue.Mode, gue.Device), Is.EqualTo((TunnelMode.User, "udrtun0")));
        Assert.That(gue.Reason, Does.Contain("GUE on UDP port 6080"));
        Assert.That(TunnelPlanner.Plan(new TunnelOptions([Vip]) { Type = TunnelType.Gre }, host).Reason, Does.Contain("GRE"));
        Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Type = TunnelType.Gre, Mode = TunnelMode.Kernel }, host))!.Message,
            Does.Contain("--mode kernel").And.Contain("--tun-type gre needs --mode user"));
        Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Type = TunnelType.Gue }, host))!.Message,
            Does.Contain("--tun-port is required"));
        Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { GuePort = 6080 }, host))!.Message,
            Does.Contain("only with --tun-type gue"));
    }

    [Test]
    public void Queues_take_the_user_space_endpoint_where_the_kernel_could_and_are_refused_in_kernel_mode_or_out_of_range()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip]) { Queues = 4 }, host);
        Assert.That((plan.Mode, plan.Device), Is.EqualTo((TunnelMode.User, "udrtun0")));
        Assert.That(plan.Reason, Does.Contain("--queues 4"));
        Assert.That(TunnelPlanner.Plan(new TunnelOptions([Vip]) { Queues = 1 }, host).Mode, Is.EqualTo(TunnelMode.Kernel), "one queue: as before");
        Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Queues = 2, Mode = TunnelMode.Kernel }, host))!.Message,
            Does.Contain("--queues").And.Contain("user-space endpoint"));
        foreach (int queues in new[] { 0, -1, TunnelQueueFilter.MaxQueues + 1 })
        {
            Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Queues = queues }, host))!.Message,
                Does.Contain($"--queues: {queues} is not 1 to {TunnelQueueFilter.MaxQueues}"));
        }
    }

    [Test]
    public void Busy_polling_takes_the_user_space_endpoint_where_the_kernel_could_and_is_refused_in_kernel_mode_or_out_of_range()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip]) { BusyPollMicroseconds = 50 }, host);
        Assert.That((plan.Mode, plan.Device), Is.EqualTo((TunnelMode.User, "udrtun0")));
        Assert.That(plan.Reason, Does.Contain("--busy-poll-usecs 50"));
        Assert.That(TunnelPlanner.Plan(new TunnelOptions([Vip]) { BusyPollMicroseconds = 0 }, host).Mode, Is.EqualTo(TunnelMode.Kernel), "off: as before");
        Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { BusyPollMicroseconds = 50, Mode = TunnelMode.Kernel }, host))!.Message,
            Does.Contain("--busy-poll-usecs").And.Contain("user-space endpoint"));
        foreach (int microseconds in new[] { -1, 1001 })
        {
            Assert.That(Assert.Throws<NodeException>(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { BusyPollMicroseconds = microseconds }, host))!.Message,
                Does.Contain($"--busy-poll-usecs: {microseconds} is not 0 to 1000 microseconds"));
        }
    }

    [Test]
    public void User_mode_is_taken_when_asked_even_where_the_kernel_could()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip]) { Mode = TunnelMode.User, Device = "tun-vip" }, host);
        Assert.That((plan.Mode, plan.Device), Is.EqualTo((TunnelMode.User, "tun-vip")));
    }

    [Test]
    public void Refusals_name_the_problem()
    {
        FakeHostSystem host = RealServer();
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Mode = TunnelMode.Kernel }, host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("--mode kernel: no ipip module").And.Message.Contains("--mode user"));
        host.IsRoot = false;
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([Vip]), host), Throws.InstanceOf<NodeException>().With.Message.Contains("run it as root"));
        host.IsRoot = true;
        foreach (string bad in new[] { "", "a/b", "sixteen-chars-xx", "eth 0", "..", "tun:0" })
        {
            Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Device = bad }, host),
                Throws.InstanceOf<NodeException>().With.Message.Contains("not a valid interface name"), bad);
        }
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Mode = TunnelMode.User, Device = "eth0" }, host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("device eth0 already exists"));
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([Vip]) { Mode = TunnelMode.Kernel, Device = "eth0" }, host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("eth0 is not an ipip device"));
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([InetAddress.Parse("198.18.0.11")]), host),
            Throws.InstanceOf<NodeException>().With.Message.Contains("ARP-speaking interface"));
        Assert.That(() => TunnelPlanner.Plan(new TunnelOptions([]), host), Throws.InstanceOf<NodeException>().With.Message.Contains("at least one VIP"));
    }

    [Test]
    public void A_vip_that_is_not_local_is_a_note_pointing_at_node_setup()
    {
        FakeHostSystem host = RealServer();
        TunnelPlan plan = TunnelPlanner.Plan(new TunnelOptions([Vip, InetAddress.Parse("198.18.0.101")]), host);
        Assert.That(plan.Notes, Has.Count.EqualTo(1));
        Assert.That(plan.Notes[0], Does.Contain("198.18.0.101").And.Contain("udr node setup --mode tun --vip 198.18.0.101"));
    }

    [Test]
    public void Device_changes_turn_rp_filter_off_on_the_device_and_all_then_bring_it_up_and_only_what_is_needed()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        host.Sysctls[SysctlKey.Conf("all", ConfSetting.RpFilter).RelativePath] = "1";
        host.Sysctls[SysctlKey.Conf("tunl0", ConfSetting.RpFilter).RelativePath] = "2";
        Assert.That(TunnelPlanner.DeviceChanges(host, "tunl0").Select(c => c.Describe()), Is.EqualTo(new[]
        {
            "sysctl net.ipv4.conf.tunl0.rp_filter: 2 -> 0",
            "sysctl net.ipv4.conf.all.rp_filter: 1 -> 0",
            "link set tunl0 up",
        }));

        FakeHostSystem ready = RealServer();
        AddTunl0(ready, up: true);
        Assert.That(TunnelPlanner.DeviceChanges(ready, "tunl0"), Is.Empty);
        Assert.That(() => TunnelPlanner.DeviceChanges(ready, "nothere"), Throws.InstanceOf<NodeException>());
    }

    [Test]
    public void Node_check_in_tun_mode_warns_until_an_endpoint_device_is_up()
    {
        FakeHostSystem host = RealServer();
        CheckResult Endpoint() => NodeCheck.Run([Vip], NodeMode.Tunnel, null, host).Single(r => r.Check == "tunnel endpoint");
        Assert.That(Endpoint().Status, Is.EqualTo(CheckStatus.Warn));
        Assert.That(Endpoint().Fix, Does.Contain("udr node tunnel --vip 198.18.0.100"));
        host.AddLink("udrtun0", ["POINTOPOINT", "NOARP", "UP"], 1500, linkType: "none");
        Assert.That((Endpoint().Status, Endpoint().Detail), Is.EqualTo((CheckStatus.Pass, "udrtun0 is up (`udr node tunnel`, user space)")));
    }

    [Test]
    public void Kernel_mode_applies_waits_for_the_stop_and_puts_the_host_back_exactly()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        host.Sysctls[SysctlKey.Conf("all", ConfSetting.RpFilter).RelativePath] = "1";
        string before = host.Snapshot();
        // The controller writes on its own thread while this one reads: a StringWriter is not safe for that (a read
        // during an append threw now and then), so writes go through the synchronized wrapper, whose lock the reads take.
        var written = new StringWriter();
        TextWriter output = TextWriter.Synchronized(written);
        string Written()
        {
            lock (output)
            {
                return written.ToString();
            }
        }
        using var stop = new CancellationTokenSource();
        Task<TunnelCounters?> run = Task.Run(() => new TunnelController(host, output).Run(new TunnelOptions([Vip]), stop.Token));

        SpinWait.SpinUntil(() => Written().Contains("ready:", StringComparison.Ordinal), TimeSpan.FromSeconds(10));
        Assert.That(run.IsCompleted, Is.False, "it stays in the foreground");
        Assert.That(host.ReadSysctl(SysctlKey.Conf("all", ConfSetting.RpFilter)), Is.EqualTo("0"));
        Assert.That(host.GetLinks().Single(l => l.Name == "tunl0").IsUp, Is.True);

        stop.Cancel();
        Assert.That(run.Wait(TimeSpan.FromSeconds(10)), Is.True);
        Assert.That(run.Result, Is.Null, "the kernel keeps its own counters");
        Assert.That(host.Snapshot(), Is.EqualTo(before));
        Assert.That(Written(), Does.Contain("udr node tunnel (kernel) on tunl0 for 198.18.0.100").And.Contain("stopped:"));
    }

    [Test]
    public void Kernel_mode_rolls_back_when_a_change_fails_and_reports_it_as_a_node_exception()
    {
        FakeHostSystem host = RealServer();
        AddTunl0(host);
        host.Sysctls[SysctlKey.Conf("all", ConfSetting.RpFilter).RelativePath] = "1";
        host.FailOn.Add("link tunl0 up");
        string before = host.Snapshot();
        using var stop = new CancellationTokenSource();
        Assert.That(() => new TunnelController(host, TextWriter.Null).Run(new TunnelOptions([Vip]), stop.Token),
            Throws.InstanceOf<PlanFailedException>().With.Message.Contains("link set tunl0 up failed").And.Message.Contains("rolled back 1"));
        Assert.That(host.Snapshot(), Is.EqualTo(before));
    }
}
