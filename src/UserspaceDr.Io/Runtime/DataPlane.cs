using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Runtime;

public enum FrameBackend
{
    /// <summary>TPACKET_V2 rings with fanout and sendmmsg (the default).</summary>
    AfPacket,
    /// <summary>SharpPcap/libpcap: portable, one worker.</summary>
    Pcap,
    /// <summary>AF_XDP sockets fed by udr's XDP program (libbpf), one worker.</summary>
    Xdp,
}

/// <param name="InterfaceNames">The interfaces udr serves, in link order (link 0 first); VIP traffic may arrive on any.</param>
public sealed record DataPlaneOptions(IReadOnlyList<string> InterfaceNames)
{
    /// <summary>One interface: the simple case.</summary>
    public DataPlaneOptions(string interfaceName)
        : this([interfaceName])
    {
    }

    /// <summary>The first interface (link 0).</summary>
    public string InterfaceName => InterfaceNames[0];

    public int Workers { get; init; } = Environment.ProcessorCount;
    public FrameBackend Backend { get; init; } = FrameBackend.AfPacket;
    /// <summary>Connection-table capacity for the whole data plane (split evenly over the workers).</summary>
    public int MaxConnections { get; init; } = 1 << 20;
    public bool AnswerArpForVirtualAddresses { get; init; }
    /// <summary>Install the nftables ingress drop for VIP:ports and NAT replies (keep the kernel out of udr's traffic).</summary>
    public bool IsolateKernel { get; init; } = true;

    /// <summary>IPVS's expire_nodest_conn (default off): see <see cref="EngineOptions.ExpireNoDestinationConnection"/>.</summary>
    public bool ExpireNoDestinationConnection { get; init; }

    /// <summary>IPVS's expire_quiescent_template (default off): see <see cref="EngineOptions.ExpireQuiescentTemplate"/>.</summary>
    public bool ExpireQuiescentTemplate { get; init; }

    /// <summary>IPVS's sloppy_tcp (default off): see <see cref="EngineOptions.SloppyTcp"/>.</summary>
    public bool SloppyTcp { get; init; }

    /// <summary>VIPs whose servability a carrier device tells a routing daemon (<see cref="VipAnnouncer"/>).</summary>
    public IReadOnlyList<VipAnnouncement> Announcements { get; init; } = [];

    /// <summary>IPVS's backup_only (default off): while a backup sync daemon runs, take in no service traffic (<see cref="DataPlane.Standby"/>).</summary>
    public bool BackupOnly { get; init; }

    /// <summary>drop_entry (default on): see <see cref="EngineOptions.DropEntry"/>.</summary>
    public bool DropEntry { get; init; } = true;

    /// <summary>secure_tcp (default 1): see <see cref="EngineOptions.SecureTcp"/>.</summary>
    public int SecureTcp { get; init; } = 1;

    /// <summary>Table fill in percent at which secure_tcp 1/2 turns on: see <see cref="EngineOptions.DefenseThresholdPercent"/>.</summary>
    public int DefenseThresholdPercent { get; init; } = 75;

    /// <summary>
    /// AF_PACKET: while a worker handles more than 40,000 frames/s, how long it waits after a turn of few frames so
    /// that the next is fuller (fewer system calls per frame, up to this much more latency per frame); 0: never.
    /// </summary>
    public int CoalesceMicroseconds { get; init; }

    /// <summary>AF_PACKET and AF_XDP: --busy-poll-usecs, how long a worker spins for the next frames after the last (<see cref="Linux.Host.BusyPoll"/>); 0: never.</summary>
    public int BusyPollMicroseconds { get; init; }

    /// <summary>
    /// --cpus: worker i's thread(s) run on CPU WorkerCpus[i] only; one per worker (<see cref="FrameWorkers.Count"/>).
    /// Null: the scheduler places them.
    /// </summary>
    public IReadOnlyList<int>? WorkerCpus { get; init; }
}

