using System.Collections.Immutable;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.ControlPlane.Health;

/// <summary>What one checker says now, for the operator's listing.</summary>
public sealed record CheckerStatus(string Service, string Server, string Checker, bool Up, int ConsecutiveFailures, string LastResult, DateTimeOffset Since)
{
    /// <summary>How many times the checker went up or down since it started.</summary>
    public long Transitions { get; init; }
}

/// <summary>
/// Runs keepalived's checkers for a configuration and turns their verdicts into rule-set edits, as keepalived's
/// checker process drives IPVS (ipwrapper.c): a real server is alive while all its checkers are up; its pool entry is
/// removed when it fails (weight 0 with inhibit_on_failure) and put back when it recovers; quorum, with hysteresis,
/// swaps the pool for the sorry server; notify and quorum scripts run on each transition. Each checker is an async
/// loop (a pending socket and a timer, never a thread of its own, never a data-plane thread). Verdicts are applied
/// one at a time through <paramref name="edit"/>, the same validate-and-publish path `udr adm` uses.
/// </summary>
public sealed class HealthMonitor : IAsyncDisposable
{
    /// <summary>The longest a notify or quorum script may run before it is killed.</summary>
    public static readonly TimeSpan ScriptTimeout = TimeSpan.FromSeconds(30);

    private readonly Action<Func<RuleSetSpec, RuleSetSpec>> _edit;
    private readonly ILogger _log;
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private List<ServiceEntry> _services = [];
    private bool _started;

    public HealthMonitor(KeepalivedConfig config, Action<Func<RuleSetSpec, RuleSetSpec>> edit, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(edit);
        ArgumentNullException.ThrowIfNull(log);
        _edit = edit;
        _log = log;
        Config = config;
        _services = Plan(config, []);
    }

    public KeepalivedConfig Config { get; private set; }

    /// <summary>The rule set the checkers' current verdicts give (what to publish at start and after a reload).</summary>
    public RuleSetSpec Rules
    {
        get
        {
            lock (_gate)
            {
                return new RuleSetSpec([.. _services.Select(s => KeepalivedRules.Service(s.Config) with { RealServers = s.Pool() })]);
            }
        }
    }

