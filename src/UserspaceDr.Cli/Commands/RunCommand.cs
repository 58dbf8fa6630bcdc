using System.CommandLine;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.Admin.Control;
using UserspaceDr.ControlPlane;
using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Preflight;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;
using UserspaceDr.Metrics;
using Prometheus;
using UserspaceDr.Node;

namespace UserspaceDr.Cli.Commands;

/// <summary>`udr run`: the daemon. SIGHUP reloads the rules file hitlessly; SIGINT/SIGTERM stop it cleanly.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var interfaceNames = new Option<string[]>("--interface")
        {
            Description = "an interface udr serves (VIP traffic, real servers); repeat for several, e.g. a public and a private segment for NAT",
            Required = true,
        };
        var rules = new Option<string>("--rules") { Description = "rules file in ipvsadm save syntax (or --config)" };
        var config = new Option<string>("--config") { Description = "keepalived.conf: its virtual_server blocks, with their health checkers (or --rules)" };
        var workers = new Option<int>("--workers") { Description = "worker threads (AF_PACKET fanout members); default: cores, or one per CPU of --cpus", DefaultValueFactory = _ => Environment.ProcessorCount };
        var cpus = new Option<string>("--cpus")
        {
            Description = "LIST: pin worker i to the i-th CPU of LIST (the kernel's CPU-list syntax, e.g. 2-5 or 1,3), one CPU per worker; " +
                "without --workers, one worker per CPU listed; xdp and pcap run one worker: one CPU. Default: unpinned",
        };
        var backend = new Option<string>("--backend") { Description = "afpacket (default), pcap (SharpPcap, portable) or xdp (AF_XDP sockets behind udr's XDP program; needs libbpf1)", DefaultValueFactory = _ => "afpacket" };
        backend.AcceptOnlyFromAmong("afpacket", "pcap", "xdp");
        var maxConnections = new Option<int>("--max-connections") { Description = "connection-table capacity", DefaultValueFactory = _ => 1 << 20 };
        var answerArp = new Option<bool>("--answer-arp") { Description = "answer ARP for VIPs (when the VIP is not configured on the interface)" };
        var noIsolation = new Option<bool>("--no-kernel-isolation") { Description = "do not install the nftables ingress drop for VIP:ports" };
        var expireNodest = new Option<bool>("--expire-nodest-conn")
        {
            Description = "IPVS's expire_nodest_conn: a connection whose real server was removed (udr adm -d, a failed health check) " +
                "is expired on its next packet, so the client retries elsewhere; off (the default), its packets are dropped " +
                "and it resumes if the server comes back",
        };
        var expireQuiescent = new Option<bool>("--expire-quiescent-template")
        {
            Description = "IPVS's expire_quiescent_template: a persistence template whose real server has weight 0 is " +
                "expired when a new connection would use it, so persistent clients move; off (the default), they stay until it times out",
        };
        var sloppyTcp = new Option<bool>("--sloppy-tcp")
        {
            Description = "IPVS's sloppy_tcp: a TCP packet of no known connection starts one if it is not a RST (not only a SYN), so a " +
                "flow that reaches this balancer mid-way (an ECMP router moved it, a failover without sync) is scheduled, with mh or sh " +
                "to the server any balancer with the same rules picks; off (the default), such packets are dropped (tcp-not-syn). " +
                "UDP needs no such switch: any datagram starts a connection, as in IPVS",
        };
        var announce = new Option<string[]>("--announce")
        {
            Description = "VIP=DEVICE: a TAP device of udr's that exists while the VIP can be served (a real server of weight above 0, " +
                "not a standby backup), for a routing daemon to announce the VIP by (BIRD: a static route via \"DEVICE\"); " +
                "it goes when udr stops or dies, and the route with it; repeat for several VIPs",
        };
        var backupOnly = new Option<bool>("--backup-only")
        {
            Description = "IPVS's backup_only: while the backup sync daemon runs (udr adm --start-daemon backup, or a VRRP " +
                "BACKUP with lvs_sync_daemon), forward nothing: a DR or TUN backup that forwards loops traffic",
        };
        var dropEntry = new Option<int>("--drop-entry")
        {
            Description = "IPVS's drop_entry: 1 (the default) lets a new connection take the place of a half-open one (SYN_RECV) when the " +
                "connection table is full, so a SYN flood cannot lock new clients out; 0 refuses it (connection-table-full)",
            DefaultValueFactory = _ => 1,
        };
        dropEntry.AcceptOnlyFromAmong("0", "1");
        var secureTcp = new Option<int>("--secure-tcp")
        {
            Description = "IPVS's secure_tcp: 1 or 2 (default 1) while the table is fuller than --defense-threshold, 3 always, 0 never: a new " +
                "TCP connection's SYN_RECV lasts 5 s instead of 60 s, so a flood's half-open entries leave soon after it ends",
            DefaultValueFactory = _ => 1,
        };
        secureTcp.AcceptOnlyFromAmong("0", "1", "2", "3");
        var defenseThreshold = new Option<int>("--defense-threshold")
        {
            Description = "how full the connection table is, in percent, when secure_tcp 1/2 turns on (udr's amemthresh; default 75)",
            DefaultValueFactory = _ => 75,
        };
        var coalesce = new Option<int>("--coalesce-usecs")
        {
            Description = "AF_PACKET: the longest a busy worker (over 40,000 frames/s) waits after a turn of few frames so that the next is " +
                "fuller (fewer system calls per frame), chosen from 0 to this as Linux's adaptive interrupt moderation chooses a NIC's " +
                "(a wait that costs frame rate, as waiting clients show, is backed off); default 100, 0: never wait",
            DefaultValueFactory = _ => 100,
        };
        var busyPoll = new Option<int>("--busy-poll-usecs")
        {
            Description = "AF_PACKET and AF_XDP: for this long after its last frames a worker that finds none spins on its rings instead of " +
                "sleeping, so the next frame of a conversation is taken without a wake-up (Linux's net.core.busy_poll for udr's rings): " +
                "faster round trips and connection rates for a core of CPU while traffic trickles; default 0, never",
            DefaultValueFactory = _ => 0,
        };
        var metrics = new Option<string>("--metrics")
        {
            Description = "serve Prometheus metrics on ADDRESS:PORT at /metrics (e.g. 127.0.0.1:9477, [2001:2::1]:9477); off unless given",
        };
        var fwmarkRules = new Option<string[]>("--fwmark-rules")
        {
            Description = "FILE: iptables-save (or ip6tables-save) output whose mangle PREROUTING/INPUT MARK rules select the packets of the " +
                "firewall-mark services (-f N); udr marks frames itself, since a packet socket sees them before netfilter does. " +
                "SIGHUP reads it again with the rules; repeat for an IPv4 and an IPv6 file",
        };
        var control = new Option<string>("--control") { Description = "control socket for `udr adm` (mode 0600, root only)", DefaultValueFactory = _ => ControlClient.DefaultPath };

        var command = new Command("run", "run the balancer on an interface")
        {
            interfaceNames, rules, config, workers, cpus, backend, maxConnections, answerArp, noIsolation, expireNodest, expireQuiescent, sloppyTcp, announce, backupOnly,
            dropEntry, secureTcp, defenseThreshold, control, metrics, coalesce, busyPoll, fwmarkRules,
        };
        command.SetAction(parse =>
        {
            RuleSource source = (parse.GetValue(rules), parse.GetValue(config)) switch
            {
                (string path, null) => new RuleSource(path, IsKeepalived: false, parse.GetValue(fwmarkRules) ?? []),
                (null, string path) => new RuleSource(path, IsKeepalived: true, parse.GetValue(fwmarkRules) ?? []),
                (null, null) => throw new UsageException("give the rules: --rules FILE (ipvsadm save syntax) or --config FILE (keepalived.conf)"),
                _ => throw new UsageException("--rules and --config exclude each other: give one"),
            };
            (RuleSetSpec spec, KeepalivedConfig? keepalived) = source.Load();
            IReadOnlyList<LinkInfo> links = FindInterfaces(parse.GetRequiredValue(interfaceNames));
            // The mark rules' -i is settled against the served links, in the data plane's order (and again at each SIGHUP).
            source = source with { LinkNames = [.. links.Select(l => l.Name)] };
            spec = spec with { MarkRules = spec.MarkRules.ForLinks(source.LinkNames) };
            int workerCount = parse.GetValue(workers);
            if (workerCount is < 1 or > 256)
            {
                throw new UsageException("--workers must be between 1 and 256");
            }
            FrameBackend frameBackend = parse.GetValue(backend) switch { "pcap" => FrameBackend.Pcap, "xdp" => FrameBackend.Xdp, _ => FrameBackend.AfPacket };
            IReadOnlyList<int>? workerCpus = null;
            if (parse.GetValue(cpus) is string cpuList)
            {
                bool workersGiven = parse.GetResult(workers) is { Implicit: false };
                workerCpus = ResolveWorkerCpus(cpuList, workersGiven ? workerCount : null, frameBackend, CpuAffinity.Allowed());
                workerCount = workersGiven ? workerCount : workerCpus.Count;
            }
            int capacity = parse.GetValue(maxConnections);
            if (capacity < 1)
            {
                throw new UsageException("--max-connections must be positive");
            }
            int threshold = parse.GetValue(defenseThreshold);
            if (threshold is < 1 or > 100)
            {
                throw new UsageException("--defense-threshold must be a percentage between 1 and 100");
            }
            int coalesceMicroseconds = parse.GetValue(coalesce);
            if (coalesceMicroseconds is < 0 or > 1000)
            {
                throw new UsageException("--coalesce-usecs must be between 0 and 1000 microseconds");
            }
            int busyPollMicroseconds = parse.GetValue(busyPoll);
            if (busyPollMicroseconds is < 0 or > 1000)
            {
                throw new UsageException("--busy-poll-usecs must be between 0 and 1000 microseconds");
            }
            if (busyPollMicroseconds > 0 && frameBackend == FrameBackend.Pcap)
            {
                throw new UsageException("--busy-poll-usecs needs --backend afpacket or xdp: libpcap's readers wait inside libpcap");
            }
            IReadOnlyList<VipAnnouncement> announcements = ParseAnnouncements(parse.GetValue(announce) ?? []);
            if (!Environment.IsPrivilegedProcess)
            {
                throw new UsageException("udr run needs root (raw packet sockets, nftables)");
            }
            var options = new DataPlaneOptions([.. links.Select(l => l.Name)])
            {
                Workers = workerCount,
                Backend = frameBackend,
                WorkerCpus = workerCpus,
                MaxConnections = capacity,
                AnswerArpForVirtualAddresses = parse.GetValue(answerArp),
                IsolateKernel = !parse.GetValue(noIsolation),
                ExpireNoDestinationConnection = parse.GetValue(expireNodest),
                ExpireQuiescentTemplate = parse.GetValue(expireQuiescent),
                SloppyTcp = parse.GetValue(sloppyTcp),
                Announcements = announcements,
                BackupOnly = parse.GetValue(backupOnly),
                DropEntry = parse.GetValue(dropEntry) == 1,
                SecureTcp = parse.GetValue(secureTcp),
                DefenseThresholdPercent = threshold,
                CoalesceMicroseconds = coalesceMicroseconds,
                BusyPollMicroseconds = busyPollMicroseconds,
            };
            string controlPath = parse.GetValue(control) ?? ControlClient.DefaultPath;
            if (controlPath.Length == 0)
            {
                throw new UsageException("--control needs a socket path");
            }
            System.Net.IPEndPoint? metricsEndpoint = parse.GetValue(metrics) is string endpoint ? ParseMetricsEndpoint(endpoint) : null;
            return Serve(options, links, spec, keepalived, source, controlPath, metricsEndpoint);
        });
        return command;
    }

    /// <summary>--metrics: an IPv4 or [IPv6] address and a port, nothing else.</summary>
    private static System.Net.IPEndPoint ParseMetricsEndpoint(string text) => UdrMetrics.TryParseEndpoint(text, out System.Net.IPEndPoint? endpoint)
        ? endpoint
        : throw new UsageException($"--metrics: '{text}' is not ADDRESS:PORT (e.g. 127.0.0.1:9477 or [2001:2::1]:9477)");

    /// <summary>
    /// Every --interface, checked before anything is applied: each must exist, once, and carry a MAC (an Ethernet
    /// link); at most <see cref="Core.Forwarding.ForwardingEngine.MaxLinks"/>.
    /// </summary>
    /// <summary>--announce VIP=DEVICE, each checked: an address, a valid device name, no device or VIP twice.</summary>
    /// <summary>
    /// --cpus LIST: the CPU of each worker. One CPU per worker: as many as --workers when it is given
    /// (<paramref name="requestedWorkers"/>), else the list says how many; xdp and pcap run one worker, so one CPU. Every
    /// CPU must be one this process may run on (<paramref name="allowed"/>: its affinity, within its cpuset).
    /// </summary>
    internal static IReadOnlyList<int> ResolveWorkerCpus(string list, int? requestedWorkers, FrameBackend backend, IReadOnlyList<int> allowed)
    {
        IReadOnlyList<int> cpus;
        try
        {
            cpus = CpuAffinity.ParseList(list);
        }
        catch (FormatException e)
        {
            throw new UsageException($"--cpus {list}: {e.Message}");
        }
        int workers = FrameWorkers.Count(backend, requestedWorkers ?? cpus.Count);
        if (cpus.Count != workers)
        {
            string why = backend == FrameBackend.AfPacket ? $"--workers {workers}" : $"--backend {backend.ToString().ToLowerInvariant()} (one worker)";
            throw new UsageException($"--cpus {list} names {cpus.Count} CPU(s), but {why} needs {workers}: one CPU per worker");
        }
        int[] foreign = [.. cpus.Where(cpu => !allowed.Contains(cpu))];
        if (foreign.Length > 0)
        {
            throw new UsageException($"--cpus {list}: CPU {CpuAffinity.FormatList(foreign)} is not one udr may run on (allowed: {CpuAffinity.FormatList(allowed)})");
        }
        return cpus;
    }

    internal static IReadOnlyList<VipAnnouncement> ParseAnnouncements(IEnumerable<string> values)
    {
        var announcements = new List<VipAnnouncement>();
        foreach (string value in values)
        {
            int equals = value.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0 || !InetAddress.TryParse(value.AsSpan(0, equals), out InetAddress vip))
            {
                throw new UsageException($"--announce {value}: expected VIP=DEVICE, the VIP an IPv4 or IPv6 address");
            }
            string device = value[(equals + 1)..];
            if (!LifelineDevice.IsValidName(device))
            {
                throw new UsageException($"--announce {value}: '{device}' is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
            }
            if (announcements.Any(a => a.Device == device || a.Vip == vip))
            {
                throw new UsageException($"--announce {value}: each VIP and each device once");
            }
            if (Directory.Exists(Path.Combine("/sys/class/net", device)))
            {
                throw new UsageException($"--announce {value}: a device {device} exists already (udr makes its own, and it must go when udr goes)");
            }
            announcements.Add(new VipAnnouncement(vip, device));
        }
        return announcements;
    }

    internal static IReadOnlyList<LinkInfo> FindInterfaces(IReadOnlyList<string> names)
    {
        if (names.Count == 0)
        {
            throw new UsageException("--interface: name at least one interface");
        }
        if (names.Count > Core.Forwarding.ForwardingEngine.MaxLinks)
        {
            throw new UsageException($"--interface: at most {Core.Forwarding.ForwardingEngine.MaxLinks} interfaces, not {names.Count}");
        }
        IReadOnlyList<LinkInfo> present;
        try
        {
            present = new LinuxHostSystem().GetLinks();
        }
        catch (HostException e)
        {
            throw new UsageException($"--interface: cannot list the interfaces: {e.Message}");
        }
        var links = new List<LinkInfo>(names.Count);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new UsageException("--interface: an empty interface name");
            }
            if (!seen.Add(name))
            {
                throw new UsageException($"--interface: '{name}' is named twice");
            }
            LinkInfo link = present.FirstOrDefault(l => l.Name == name)
                ?? throw new UsageException($"--interface: no interface named '{name}'");
            if (link.Mac == Core.Packets.MacAddress.Zero)
            {
                throw new UsageException($"--interface: '{name}' has no Ethernet address (udr serves Ethernet links)");
            }
            links.Add(link);
        }
        return links;
    }

    /// <summary>Where the rules come from: a rules file, or keepalived.conf's virtual servers.</summary>
    private sealed record RuleSource(string Path, bool IsKeepalived, string[] MarkRulesPaths)
    {
        /// <summary>The served links in the data plane's order: what the mark rules' -i is settled against.</summary>
        public IReadOnlyList<string> LinkNames { get; init; } = [];

        /// <summary>The rule set to serve, all checked before anything is applied (a <see cref="UsageException"/> otherwise).</summary>
        public (RuleSetSpec Rules, KeepalivedConfig? Config) Load()
        {
            FirewallMarkRules marks = LoadMarkRules();
            if (!IsKeepalived)
            {
                return (CliInputs.LoadRules(Path) with { MarkRules = marks }, null);
            }
            try
            {
                KeepalivedConfig config = KeepalivedParser.Load(Path);
                return (KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true) with { MarkRules = marks }, config);
            }
            catch (ConfigException e)
            {
                throw new UsageException($"--config: {e.Message}", e);
            }
        }

        private FirewallMarkRules LoadMarkRules() => CliInputs.LoadMarkRules(MarkRulesPaths).ForLinks(LinkNames);
    }

    private static int Serve(DataPlaneOptions options, IReadOnlyList<LinkInfo> links, RuleSetSpec spec, KeepalivedConfig? keepalived,
        RuleSource source, string controlPath, System.Net.IPEndPoint? metricsEndpoint)
    {
        // Under systemd (stdout is the journal's stream) each line carries its syslog level ("<6>...") for journald,
        // which adds the time itself; on a terminal, one line per message with the time.
        using ILoggerFactory loggers = LoggerFactory.Create(b =>
        {
            if (Environment.GetEnvironmentVariable("JOURNAL_STREAM") is not null)
            {
                b.AddSystemdConsole();
            }
            else
            {
                b.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.TimestampFormat = "HH:mm:ss.fff ";
                });
            }
        });
        var systemd = new SystemdNotifier();
        ILogger log = loggers.CreateLogger("udr");
        using var stop = new ManualResetEventSlim();
        using var reloadRequested = new AutoResetEvent(false);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using PosixSignalRegistration sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            reloadRequested.Set();
        });

        LogPreflight(log, options, spec, keepalived);
        if (keepalived is not null)
        {
            LogWarnings(log, keepalived);
        }
        DataPlane plane;
        try
        {
            plane = new DataPlane(options, links, spec, log);
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or IOException or ArgumentException)
        {
            Log.StartFailed(log, e.Message);
            return ExitCodes.Failure;
        }
        using (plane)
        {
            if (keepalived?.Globals is { } globals)
            {
                // lvs_timeouts: as ipvsadm --set, each 0 keeps the current value.
                plane.Timeouts = plane.Timeouts.With(globals.TcpTimeout, globals.TcpFinTimeout, globals.UdpTimeout);
            }
            // ipvsadm over the control socket changes the live rules only; the rules file stays as written, and
            // SIGHUP re-reads it (replacing whatever udr adm changed, as ipvsadm-restore of that file would).
            using var backend = new DataPlaneBackend(plane, loggers.CreateLogger("udr.sync")) { MarkRules = spec.MarkRules };
            var ipvsadm = new IpvsadmExecutor(backend, () => new FileNames());
            // keepalived.conf's checkers edit the live rules through the same executor, one change at a time.
            using var health = keepalived is null ? null : new HealthChecks(new HealthMonitor(keepalived, ipvsadm.Edit, loggers.CreateLogger("udr.health")));
            using var availability = new KeepalivedHighAvailability(ipvsadm, loggers);
            using var controlServer = new ControlServer(controlPath, request =>
            {
                if (request.Program == ChecksCommand.Program)
                {
                    return ChecksCommand.Answer(health?.Monitor);
                }
                if (request.Program == TopSnapshot.Program)
                {
                    return new ControlResponse(0, TopSnapshot.Take(plane, backend.State(), health?.Monitor.Status() ?? [], availability.VrrpRoles()).ToJson(), "");
                }
                IpvsadmOutcome outcome = ipvsadm.Execute(request.Program, request.Arguments, request.Stdin);
                return new ControlResponse(outcome.ExitCode, outcome.Stdout, outcome.Stderr);
            }, loggers.CreateLogger("udr.control"));
            try
            {
                controlServer.Start();
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or System.Net.Sockets.SocketException)
            {
                Log.StartFailed(log, $"control socket {controlPath}: {e.Message}");
                return ExitCodes.Failure;
            }
            health?.Monitor.Start();
            try
            {
                if (keepalived is not null)
                {
                    availability.Apply(keepalived, reload: false);
                }
            }
            catch (HostException e)
            {
                Log.StartFailed(log, $"vrrp_notify_fifo: {e.Message}");
                return ExitCodes.Failure;
            }
            using MetricServer? metricsServer = metricsEndpoint is null ? null : new UdrMetrics(
                new MetricsSources(() => plane.Rules, backend.Statistics, plane.ReadWorkers)
                {
                    Neighbors = plane.NeighborStates,
                    Checkers = health is null ? null : health.Monitor.Status,
                    VrrpRoles = availability.VrrpRoles,
                    Sync = backend.ReadSync,
                }).Server(metricsEndpoint);
            try
            {
                metricsServer?.Start();
            }
            catch (System.Net.HttpListenerException e)
            {
                Log.StartFailed(log, $"--metrics {metricsEndpoint}: {e.Message}");
                return ExitCodes.Failure;
            }
            // Type=notify: ready once the rings, the nftables guard, the control socket and the metrics endpoint are up.
            systemd.Ready(Status(plane));
            var handles = new WaitHandle[] { stop.WaitHandle, reloadRequested };
            while (WaitHandle.WaitAny(handles) == 1)
            {
                systemd.Reloading();
                try
                {
                    (RuleSetSpec reloaded, KeepalivedConfig? reconfigured) = source.Load();
                    FirewallMarkRules running = backend.MarkRules;
                    backend.MarkRules = reloaded.MarkRules;
                    try
                    {
                        Reload(reloaded, reconfigured);
                    }
                    catch
                    {
                        backend.MarkRules = running; // nothing of the reload applied: the running marks stay
                        throw;
                    }
                }
                catch (Exception e) when (e is UsageException or InvalidOperationException or ArgumentException)
                {
                    Log.ReloadRefused(log, e.Message);
                }
                systemd.Ready(Status(plane));
            }
            systemd.Stopping();

            void Reload(RuleSetSpec reloaded, KeepalivedConfig? reconfigured)
            {
                if (health is not null && reconfigured is not null)
                {
                    LogWarnings(log, reconfigured);
                    plane.Timeouts = plane.Timeouts.With(reconfigured.Globals.TcpTimeout, reconfigured.Globals.TcpFinTimeout, reconfigured.Globals.UdpTimeout);
                    health.Monitor.Reload(reconfigured, ipvsadm.Replace);
                    availability.Apply(reconfigured, reload: true);
                }
                else
                {
                    ipvsadm.Replace(reloaded);
                }
            }
        }
        return ExitCodes.Success;

        static string Status(DataPlane plane) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"serving {plane.Rules.Services.Length} service(s), {plane.Rules.Services.Sum(s => s.Destinations.Length)} real server(s) on {string.Join(", ", plane.Links.Select(l => l.Name))}");

        static void LogWarnings(ILogger log, KeepalivedConfig config)
        {
            foreach (ConfigWarning warning in config.Warnings)
            {
                ControlPlaneLog.ConfigWarning(log, warning.ToString());
            }
        }

        static void LogPreflight(ILogger log, DataPlaneOptions options, RuleSetSpec spec, KeepalivedConfig? keepalived)
        {
            // keepalived's VRRP adds these on the master only: a backup lacks them by design.
            var vrrpAddresses = new Dictionary<InetAddress, string>();
            foreach ((System.Net.IPAddress address, string instance) in keepalived is null ? [] : KeepalivedRules.VrrpAddresses(keepalived))
            {
                vrrpAddresses.TryAdd(InetAddress.FromIPAddress(address), instance);
            }
            // The same checklist as `udr preflight` (without --fix), per interface, logged, never fatal: the operator decides.
            foreach (string interfaceName in options.InterfaceNames)
            {
                LogPreflightFor(log, options, spec, interfaceName, vrrpAddresses);
            }
        }

        static void LogPreflightFor(ILogger log, DataPlaneOptions options, RuleSetSpec spec, string interfaceName, Dictionary<InetAddress, string> vrrpAddresses)
        {
            var preflight = new PreflightOptions(interfaceName, spec)
            {
                AnswerArp = options.AnswerArpForVirtualAddresses,
                KernelIsolation = options.IsolateKernel,
                AfXdp = options.Backend == FrameBackend.Xdp,
                RunInterfaces = options.InterfaceNames,
                VrrpAddresses = vrrpAddresses,
            };
            try
            {
                foreach (CheckResult result in PreflightChecks.Run(preflight, new LinuxHostSystem()))
                {
                    LogLevel level = result.Status switch
                    {
                        CheckStatus.Pass => LogLevel.Information,
                        CheckStatus.Warn => LogLevel.Warning,
                        _ => LogLevel.Error,
                    };
                    Log.Preflight(log, level, result.Status.ToString().ToLowerInvariant(), result.Check, result.Detail,
                        result.Fix is null ? "" : " (fix: " + result.Fix + ")");
                }
            }
            catch (HostException e)
            {
                Log.Preflight(log, LogLevel.Error, "fail", "preflight", e.Message, "");
            }
        }

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Set();
        }
    }
}

/// <summary>The checkers' monitor, stopped (every loop ended) when the daemon stops.</summary>
internal sealed class HealthChecks(HealthMonitor monitor) : IDisposable
{
    public HealthMonitor Monitor { get; } = monitor;

    public void Dispose() => Monitor.DisposeAsync().AsTask().GetAwaiter().GetResult();
}
