using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;

namespace UserspaceDr.Io.Runtime;

public enum FrameBackend
{
    /// <summary>TPACKET_V3 rings with fanout and sendmmsg (the default).</summary>
    AfPacket,
    /// <summary>SharpPcap/libpcap: portable, one worker.</summary>
    Pcap,
}

public sealed record DataPlaneOptions(string InterfaceName)
{
    public int Workers { get; init; } = Environment.ProcessorCount;
    public FrameBackend Backend { get; init; } = FrameBackend.AfPacket;
    /// <summary>Connection-table capacity for the whole data plane (split evenly over the workers).</summary>
    public int MaxConnections { get; init; } = 1 << 20;
    public bool AnswerArpForVirtualAddresses { get; init; }
    /// <summary>Install the nftables ingress drop for VIP:ports (keep the kernel from answering service traffic).</summary>
    public bool IsolateKernel { get; init; } = true;
}

/// <summary>
/// The running balancer on one interface: kernel isolation (nftables), neighbour resolution, and the workers, all
/// reading one <see cref="DataPlaneState"/>. <see cref="Reload"/> applies a new rule set hitlessly: real servers
/// carry over by identity, so established connections keep theirs.
/// </summary>
public sealed class DataPlane : IDisposable
{
    private const int DropReportSeconds = 10;

    private readonly DataPlaneOptions _options;
    private readonly ILogger _log;
    private readonly DataPlaneState _state = new();
    private readonly List<IFrameWorker> _workers = [];
    private readonly NftablesGuard? _guard;
    private readonly NeighborResolver _resolver;
    private readonly Timer _monitor;
    private readonly object _reloadLock = new();
    private long _lastDrops;
    private long _lastTransmitErrors;
    private long _lastRingDrops;

    public DataPlane(DataPlaneOptions options, NetworkInterfaceInfo networkInterface, RuleSetSpec rules, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(networkInterface);
        _options = options;
        _log = log;
        Interface = networkInterface;
        RuleSet ruleSet = RuleSet.Build(rules);
        _state.Rules = ruleSet;
        try
        {
            if (options.IsolateKernel)
            {
                _guard = new NftablesGuard(options.InterfaceName);
                _guard.Remove(); // a table left by a crashed run
                _guard.Apply(ruleSet);
                Log.Isolated(log, _guard.TableName);
            }
            _resolver = new NeighborResolver(networkInterface, table => _state.Neighbors = table, log);
            _resolver.SetWanted(RealServerAddresses(ruleSet));
            _resolver.Start();
            _resolver.WaitResolved(TimeSpan.FromSeconds(2));

            var engineOptions = new EngineOptions
            {
                LocalMac = networkInterface.Mac,
                AnswerArpForVirtualAddresses = options.AnswerArpForVirtualAddresses,
            };
            int workers = options.Backend == FrameBackend.Pcap ? 1 : Math.Max(1, options.Workers);
            int perWorker = Math.Max(1024, options.MaxConnections / workers);
            uint[] vips = ruleSet.VirtualAddresses.ToArray();
            // One fanout group per process; flow hash keeps each flow (both directions, it is symmetric) on one worker.
            var fanout = new FanoutOptions((ushort)(Environment.ProcessId & 0xFFFF), FanoutMode.Hash);
            for (int i = 0; i < workers; i++)
            {
                _workers.Add(options.Backend == FrameBackend.Pcap
                    ? new PcapWorker(options.InterfaceName, networkInterface.Mtu, _state, engineOptions, perWorker, vips, log)
                    : new AfPacketWorker(i, options.InterfaceName, _state, engineOptions, perWorker, workers > 1 ? fanout : null, vips, log));
            }
            foreach (IFrameWorker worker in _workers)
            {
                worker.Start();
            }
        }
        catch
        {
            DisposeParts();
            throw;
        }
        _monitor = new Timer(_ => ReportDrops(), null, TimeSpan.FromSeconds(DropReportSeconds), TimeSpan.FromSeconds(DropReportSeconds));
        Log.Started(log, ruleSet.Services.Length, ruleSet.Services.Sum(s => s.Destinations.Length), networkInterface.Name,
            networkInterface.Mac.ToString(), networkInterface.Mtu, _workers.Count, options.Backend.ToString());
    }

    public NetworkInterfaceInfo Interface { get; }
    public RuleSet Rules => _state.Rules;
    public NeighborTable Neighbors => _state.Neighbors;

    private static IEnumerable<uint> RealServerAddresses(RuleSet rules) =>
        rules.Services.SelectMany(s => s.Destinations).Where(d => d.Method == ForwardingMethod.Route).Select(d => d.Address);