    /// <summary>Starts every checker's loop.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
            _started = true;
            List<CheckerEntry> checkers = [.. _services.SelectMany(s => s.Servers).SelectMany(r => r.Checkers)];
            foreach (CheckerEntry checker in checkers)
            {
                checker.StartIfNew(this);
            }
            ControlPlaneLog.CheckersStarted(_log, checkers.Count, _services.Sum(s => s.Servers.Length), _services.Count, 0);
        }
    }

    /// <summary>
    /// Takes a new configuration (SIGHUP): checkers whose service, server and settings did not change keep running
    /// with their state, so a reload does not flap the pool; the others stop, new ones start. The rule set the new
    /// configuration gives goes to <paramref name="publish"/> before any checker can edit it.
    /// </summary>
    public void Reload(KeepalivedConfig config, Action<RuleSetSpec> publish)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(publish);
        List<CheckerEntry> old;
        lock (_gate)
        {
            old = [.. _services.SelectMany(s => s.Servers).SelectMany(r => r.Checkers)];
            var reusable = old.ToDictionary(c => c.Key);
            _services = Plan(config, reusable);
            Config = config;
            var kept = new HashSet<CheckerEntry>(_services.SelectMany(s => s.Servers).SelectMany(r => r.Checkers));
            foreach (CheckerEntry gone in old.Where(c => !kept.Contains(c)))
            {
                gone.Cancel();
            }
            if (_started)
            {
                foreach (CheckerEntry checker in kept)
                {
                    checker.StartIfNew(this);
                }
            }
            // Published under the gate: a checker's next edit is made on this rule set, never overwritten by it.
            publish(Rules);
            ControlPlaneLog.CheckersStarted(_log, kept.Count, _services.Sum(s => s.Servers.Length), _services.Count, old.Count(kept.Contains));
        }
    }

    /// <summary>Every checker's state, in configuration order.</summary>
    public IReadOnlyList<CheckerStatus> Status()
    {
        lock (_gate)
        {
            return [.. _services.SelectMany(s => s.Servers.SelectMany(r => r.Checkers.Select(c => new CheckerStatus(
                s.Config.Name, r.Config.Name, c.Config.Keyword, c.State.Up, c.State.ConsecutiveFailures, c.State.LastResult, c.State.Since) { Transitions = c.State.Transitions })))];
        }
    }

    /// <summary>
    /// Stops every checker. With <c>omega</c> (keepalived's do_vs_notifies at shutdown), a service's notify_down runs
    /// for each live server and its quorum_down when its quorum is up, and the daemon waits for them (each within
    /// <see cref="ScriptTimeout"/>).
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        Task[] loops;
        var farewells = new List<Task>();
        lock (_gate)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }
            _stop.Cancel();
            loops = [.. _services.SelectMany(s => s.Servers).SelectMany(r => r.Checkers).Select(c => c.Loop).OfType<Task>()];
            foreach (ServiceEntry service in _services.Where(s => s.Config.Omega))
            {
                foreach (ServerEntry server in service.Servers.Where(r => r.Alive))
                {
                    farewells.Add(RunScriptAsync(server.Config.NotifyDown, $"{server.Config.Name} down (omega, stopping)", CancellationToken.None));
                }
                if (service.QuorumUp)
                {
                    farewells.Add(RunScriptAsync(service.Config.QuorumDown, $"{service.Config.Name} quorum down (omega, stopping)", CancellationToken.None));
                }
            }
        }
        await Task.WhenAll(loops).ConfigureAwait(false);
        await Task.WhenAll(farewells).ConfigureAwait(false);
        _stop.Dispose();
    }

    private List<ServiceEntry> Plan(KeepalivedConfig config, Dictionary<CheckerKey, CheckerEntry> reusable)
    {
        DateTimeOffset now = _time.GetUtcNow();
        var services = new List<ServiceEntry>(config.VirtualServers.Length);
        foreach (VirtualServerConfig vs in config.VirtualServers)
        {
            var service = new ServiceEntry(vs);
            service.Servers = [.. vs.RealServers.Select(rs =>
            {
                var server = new ServerEntry(service, rs);
                server.Checkers = [.. rs.Checkers.Select(checker =>
                {
                    var key = new CheckerKey(vs.Protocol, vs.Name, vs.Port, rs.Address.ToString(), rs.Port, checker with { Place = default });
                    if (reusable.Remove(key, out CheckerEntry? kept))
                    {
                        kept.Adopt(server, checker);
                        return kept;
                    }
                    return new CheckerEntry(server, checker, new CheckerState(checker, now), key);
                })];
                server.Alive = server.Checkers.All(c => c.State.Up);
                server.PublishedWeight = server.Weight;
                return server;
            })];
            service.QuorumUp = KeepalivedRules.LiveWeight(service.Health()) >= vs.Quorum;
            services.Add(service);
        }
        return services;
    }

    /// <summary>One checker's loop: warm-up, then check, record, publish what changed, wait, until stopped.</summary>
    private async Task RunAsync(CheckerEntry checker, IHealthProbe probe, CancellationToken stop)
    {
        await Task.Yield();
        try
        {
            TimeSpan warmup = checker.Config.Warmup;
            if (warmup > TimeSpan.Zero)
            {
                // keepalived spreads the first checks over 0..warmup so that a restart does not check everything at once.
                await Task.Delay(TimeSpan.FromTicks(RandomNumberGenerator.GetInt32((int)Math.Min(warmup.Ticks, int.MaxValue))), _time, stop).ConfigureAwait(false);
            }
            while (true)
            {
                ProbeResult result;
                try
                {
                    result = await probe.CheckAsync(stop).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    ControlPlaneLog.ProbeCrashed(_log, checker.Config.Keyword, checker.Server.Config.Name, e.Message);
                    result = ProbeResult.Failed($"checker error: {e.Message}");
                }
                stop.ThrowIfCancellationRequested();
                TimeSpan next = Observe(checker, result, stop);
                await Task.Delay(next, _time, stop).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped: disposed, or the checker left the configuration.
        }
    }

    /// <summary>Records one check's result and applies what it changes; returns how long until the next check.</summary>
    private TimeSpan Observe(CheckerEntry checker, ProbeResult result, CancellationToken stop)
    {
        lock (_gate)
        {
            (_, TimeSpan next) = checker.State.Record(result, _time.GetUtcNow());
            if (!stop.IsCancellationRequested)
            {
                Update(checker.Server, checker);
            }
            return next;
        }
    }

    /// <summary>
    /// As a checker's loop does with a result: the checker is the <paramref name="checkerIndex"/>th of the
    /// <paramref name="serverIndex"/>th real server of the <paramref name="serviceIndex"/>th virtual server. For tests
    /// that drive the verdicts without sockets or clocks.
    /// </summary>
    internal TimeSpan Observe(int serviceIndex, int serverIndex, int checkerIndex, ProbeResult result)
    {
        CheckerEntry checker;
        lock (_gate)
        {
            checker = _services[serviceIndex].Servers[serverIndex].Checkers[checkerIndex];
        }
        return Observe(checker, result, CancellationToken.None);
    }

    /// <summary>Under the gate: what a checker's new verdict does to its server, the quorum and the pool.</summary>
    private void Update(ServerEntry server, CheckerEntry checker)
    {
        ServiceEntry service = server.Service;
        bool alive = server.Checkers.All(c => c.State.Up);
        int weight = server.Weight;
        bool aliveChanged = alive != server.Alive;
        bool weightChanged = weight != server.PublishedWeight;
        if (!aliveChanged && !weightChanged)
        {
            return;
        }
        server.Alive = alive;
        server.PublishedWeight = weight;
        if (aliveChanged)
        {
            if (alive)
            {
                ControlPlaneLog.ServerUp(_log, server.Config.Name, service.Config.Name, $"{checker.Config.Keyword} {checker.State.LastResult}");
            }
            else
            {
                ControlPlaneLog.ServerDown(_log, server.Config.Name, service.Config.Name, checker.Config.Keyword, checker.State.LastResult);
            }
            RunScript(alive ? server.Config.NotifyUp : server.Config.NotifyDown, $"{server.Config.Name} {(alive ? "up" : "down")}");
        }
        else if (alive)
        {
            ControlPlaneLog.WeightChanged(_log, server.Config.Name, service.Config.Name, weight, checker.State.LastResult);
        }
        UpdateQuorum(service);
        Publish(service);
    }

    /// <summary>update_quorum_state: gained at live weight ≥ quorum + hysteresis, lost below quorum − hysteresis.</summary>
    private void UpdateQuorum(ServiceEntry service)
    {
        VirtualServerConfig vs = service.Config;
        long live = KeepalivedRules.LiveWeight(service.Health());
        if (!service.QuorumUp && live >= (long)vs.Quorum + vs.Hysteresis)
        {
            service.QuorumUp = true;
            ControlPlaneLog.QuorumGained(_log, vs.Name, live, vs.Quorum, vs.Hysteresis);
            RunScript(vs.QuorumUp, $"{vs.Name} quorum up");
        }
        else if (service.QuorumUp && (live < (long)vs.Quorum - vs.Hysteresis || live == 0))
        {
            service.QuorumUp = false;
            ControlPlaneLog.QuorumLost(_log, vs.Name, live, vs.Quorum, vs.Hysteresis,
                vs.SorryServer is null ? "" : $"; serving from the sorry server {KeepalivedDefaults.Endpoint(vs.SorryServer.Address, vs.SorryServer.Port)}");
            RunScript(vs.QuorumDown, $"{vs.Name} quorum down");
        }
    }

    private void Publish(ServiceEntry service)
    {
        ImmutableArray<RealServerSpec> pool = service.Pool();
        try
        {
            _edit(rules => KeepalivedRules.WithPool(rules, service.Config, pool));
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException)
        {
            ControlPlaneLog.PublishFailed(_log, e.Message);
        }
    }

    /// <summary>A notify or quorum script, started and left to finish (or be killed) without holding anything up.</summary>
    private void RunScript(string? script, string why) => _ = RunScriptAsync(script, why, _stop.Token);

    /// <summary>Runs a script (its words: the program, then its arguments; no shell) and logs how it ended.</summary>
    private Task RunScriptAsync(string? script, string why, CancellationToken stop)
    {
        if (script is null)
        {
            return Task.CompletedTask;
        }
        return Task.Run(async () =>
        {
            CommandResult result = await Scripts.RunAsync(script, ScriptTimeout, stop).ConfigureAwait(false);
            string output = (result.Output + result.Error).Trim().ReplaceLineEndings(" ");
            ControlPlaneLog.ScriptFinished(_log, script, why, result.ExitCode, output.Length == 0 ? "" : $": {output[..Math.Min(output.Length, 200)]}");
        }, CancellationToken.None);
    }

    /// <summary>A checker's identity across reloads: its service, its server and its settings (not its line in the file).</summary>
    private sealed record CheckerKey(ServiceProtocol Protocol, string Service, ushort ServicePort, string Server, ushort ServerPort, CheckerConfig Settings);

    private sealed class ServiceEntry(VirtualServerConfig config)
    {
        public VirtualServerConfig Config { get; } = config;
        public ServerEntry[] Servers { get; set; } = [];
        public bool QuorumUp { get; set; }

        public ServerHealth[] Health() => [.. Servers.Select(s => new ServerHealth(s.Alive, s.Weight))];

        public ImmutableArray<RealServerSpec> Pool() => KeepalivedRules.Pool(Config, Health(), QuorumUp);
    }

    private sealed class ServerEntry(ServiceEntry service, RealServerConfig config)
    {
        public ServiceEntry Service { get; } = service;
        public RealServerConfig Config { get; } = config;
        public CheckerEntry[] Checkers { get; set; } = [];
        public bool Alive { get; set; }

        /// <summary>The weight last put in the pool (a misc_dynamic change is published only when it differs).</summary>
        public int PublishedWeight { get; set; }

        /// <summary>The configured weight, or the one a misc_dynamic checker gave last.</summary>
        public int Weight => Checkers.Select(c => c.State.Weight).LastOrDefault(w => w is not null) ?? Config.Weight;
    }

    private sealed class CheckerEntry(ServerEntry server, CheckerConfig config, CheckerState state, CheckerKey key)
    {
        private CancellationTokenSource? _stop;

        public ServerEntry Server { get; private set; } = server;
        public CheckerConfig Config { get; private set; } = config;
        public CheckerState State { get; } = state;
        public CheckerKey Key { get; } = key;
        public Task? Loop { get; private set; }

        /// <summary>Moves a kept checker to the server entry of the new configuration.</summary>
        public void Adopt(ServerEntry server, CheckerConfig config)
        {
            Server = server;
            Config = config;
        }

        public void StartIfNew(HealthMonitor monitor)
        {
            if (Loop is not null)
            {
                return;
            }
            _stop = CancellationTokenSource.CreateLinkedTokenSource(monitor._stop.Token);
            Loop = monitor.RunAsync(this, HealthProbes.Create(Config), _stop.Token);
        }

        public void Cancel() => _stop?.Cancel();
    }
}
