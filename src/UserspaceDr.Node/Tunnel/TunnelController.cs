using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node.Plans;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// `udr node tunnel`: decide kernel or user endpoint, make the changes it needs, stay until <c>stop</c>, then put
/// back exactly what was changed. Refusals and failed setup are <see cref="NodeException"/>s (the CLI: one line, exit
/// 2) thrown after everything already changed has been put back.
/// </summary>
public sealed class TunnelController(IHostSystem host, TextWriter output)
{
    /// <summary>Where the user-space endpoint learns this node's own addresses (replaceable for tests).</summary>
    public Func<AddressSet> LocalAddressSource { get; init; } = LocalAddresses.Read;

    /// <summary>Runs until <paramref name="stop"/> is cancelled; returns the user-space endpoint's counters (null in kernel mode).</summary>
    public TunnelCounters? Run(TunnelOptions options, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(options);
        TunnelPlan plan = TunnelPlanner.Plan(options, host);
        string vips = string.Join(", ", options.Vips);
        output.WriteLine($"udr node tunnel ({(plan.Mode == TunnelMode.Kernel ? "kernel" : "user")}) on {plan.Device} for {vips}: {plan.Reason}");
        foreach (string note in plan.Notes)
        {
            output.WriteLine("note: " + note);
        }
        return plan.Mode == TunnelMode.Kernel ? RunKernel(plan, stop) : RunUser(plan, options, stop);
    }

    /// <summary>The ready line, and READY=1 to systemd when it started this (udr-tunnel@.service is Type=notify).</summary>
    private void Ready(string line)
    {
        output.WriteLine(line);
        output.Flush();
        new SystemdNotifier().Ready(line);
    }

    private TunnelCounters? RunKernel(TunnelPlan plan, CancellationToken stop)
    {
        IReadOnlyList<NodeChange> changes = TunnelPlanner.DeviceChanges(host, plan.Device);
        Apply(changes);
        Ready($"ready: the kernel decapsulates on {plan.Device} (counters: ip -s link show {plan.Device}); stop with SIGINT or SIGTERM");
        try
        {
            stop.WaitHandle.WaitOne();
        }
        finally
        {
            Revert(changes);
        }
        output.WriteLine($"stopped: {plan.Device} and the sysctls are as they were before");
        return null;
    }

    private TunnelCounters RunUser(TunnelPlan plan, TunnelOptions options, CancellationToken stop)
    {
        var counters = new TunnelCounters();
        long reported = 0;
        using (UserTunnelEndpoint endpoint = UserTunnelEndpoint.Open(plan.Device, options.Vips.Any(v => v.IsIPv4), options.Vips.Any(v => v.IsIPv6),
            options.Type, options.GuePort))
        {
            IReadOnlyList<NodeChange> changes = TunnelPlanner.DeviceChanges(host, plan.Device, ipv6: options.Vips.Any(v => v.IsIPv6));
            Apply(changes);
            try
            {
                Ready($"ready: tunnel packets to this node are decapsulated into {plan.Device}; stop with SIGINT or SIGTERM");
                endpoint.Run(new AddressSet(options.Vips), LocalAddressSource, counters, stop, options.StatsInterval, Report);
            }
            finally
            {
                // The device's own sysctls go with it; "all" must be put back by hand. Revert before closing, while
                // the device still exists.
                Revert(changes);
            }
        }
        output.WriteLine($"stopped: {plan.Device} removed, sysctls as they were before; {counters.Format()}");
        return counters;

        // Low rate, and only when something happened since the last line.
        void Report(TunnelCounters current)
        {
            if (current.Version == reported)
            {
                return;
            }
            reported = current.Version;
            output.WriteLine($"counters: {current.Format()}");
            output.Flush();
        }
    }

    private void Apply(IReadOnlyList<NodeChange> changes)
    {
        PlanExecutor.Apply(changes, host, change => output.WriteLine("  " + change.Describe()));
    }

    /// <summary>Newest first; a change that cannot be undone is reported and the rest are still undone.</summary>
    private void Revert(IReadOnlyList<NodeChange> changes)
    {
        for (int i = changes.Count - 1; i >= 0; i--)
        {
            try
            {
                changes[i].Revert(host);
                output.WriteLine($"  undone: {changes[i].Describe()}");
            }
            catch (HostException e)
            {
                output.WriteLine($"warning: could not undo {changes[i].Describe()}: {e.Message}");
            }
        }
    }
}