/// <summary>
/// The running balancer on one or more interfaces (links): kernel isolation (nftables, per link), route and
/// neighbour resolution, and the workers (each with a ring on every link), all reading one
/// <see cref="DataPlaneState"/>. <see cref="Reload"/> applies a new rule set hitlessly: real servers carry over by
/// identity, so established connections keep theirs.
/// </summary>
public sealed class DataPlane : IDisposable
{
    private const int DropReportSeconds = 10;

    private readonly DataPlaneOptions _options;
    private readonly ILogger _log;
    private readonly LocalDelivery _localDelivery = new();
    private readonly LocalNatTable _localNat = new();
    private readonly DataPlaneState _state;
    private readonly List<IFrameWorker> _workers = [];
    private readonly List<NftablesGuard> _guards = [];
    private readonly NeighborResolver _resolver;
    private readonly Timer _monitor;
    private readonly object _reloadLock = new();
    private readonly uint[] _ownAddresses;
    private readonly UInt128[] _ownIpv6Addresses;
    private TrafficSelection _traffic;
    private bool _standby;
    private ClassicBpfProgram? _steering;
    private long _lastDrops;
    private long _lastTransmitErrors;
    private long _lastRingDrops;
    private readonly VipAnnouncer? _announcer;
    private (long DropEntryEvicted, long SecureTcpShortSynRecv) _lastDefense;

    /// <summary>One interface: the simple case.</summary>
    public DataPlane(DataPlaneOptions options, LinkInfo networkInterface, RuleSetSpec rules, ILogger log)
        : this(options, [networkInterface], rules, log)
    {
    }

