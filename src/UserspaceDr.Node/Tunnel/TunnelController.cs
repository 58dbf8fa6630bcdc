using System.Globalization;
using System.Runtime.ExceptionServices;
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
        int queueCount = options.Queues;
        TunnelCounters[] queues = [.. Enumerable.Range(0, queueCount).Select(_ => new TunnelCounters())];
        long reported = 0;
        var endpoints = new List<UserTunnelEndpoint>(queueCount);
        try
        {
            // Queue 0 creates the device; each further one attaches a queue of it.
            for (int queue = 0; queue < queueCount; queue++)
            {
                endpoints.Add(UserTunnelEndpoint.Open(plan.Device, options.Vips.Any(v => v.IsIPv4), options.Vips.Any(v => v.IsIPv6),
                    options.Type, options.GuePort, queue, queueCount));
            }
            IReadOnlyList<NodeChange> changes = TunnelPlanner.DeviceChanges(host, plan.Device, ipv6: options.Vips.Any(v => v.IsIPv6));
            Apply(changes);
            try
            {
                string queuesNote = queueCount > 1
                    ? string.Create(CultureInfo.InvariantCulture, $" ({queueCount} queues, a thread each)")
                    : "";
                Ready($"ready: tunnel packets to this node are decapsulated into {plan.Device}{queuesNote}; stop with SIGINT or SIGTERM");
                RunQueues(endpoints, queues, new AddressSet(options.Vips), options.StatsInterval, options.BusyPollMicroseconds, Report, stop);
            }
            finally
            {
                // The device's own sysctls go with it; "all" must be put back by hand. Revert before closing, while
                // the device still exists.
                Revert(changes);
            }
        }
        finally
        {
            foreach (UserTunnelEndpoint endpoint in endpoints)
            {
                endpoint.Dispose(); // the last queue closed removes the device
            }
        }
        TunnelCounters total = TunnelCounters.Sum(queues);
        output.WriteLine($"stopped: {plan.Device} removed, sysctls as they were before; {total.Format()}{PerQueue()}{BusyPolled()}");
        return total;

        // What spinning bought: the turns that took packets without sleeping, all queues together.
        string BusyPolled() => options.BusyPollMicroseconds > 0
            ? string.Create(CultureInfo.InvariantCulture,
                $"; busy polling: {endpoints.Sum(e => e.BusyPolling?.Hits ?? 0)} turn(s) took packets without a wake-up, {endpoints.Sum(e => e.BusyPolling?.Misses ?? 0)} slept")
            : "";

        // How the packets fell to the queues: an uneven split shows here (a few heavy flows, or one client).
        string PerQueue() => queueCount > 1
            ? $"; received per queue {string.Join('/', queues.Select(q => q.Received.ToString(CultureInfo.InvariantCulture)))}"
            : "";

        // Low rate, and only when something happened since the last line.
        void Report()
        {
            TunnelCounters current = TunnelCounters.Sum(queues);
            if (current.Version == reported)
            {
                return;
            }
            reported = current.Version;
            output.WriteLine($"counters: {current.Format()}{PerQueue()}");
            output.Flush();
        }
    }

    /// <summary>
    /// Runs queue 0 on this thread (it also reports) and every further queue on a thread of its own, until
    /// <paramref name="stop"/>; a queue that fails stops the others, and its exception is rethrown once all have ended.
    /// </summary>
    private void RunQueues(List<UserTunnelEndpoint> endpoints, TunnelCounters[] counters, AddressSet vips, TimeSpan reportEvery,
        int busyPollMicroseconds, Action report, CancellationToken stop)
    {
        using var running = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var failures = new Exception?[endpoints.Count];
        var threads = new List<Thread>();
        for (int queue = 1; queue < endpoints.Count; queue++)
        {
            int own = queue;
            var thread = new Thread(() => RunQueue(own)) { IsBackground = true, Name = $"udr-tunnel-{own}" };
            thread.Start();
            threads.Add(thread);
        }
        try
        {
            RunQueue(0);
        }
        finally
        {
            running.Cancel(); // already so when stopped; else queue 0 failed, and the others must end before their endpoints close
            foreach (Thread thread in threads)
            {
                thread.Join();
            }
        }
        if (failures.FirstOrDefault(f => f is not null) is { } failure)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
        }

        void RunQueue(int queue)
        {
            try
            {
                endpoints[queue].Run(vips, LocalAddressSource, counters[queue], running.Token,
                    queue == 0 ? reportEvery : TimeSpan.Zero, queue == 0 ? _ => report() : null, busyPollMicroseconds);
            }
            catch (Exception e) when (e is NodeException or HostException or IOException)
            {
                failures[queue] = e;
                running.Cancel();
            }
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