    /// <summary>
    /// Applies a new, already validated rule set: the kernel guard first (so a new VIP:port is never answered by the
    /// kernel), then the filters, then the rules the workers read. Throws when nft refuses; nothing is changed then.
    /// </summary>
    public void Reload(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        lock (_reloadLock)
        {
            // All or nothing: every check that can fail comes before RuleSet.Build, which edits the running real
            // servers in place (weights, removal), so a refused change leaves the running state as it was.
            foreach (VirtualServiceSpec service in rules.Services)
            {
                if (!Core.Scheduling.SchedulerFactory.IsKnown(service.Scheduler))
                {
                    throw new ArgumentException($"Scheduler '{service.Scheduler}' is not implemented.", nameof(rules));
                }
            }
            _guard?.Apply(rules);
            RuleSet previous = _state.Rules;
            RuleSet next = RuleSet.Build(rules, previous);
            uint[] vips = next.VirtualAddresses.ToArray();
            if (!vips.AsSpan().SequenceEqual(previous.VirtualAddresses))
            {
                foreach (IFrameWorker worker in _workers)
                {
                    worker.UpdateVirtualAddresses(vips);
                }
            }
            _resolver.SetWanted(RealServerAddresses(next));
            _state.Rules = next;
            Log.RulesApplied(_log, string.Create(CultureInfo.InvariantCulture,
                $"{next.Services.Length} service(s), {next.Services.Sum(s => s.Destinations.Length)} real server(s)"));
        }
    }

    /// <summary>Sums one reason over all workers.</summary>
    public long Count(FrameReason reason) => _workers.Sum(w => w.Counters[reason]);

    public TrafficCounters Traffic(RealServer server)
    {
        var total = default(TrafficCounters);
        foreach (IFrameWorker worker in _workers)
        {
            total.Add(worker.Counters.Read(server));
        }
        return total;
    }

    public int Connections => _workers.Sum(w => w.Connections);

    /// <summary>How many connections the data plane can hold (all workers together).</summary>
    public int ConnectionCapacity => _workers.Sum(w => w.ConnectionCapacity);

    /// <summary>The timeouts in force (ipvsadm --set); workers pick a new value up between batches.</summary>
    public Core.Connections.Timeouts Timeouts
    {
        get => _state.Timeouts;
        set => _state.Timeouts = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>
    /// A copy of every worker's connections (ipvsadm -L -c), each taken by the worker itself between two batches.
    /// Throws <see cref="TimeoutException"/> when a worker does not answer within <paramref name="timeout"/>.
    /// </summary>
    public List<Core.Connections.Connection> SnapshotConnections(TimeSpan timeout)
    {
        var all = new List<Core.Connections.Connection>();
        foreach (IFrameWorker worker in _workers)
        {
            List<Core.Connections.Connection> part = worker.Snapshots.Take(timeout)
                ?? throw new TimeoutException($"a worker did not hand over its connections within {timeout.TotalSeconds:0.#} s");
            all.AddRange(part);
        }
        return all;
    }

    /// <summary>Every non-zero reason, e.g. "forwarded=812 tcp-not-syn=3".</summary>
    public string Totals()
    {
        var text = new StringBuilder();
        for (int i = 0; i < FrameReasons.Count; i++)
        {
            long count = Count((FrameReason)i);
            if (count != 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"{FrameReasons.Name((FrameReason)i)}={count} ");
            }
        }
        long transmitErrors = _workers.Sum(w => w.TransmitErrors);
        if (transmitErrors != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"transmit-errors={transmitErrors} ");
        }
        long ringDrops = _workers.Sum(w => w.RingDrops);
        if (ringDrops != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"ring-drops={ringDrops} ");
        }
        return text.Length == 0 ? "no frames" : text.ToString().TrimEnd();
    }

    private void ReportDrops()
    {
        long drops = 0;
        var reasons = new StringBuilder();
        for (int i = 0; i < FrameReasons.Count; i++)
        {
            var reason = (FrameReason)i;
            if (FrameReasons.VerdictOf(reason) == Verdict.Drop)
            {
                long count = Count(reason);
                drops += count;
                if (count != 0)
                {
                    reasons.Append(CultureInfo.InvariantCulture, $"{FrameReasons.Name(reason)}={count} ");
                }
            }
        }
        if (drops > _lastDrops)
        {
            Log.Drops(_log, drops - _lastDrops, DropReportSeconds, "totals " + reasons.ToString().TrimEnd());
        }
        _lastDrops = drops;
        long transmitErrors = _workers.Sum(w => w.TransmitErrors);
        if (transmitErrors > _lastTransmitErrors)
        {
            Log.TransmitErrors(_log, transmitErrors - _lastTransmitErrors, DropReportSeconds, _workers.Max(w => w.LastTransmitErrno));
        }
        _lastTransmitErrors = transmitErrors;
        long ringDrops = _workers.Sum(w => w.RingDrops);
        if (ringDrops > _lastRingDrops)
        {
            Log.Drops(_log, ringDrops - _lastRingDrops, DropReportSeconds, "receive ring full: the workers fell behind (ring-drops)");
        }
        _lastRingDrops = ringDrops;
    }

    private void DisposeParts()
    {
        foreach (IFrameWorker worker in _workers)
        {
            worker.Dispose();
        }
        _resolver?.Dispose();
        _guard?.Dispose();
    }

    public void Dispose()
    {
        _monitor.Dispose();
        string totals = Totals();
        DisposeParts();
        Log.Stopped(_log, totals);
    }
}