    /// <param name="links">The served interfaces, in the order of <see cref="DataPlaneOptions.InterfaceNames"/>.</param>
    public DataPlane(DataPlaneOptions options, IReadOnlyList<LinkInfo> links, RuleSetSpec rules, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(links);
        if (links.Count == 0 || links.Count > ForwardingEngine.MaxLinks)
        {
            throw new ArgumentException($"1 to {ForwardingEngine.MaxLinks} interfaces, not {links.Count}", nameof(links));
        }
        if (links.Select(l => l.Name).Distinct(StringComparer.Ordinal).Count() != links.Count)
        {
            throw new ArgumentException("an interface is named twice", nameof(links));
        }
        _options = options;
        _log = log;
        Links = links;
        _state = new DataPlaneState { LocalDelivery = _localDelivery };
        RuleSet ruleSet = RuleSet.Build(rules);
        _state.Update(s => s.WithRules(ruleSet));
        _ownAddresses = [.. links.SelectMany(l => l.Addresses).Select(a => a.Address).Where(a => a != 0).Distinct().Order()];
        _ownIpv6Addresses = [.. links.SelectMany(l => l.Ipv6Addresses).Select(a => a.Address.IPv6).Distinct().Order()];
        _traffic = TrafficSelection.From(ruleSet, _ownAddresses);
        try
        {
            if (options.IsolateKernel)
            {
                foreach (LinkInfo link in links)
                {
                    var guard = new NftablesGuard(link.Name, _ownAddresses, _ownIpv6Addresses);
                    _guards.Add(guard);
                    guard.Remove(); // a table left by a crashed run
                    guard.Apply(ruleSet);
                    Log.Isolated(log, guard.TableName);
                }
            }
            _localNat.Remove(); // a table left by a crashed run
            _localNat.Apply(rules);
            // Link links.Count is the balancer's own stack (real servers on the balancer itself).
            _resolver = new NeighborResolver(links, table => _state.Update(s => s.WithNeighbors(table)), log, local: _localDelivery);
            _resolver.SetWanted(RuleSetTraffic.RealServers(rules));
            Announce(ruleSet);
            LogTableDigests(ruleSet);
            _resolver.Start();
            _resolver.WaitResolved(TimeSpan.FromSeconds(2));

            var engineLinks = links.Select(l => new EngineLink(l.Mac, l.Mtu, l.Addresses.Count > 0 ? l.Addresses[0].Address : 0,
                l.Ipv6Addresses.FirstOrDefault(a => a.Scope == "global")?.Address.IPv6 ?? UInt128.Zero))
                .Append(new EngineLink(LocalDelivery.UdrMac, ServerRoute.LocalMtu)).ToArray();
            for (int i = 0; i < links.Count; i++)
            {
                Log.LinkServed(log, i, links[i].Name, links[i].Mac.ToString(), links[i].Mtu, Ipv4Address.Format(engineLinks[i].Address));
            }
            var engineOptions = new EngineOptions
            {
                LocalMac = links[0].Mac,
                Links = engineLinks,
                LocalLink = links.Count,
                AnswerArpForVirtualAddresses = options.AnswerArpForVirtualAddresses,
                ExpireNoDestinationConnection = options.ExpireNoDestinationConnection,
                ExpireQuiescentTemplate = options.ExpireQuiescentTemplate,
                SloppyTcp = options.SloppyTcp,
                DropEntry = options.DropEntry,
                SecureTcp = options.SecureTcp,
                DefenseThresholdPercent = options.DefenseThresholdPercent,
            };
            int workers = FrameWorkers.Count(options.Backend, options.Workers);
            if (options.WorkerCpus is { } pinned && pinned.Count != workers)
            {
                throw new ArgumentException($"--cpus names {pinned.Count} CPU(s) for {workers} worker(s): one each", nameof(options));
            }
            int perWorker = Math.Max(1024, options.MaxConnections / workers);
            // One PACKET_FANOUT_CBPF group per link (groups are per device), all steered by the client address (see
            // FanoutSteering): both directions of a NAT connection, on whatever links they arrive, meet in one worker.
            FanoutOptions[]? fanouts = null;
            if (workers > 1 && options.Backend == FrameBackend.AfPacket)
            {
                _steering = Steering(ruleSet, workers);
                int baseId = (Environment.ProcessId & 0x3FF) << 6;
                fanouts = [.. Enumerable.Range(0, links.Count).Select(i =>
                    new FanoutOptions((ushort)(baseId | i), FanoutMode.ClassicBpf) { Program = _steering })];
            }
            for (int i = 0; i < workers; i++)
            {
                // Join order = worker index: the steering program's result i is the i-th member of every group.
                _workers.Add(FrameWorkers.Create(options.Backend, i, links, _state, engineOptions, perWorker, fanouts, _traffic, log,
                    options.CoalesceMicroseconds, options.BusyPollMicroseconds));
            }
            for (int i = 0; i < _workers.Count; i++)
            {
                _workers[i].Start(options.WorkerCpus is { } cpus ? cpus[i] : null);
            }
            if (options.Announcements.Count > 0)
            {
                // Last: a route is announced only once the workers forward.
                _announcer = new VipAnnouncer(options.Announcements, log);
                _announcer.Update(ruleSet, _standby);
            }
        }
        catch
        {
            DisposeParts();
            throw;
        }
        _monitor = new Timer(_ => ReportDrops(), null, TimeSpan.FromSeconds(DropReportSeconds), TimeSpan.FromSeconds(DropReportSeconds));
        Log.Started(log, ruleSet.Services.Length, ruleSet.Services.Sum(s => s.Destinations.Length), string.Join(", ", links.Select(l => l.Name)),
            links[0].Mac.ToString(), links[0].Mtu, _workers.Count, options.Backend.ToString());
    }

    /// <summary>The served interfaces, by link index.</summary>
    public IReadOnlyList<LinkInfo> Links { get; }

    /// <summary>Link 0.</summary>
    public LinkInfo Interface => Links[0];
    public RuleSet Rules => _state.Rules;
    public NeighborTable Neighbors => _state.Neighbors;

    /// <summary>
    /// Applies a new, already validated rule set: the kernel guards first (so a new VIP:port is never answered by the
    /// kernel), then the filters and the steering program, then the rules the workers read. Throws when nft refuses;
    /// nothing is changed then (a guard already replaced on an earlier link is put back).
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
            RuleSet previous = _state.Rules;
            _ = _localNat.LocalNatServers(rules); // refuses a service with two NAT servers on the balancer itself
            for (int i = 0; i <= _guards.Count; i++)
            {
                try
                {
                    if (i < _guards.Count)
                    {
                        _guards[i].Apply(rules);
                    }
                    else
                    {
                        _localNat.Apply(rules);
                    }
                }
                catch (InvalidOperationException)
                {
                    for (int j = 0; j < i; j++)
                    {
                        _guards[j].Apply(previous.Spec);
                    }
                    throw;
                }
            }
            RuleSet next = RuleSet.Build(rules, previous);
            Select(next);
            if (_steering is not null)
            {
                ClassicBpfProgram steering = Steering(next, _workers.Count);
                if (!steering.Instructions.SequenceEqual(_steering.Instructions) && _workers.Count > 0)
                {
                    _workers[0].ReplaceFanoutProgram(steering); // one member's call replaces the program of the whole group
                    _steering = steering;
                }
            }
            _resolver.SetWanted(RuleSetTraffic.RealServers(rules));
            Announce(next);
            _state.Update(s => s.WithRules(next));
            Log.RulesApplied(_log, string.Create(CultureInfo.InvariantCulture,
                $"{next.Services.Length} service(s), {next.Services.Sum(s => s.Destinations.Length)} real server(s)"));
            LogTableDigests(next);
            _announcer?.Update(next, _standby);
        }
    }

    /// <summary>Frames that could not be sent: the workers' transmit errors and the writes the local stack refused.</summary>
    private long TransmitErrors => _workers.Sum(w => w.TransmitErrors) + _localDelivery.Failed;

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

    /// <summary>
    /// Each worker's counters as they stand, for a reader on another thread (the metrics endpoint): plain reads of the
    /// fields only their worker writes, so a reader takes no lock and the workers never wait on it.
    /// </summary>
    public IReadOnlyList<WorkerReading> ReadWorkers() =>
        [.. _workers.Select((w, index) => new WorkerReading(index, w.Counters.ReadReasons(), w.RingDrops, w.TransmitErrors, w.Connections,
            w.ConnectionCapacity, Volatile.Read(ref w.Counters.DropEntryEvicted), Volatile.Read(ref w.Counters.SecureTcpShortSynRecv),
            w.CoalesceWaitMicroseconds, w.BusyPollTurns.Frames, w.BusyPollTurns.Slept))];

    /// <summary>Each real server of the rules in force, and whether the MAC of its next hop is known (frames for it can leave).</summary>
    public IReadOnlyList<(InetAddress Server, bool Resolved)> NeighborStates()
    {
        NeighborTable neighbors = _state.Neighbors;
        return [.. RuleSetTraffic.RealServers(_state.Rules.Spec).Select(address =>
            (address, address.IsIPv4 ? neighbors.TryGet(address.IPv4, out _) : neighbors.TryGet(address.IPv6, out _)))];
    }

    /// <summary>How many connections the data plane can hold (all workers together).</summary>
    public int ConnectionCapacity => _workers.Sum(w => w.ConnectionCapacity);

    /// <summary>The timeouts in force (ipvsadm --set); workers pick a new value up between batches.</summary>
    public Core.Connections.Timeouts Timeouts
    {
        get => _state.Timeouts;
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            _state.Update(s => s.WithTimeouts(value));
        }
    }

    /// <summary>
    /// A copy of every worker's connections (ipvsadm -L -c), each taken by the worker itself between two batches.
    /// Throws <see cref="TimeoutException"/> when a worker does not answer within <paramref name="timeout"/>.
    /// </summary>
    public ConnectionSnapshot SnapshotConnections(TimeSpan timeout)
    {
        var ipv4 = new List<Core.Connections.Connection<uint>>();
        var ipv6 = new List<Core.Connections.Connection<UInt128>>();
        foreach (IFrameWorker worker in _workers)
        {
            ConnectionSnapshot part = worker.Snapshots.Take(timeout)
                ?? throw new TimeoutException($"a worker did not hand over its connections within {timeout.TotalSeconds:0.#} s");
            ipv4.AddRange(part.Ipv4);
            ipv6.AddRange(part.Ipv6);
        }
        return new ConnectionSnapshot(ipv4, ipv6);
    }

    /// <summary>
    /// A backup's sync: hands each connection to the worker whose table holds its client's flows (the fanout steering
    /// by client address, as the kernel would deliver its packets), to be applied between that worker's batches.
    /// Returns how many were refused because a worker's inbox was full.
    /// </summary>
    public int ApplySync(IEnumerable<Core.Connections.SyncedConnection> synced)
    {
        ArgumentNullException.ThrowIfNull(synced);
        uint clientMask = RuleSetTraffic.ClientMask(_state.Rules.Spec);
        int ipv6Prefix = RuleSetTraffic.Ipv6ClientPrefix(_state.Rules.Spec);
        int refused = 0;
        foreach (Core.Connections.SyncedConnection connection in synced)
        {
            InetAddress client = connection.ClientAddress;
            int worker = _workers.Count == 1 ? 0
                : client.IsIPv4 ? FanoutSteering.WorkerOf(client.IPv4, _workers.Count, clientMask)
                : FanoutSteering.WorkerOf(client.IPv6, _workers.Count, ipv6Prefix);
            refused += _workers[worker].SyncInbox.Post(connection) ? 0 : 1;
        }
        return refused;
    }

    /// <summary>Whether the backup sync daemon puts this data plane in <see cref="Standby"/> (IPVS's backup_only).</summary>
    public bool BackupOnly => _options.BackupOnly;

    /// <summary>
    /// IPVS's backup_only while a backup sync daemon runs: the workers take in no service traffic (see
    /// <see cref="TrafficSelection.From"/>) until it is cleared; sync keeps filling their tables meanwhile.
    /// </summary>
    public bool Standby
    {
        get => _standby;
        set
        {
            lock (_reloadLock)
            {
                _standby = value;
                Select(_state.Rules);
                _announcer?.Update(_state.Rules, _standby);
            }
        }
    }

    /// <summary>
    /// Each hashing scheduler's lookup-table digest: balancers behind one ECMP router must log the same one for a
    /// service, or they split its flows between servers.
    /// </summary>
    private void LogTableDigests(RuleSet rules)
    {
        foreach (VirtualService service in rules.Services)
        {
            if (service.Scheduler.TableDigest is ulong digest)
            {
                Log.SchedulerTable(_log, service.ToString(), service.SchedulerName, digest.ToString("x16", CultureInfo.InvariantCulture));
            }
        }
    }

    /// <summary>With udr answering for the VIPs, the IPv6 ones are announced by unsolicited advertisements (the kernel's otherwise).</summary>
    private void Announce(RuleSet rules)
    {
        if (_options.AnswerArpForVirtualAddresses)
        {
            _resolver.SetAnnounced(rules.Ipv6VirtualAddresses.ToArray());
        }
    }

    /// <summary>The fanout steering program for <paramref name="rules"/> over <paramref name="workers"/> workers.</summary>
    private ClassicBpfProgram Steering(RuleSet rules, int workers) =>
        FanoutSteering.Build(rules.VirtualAddresses.ToArray(), workers, RuleSetTraffic.ClientMask(rules.Spec), RuleSetTraffic.Ipv6ClientPrefix(rules.Spec),
            rules.Ipv6VirtualAddresses.ToArray(), _ownAddresses);

    /// <summary>Under the reload lock: narrows or widens what the kernel hands the workers for <paramref name="rules"/>.</summary>
    private void Select(RuleSet rules)
    {
        var traffic = TrafficSelection.From(rules, _ownAddresses, _standby);
        if (!traffic.SameAs(_traffic))
        {
            foreach (IFrameWorker worker in _workers)
            {
                worker.UpdateTraffic(traffic);
            }
            _traffic = traffic;
            Log.TrafficSelected(_log, _standby ? "standby (backup_only): no service traffic taken in" : "serving");
        }
    }

    /// <summary>Makes every worker count packets for sync and post connections (a master), or stop doing so.</summary>
    public void EnableSyncMaster(bool enabled)
    {
        foreach (IFrameWorker worker in _workers)
        {
            worker.SyncOutbox.Enabled = enabled;
        }
    }

    /// <summary>A master's sender: collects what every worker posted since the last call; returns how many.</summary>
    public int DrainSync(List<Core.Connections.SyncedConnection> into)
    {
        int count = 0;
        foreach (IFrameWorker worker in _workers)
        {
            count += worker.SyncOutbox.Drain(into);
        }
        return count;
    }

    /// <summary>Connections the workers could not post because the sender fell behind.</summary>
    public long SyncOverflows => _workers.Sum(w => w.SyncOutbox.Overflows);

    /// <summary>How many synced connections all workers applied with <paramref name="outcome"/>.</summary>
    public long SyncCount(Core.Connections.SyncApplyOutcome outcome) => _workers.Sum(w => w.SyncInbox.Count(outcome));

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
        long transmitErrors = TransmitErrors;
        if (transmitErrors != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"transmit-errors={transmitErrors} ");
        }
        long ringDrops = _workers.Sum(w => w.RingDrops);
        if (ringDrops != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"ring-drops={ringDrops} ");
        }
        (long evicted, long shortened) = DefenseCounts();
        if (evicted != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"drop-entry-evicted={evicted} ");
        }
        if (shortened != 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"secure-tcp-short-syn-recv={shortened} ");
        }
        return text.Length == 0 ? "no frames" : text.ToString().TrimEnd();
    }

    /// <summary>The SYN-flood defenses' actions so far: half-open entries drop_entry evicted, connections secure_tcp armed short.</summary>
    public (long DropEntryEvicted, long SecureTcpShortSynRecv) DefenseCounts() =>
        (_workers.Sum(w => Volatile.Read(ref w.Counters.DropEntryEvicted)), _workers.Sum(w => Volatile.Read(ref w.Counters.SecureTcpShortSynRecv)));

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
        long transmitErrors = TransmitErrors;
        if (transmitErrors > _lastTransmitErrors)
        {
            Log.TransmitErrors(_log, transmitErrors - _lastTransmitErrors, DropReportSeconds,
                Math.Max(_workers.Max(w => w.LastTransmitErrno), _localDelivery.LastErrno));
        }
        _lastTransmitErrors = transmitErrors;
        long ringDrops = _workers.Sum(w => w.RingDrops);
        if (ringDrops > _lastRingDrops)
        {
            Log.Drops(_log, ringDrops - _lastRingDrops, DropReportSeconds, "receive ring full: the workers fell behind (ring-drops)");
        }
        _lastRingDrops = ringDrops;
        (long evicted, long shortened) = DefenseCounts();
        if (evicted > _lastDefense.DropEntryEvicted || shortened > _lastDefense.SecureTcpShortSynRecv)
        {
            Log.Defense(_log, evicted - _lastDefense.DropEntryEvicted, shortened - _lastDefense.SecureTcpShortSynRecv, DropReportSeconds);
        }
        _lastDefense = (evicted, shortened);
    }

    private void DisposeParts()
    {
        _announcer?.Dispose(); // first: the routes are withdrawn before the workers stop forwarding
        foreach (IFrameWorker worker in _workers)
        {
            worker.Dispose();
        }
        _resolver?.Dispose();
        _localDelivery.Dispose(); // after the workers, which write to it, and the resolver, which makes it
        _localNat.Dispose();
        foreach (NftablesGuard guard in _guards)
        {
            guard.Dispose();
        }
    }

    public void Dispose()
    {
        _monitor.Dispose();
        string totals = Totals();
        DisposeParts();
        Log.Stopped(_log, totals);
        // What the runtime's collector cost while udr ran: a pause stops the workers as a stall does (the ring holds it).
        Log.Collector(_log, GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), (long)GC.GetTotalPauseDuration().TotalMilliseconds,
            GC.GetTotalAllocatedBytes() >> 20);
    }
}
