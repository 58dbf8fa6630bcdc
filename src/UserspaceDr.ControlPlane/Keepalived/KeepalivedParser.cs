using System.Collections.Frozen;
using System.Collections.Immutable;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;

namespace UserspaceDr.ControlPlane.Keepalived;

/// <summary>
/// Interprets keepalived.conf's statements (<see cref="ConfigReader"/>) as keepalived.conf(5) and check_parser.c
/// define them: a value set on a virtual server is the default of its real servers, a real server's the default of
/// its checkers, and keepalived's own defaults fill the rest. A keyword udr does not act on is a warning with its
/// place; a malformed value, or a setting udr cannot serve, is a <see cref="ConfigException"/> with its place.
/// </summary>
public static class KeepalivedParser
{
    private static readonly FrozenSet<string> VrrpTopLevel = FrozenSet.Create(StringComparer.Ordinal,
        "vrrp_instance", "vrrp_sync_group", "vrrp_script", "vrrp_track_process", "vrrp_track_file", "static_ipaddress",
        "static_routes", "static_rules", "track_file", "garp_group", "linkbeat_interfaces");

    /// <summary>Reads and interprets <paramref name="path"/> (with its includes).</summary>
    public static KeepalivedConfig Load(string path)
    {
        var warnings = new List<ConfigWarning>();
        IReadOnlyList<ConfigNode> nodes = ConfigReader.ReadFile(path, warnings);
        return Interpret(nodes, warnings);
    }

    /// <summary>Interprets configuration text (tests, stdin); <paramref name="name"/> is the file name in messages.</summary>
    public static KeepalivedConfig Parse(string text, string name = "keepalived.conf")
    {
        var warnings = new List<ConfigWarning>();
        IReadOnlyList<ConfigNode> nodes = ConfigReader.ReadText(text, name, warnings);
        return Interpret(nodes, warnings);
    }

    private static KeepalivedConfig Interpret(IReadOnlyList<ConfigNode> nodes, List<ConfigWarning> warnings)
    {
        var globals = new GlobalDefinitions();
        var services = ImmutableArray.CreateBuilder<VirtualServerConfig>();
        var vrrp = ImmutableArray.CreateBuilder<ConfigNode>();
        foreach (ConfigNode node in nodes)
        {
            switch (node.Keyword)
            {
                case "global_defs":
                    globals = GlobalDefs(node, globals, warnings);
                    break;
                case "virtual_server":
                    VirtualServerConfig service = VirtualServer(node, warnings);
                    if (services.Any(s => s.Name == service.Name))
                    {
                        throw new ConfigException(node.Place, $"virtual_server {service.Name} is defined twice");
                    }
                    services.Add(service);
                    break;
                case "virtual_server_group":
                    throw new ConfigException(node.Place, "virtual_server_group is not supported by udr; write one virtual_server per address and port");
                default:
                    if (VrrpTopLevel.Contains(node.Keyword))
                    {
                        // keepalived's own VRRP process runs these (the election, the addresses); udr follows the
                        // states it reports through vrrp_notify_fifo and takes lvs_sync_daemon's syncid from them.
                        RequireBlock(node);
                        vrrp.Add(node);
                    }
                    else
                    {
                        Ignored(node, warnings);
                    }
                    break;
            }
        }
        return new KeepalivedConfig(globals, services.ToImmutable(), vrrp.ToImmutable(), [.. warnings]);
    }

    private static GlobalDefinitions GlobalDefs(ConfigNode node, GlobalDefinitions globals, List<ConfigWarning> warnings)
    {
        foreach (ConfigNode key in RequireBlock(node))
        {
            switch (key.Keyword)
            {
                case "lvs_timeouts":
                    globals = LvsTimeouts(key, globals);
                    break;
                case "lvs_flush":
                    NoArguments(key);
                    globals = globals with { LvsFlush = true };
                    break;
                case "lvs_sync_daemon":
                    globals = globals with { SyncDaemon = SyncDaemon(key) };
                    break;
                case "vrrp_notify_fifo":
                    if (key.Arguments.Count is < 1 or > 2)
                    {
                        throw new ConfigException(key.Place, "vrrp_notify_fifo takes a path (and a user)");
                    }
                    globals = globals with { VrrpNotifyFifo = key.Arguments[0] };
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        return globals;
    }

    /// <summary><c>lvs_timeouts [tcp N] [tcpfin N] [udp N]</c>, each 1..2^31/HZ seconds, as ipvsadm --set takes them.</summary>
    private static GlobalDefinitions LvsTimeouts(ConfigNode key, GlobalDefinitions globals)
    {
        IReadOnlyList<string> args = key.Arguments;
        if (args.Count == 0 || args.Count % 2 != 0)
        {
            throw new ConfigException(key.Place, "lvs_timeouts takes pairs: tcp SECONDS, tcpfin SECONDS, udp SECONDS");
        }
        for (int i = 0; i < args.Count; i += 2)
        {
            int seconds = Integer(key, args[i + 1], 1, int.MaxValue / 1000);
            globals = args[i] switch
            {
                "tcp" => globals with { TcpTimeout = seconds },
                "tcpfin" => globals with { TcpFinTimeout = seconds },
                "udp" => globals with { UdpTimeout = seconds },
                _ => throw new ConfigException(key.Place, $"lvs_timeouts: '{args[i]}' is not tcp, tcpfin or udp"),
            };
        }
        return globals;
    }

    /// <summary><c>lvs_sync_daemon IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group A]</c> (check_parser.c / global_parser.c).</summary>
    private static LvsSyncDaemon SyncDaemon(ConfigNode key)
    {
        IReadOnlyList<string> args = key.Arguments;
        if (args.Count == 0)
        {
            throw new ConfigException(key.Place, "lvs_sync_daemon needs an interface");
        }
        var daemon = new LvsSyncDaemon(args[0], key.Place);
        for (int i = 1; i < args.Count; i++)
        {
            string word = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ConfigException(key.Place, $"lvs_sync_daemon: {word} needs a value");
            daemon = word switch
            {
                "inst" => daemon with { Instance = Value() },
                "id" => daemon with { SyncId = Integer(key, Value(), 0, 255) },
                "maxlen" => daemon with { MaxLength = Integer(key, Value(), 1, 65507) },
                "port" => daemon with { Port = Integer(key, Value(), 1, 65535) },
                "ttl" => daemon with { Ttl = Integer(key, Value(), 1, 255) },
                "group" => daemon with { Group = Address(key, Value()) },
                _ when daemon.Instance is null && i == 1 => daemon with { Instance = word },
                _ => throw new ConfigException(key.Place, $"lvs_sync_daemon: '{word}' is not inst, id, maxlen, port, ttl or group"),
            };
        }
        return daemon;
    }

    /// <summary>The defaults a virtual server or real server hands down to what it contains.</summary>
    private sealed record Inherited
    {
        public TimeSpan DelayLoop { get; init; } = KeepalivedDefaults.DelayLoop;
        public TimeSpan? ConnectTimeout { get; init; }
        public int? Retry { get; init; }
        public TimeSpan? DelayBeforeRetry { get; init; }
        public TimeSpan? Warmup { get; init; }
        public bool Alpha { get; init; }
        public bool Inhibit { get; init; }
        public ForwardingMethod Method { get; init; } = ForwardingMethod.Masquerade;
        public TunnelEncapsulation Tunnel { get; init; }
        public string? VirtualHost { get; init; }
    }

    private static VirtualServerConfig VirtualServer(ConfigNode node, List<ConfigWarning> warnings)
    {
        if (node.Arguments.Count >= 1 && node.Arguments[0] == "group")
        {
            throw new ConfigException(node.Place, "virtual_server group is not supported by udr; write one virtual_server per address and port");
        }
        if (node.Arguments.Count != 2)
        {
            throw new ConfigException(node.Place, "virtual_server takes an address and a port, or a firewall mark (virtual_server IP PORT { … }, virtual_server fwmark N { … })");
        }
        IReadOnlyList<ConfigNode> block = RequireBlock(node);
        uint mark = 0;
        IPAddress address;
        ushort port;
        if (node.Arguments[0] == "fwmark")
        {
            // A firewall-mark service: no address or port; its family from ip_family, else from its servers (IPv4 without either).
            mark = uint.TryParse(node.Arguments[1], NumberStyles.None, CultureInfo.InvariantCulture, out uint value) && value != 0
                ? value : throw new ConfigException(node.Place, $"fwmark {node.Arguments[1]}: not a mark (1 to {uint.MaxValue})");
            address = MarkFamily(block) == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any;
            port = 0;
        }
        else
        {
            address = Address(node, node.Arguments[0]);
            port = Port(node, node.Arguments[1], allowZero: true);
        }

        // First the settings (they are the defaults of the real servers, wherever they stand in the block) …
        var inherited = new Inherited();
        var service = new VirtualServerConfig(address, port, ServiceProtocol.Tcp, node.Place) { FirewallMark = mark };
        ConfigNode? sorry = null;
        bool sorryInhibit = false;
        ForwardingMethod? sorryMethod = null;
        foreach (ConfigNode key in block)
        {
            switch (key.Keyword)
            {
                case "real_server":
                    break;
                case "ip_family":
                    if (IpFamily(key) != address.AddressFamily)
                    {
                        throw new ConfigException(key.Place, $"Virtual server specified family {OneArgument(key)} conflicts with {(mark != 0 ? "its real servers'" : $"its address {address}")}");
                    }
                    break;
                case "delay_loop":
                    inherited = inherited with { DelayLoop = Seconds(key, allowZero: false) };
                    service = service with { DelayLoop = inherited.DelayLoop };
                    break;
                case "lb_algo" or "lvs_sched":
                    string scheduler = OneArgument(key);
                    if (!SchedulerFactory.IsKnown(scheduler))
                    {
                        throw new ConfigException(key.Place, $"{key.Keyword} {scheduler}: udr has no such scheduler (it has {string.Join(", ", SchedulerFactory.Names)})");
                    }
                    service = service with { Scheduler = scheduler };
                    break;
                case "lb_kind" or "lvs_method":
                    (ForwardingMethod serviceMethod, TunnelEncapsulation serviceTunnel) = MethodAndTunnel(key);
                    inherited = inherited with { Method = serviceMethod, Tunnel = serviceTunnel };
                    service = service with { Method = inherited.Method };
                    break;
                case "protocol":
                    service = service with
                    {
                        Protocol = OneArgument(key).ToUpperInvariant() switch
                        {
                            "TCP" => ServiceProtocol.Tcp,
                            "UDP" => ServiceProtocol.Udp,
                            "SCTP" => throw new ConfigException(key.Place, "SCTP virtual servers are not supported by udr; only TCP and UDP"),
                            string other => throw new ConfigException(key.Place, $"protocol {other}: not TCP or UDP"),
                        },
                    };
                    break;
                case "persistence_timeout":
                    service = service with
                    {
                        PersistenceTimeout = key.Arguments.Count == 0
                            ? KeepalivedDefaults.PersistenceTimeout
                            : Integer(key, OneArgument(key), 1, int.MaxValue / 1000),
                    };
                    break;
                case "persistence_granularity":
                    service = service with { PersistencePrefix = Granularity(key, address) };
                    break;
                case "ops":
                    NoArguments(key);
                    service = service with { OnePacket = true };
                    break;
                case "sh-fallback" or "mh-fallback" or "flag-1":
                    NoArguments(key);
                    service = service with { Flags = service.Flags | SchedulerFlags.Flag1 };
                    break;
                case "sh-port" or "mh-port" or "flag-2":
                    NoArguments(key);
                    service = service with { Flags = service.Flags | SchedulerFlags.Flag2 };
                    break;
                case "flag-3":
                    NoArguments(key);
                    service = service with { Flags = service.Flags | SchedulerFlags.Flag3 };
                    break;
                case "quorum":
                    service = service with { Quorum = Integer(key, OneArgument(key), 1, int.MaxValue) };
                    break;
                case "hysteresis":
                    service = service with { Hysteresis = Integer(key, OneArgument(key), 0, int.MaxValue) };
                    break;
                case "quorum_up":
                    service = service with { QuorumUp = Script(key) };
                    break;
                case "quorum_down":
                    service = service with { QuorumDown = Script(key) };
                    break;
                case "alpha":
                    NoArguments(key);
                    inherited = inherited with { Alpha = true };
                    service = service with { Alpha = true };
                    break;
                case "omega":
                    NoArguments(key);
                    service = service with { Omega = true };
                    break;
                case "sorry_server":
                    sorry = key;
                    break;
                case "sorry_server_inhibit":
                    NoArguments(key);
                    sorryInhibit = true;
                    break;
                case "sorry_server_lvs_method":
                    sorryMethod = Method(key);
                    break;
                case "inhibit_on_failure":
                    NoArguments(key);
                    inherited = inherited with { Inhibit = true };
                    break;
                case "virtualhost":
                    inherited = inherited with { VirtualHost = OneArgument(key) };
                    break;
                default:
                    inherited = CommonTiming(key, inherited) ?? Ignored(key, warnings, inherited);
                    break;
            }
        }

        // … then the real servers, each with those defaults.
        var servers = ImmutableArray.CreateBuilder<RealServerConfig>();
        foreach (ConfigNode key in block.Where(k => k.Keyword == "real_server"))
        {
            RealServerConfig server = RealServer(key, service, inherited, warnings);
            if (servers.Any(s => s.Address.Equals(server.Address) && s.Port == server.Port))
            {
                throw new ConfigException(key.Place, $"real_server {server.Name} is given twice in virtual_server {service.Name}");
            }
            servers.Add(server);
        }
        if (sorry is not null)
        {
            ForwardingMethod method = sorryMethod ?? service.Method;
            if (sorry.Arguments.Count is < 1 or > 2)
            {
                throw new ConfigException(sorry.Place, "sorry_server takes an address and an optional port");
            }
            IPAddress sorryAddress = Address(sorry, sorry.Arguments[0]);
            ushort sorryPort = sorry.Arguments.Count == 2 ? Port(sorry, sorry.Arguments[1], allowZero: true) : (ushort)0;
            service = service with { SorryServer = new SorryServerConfig(sorryAddress, ForcedPort(method, service.Port, sorryPort), method, sorryInhibit) };
        }
        return service with { RealServers = servers.ToImmutable() };
    }

    /// <summary>
    /// A firewall-mark virtual server's family: ip_family when given, else its first real server's, else IPv4 (keepalived
    /// takes it from the servers; one whose servers are all tunnelled to the other family names it with ip_family).
    /// </summary>
    private static AddressFamily MarkFamily(IReadOnlyList<ConfigNode> block)
    {
        if (block.FirstOrDefault(k => k.Keyword == "ip_family") is { } family)
        {
            return IpFamily(family);
        }
        return block.FirstOrDefault(k => k.Keyword == "real_server" && k.Arguments.Count >= 1) is { } server
            ? Address(server, server.Arguments[0]).AddressFamily
            : AddressFamily.InterNetwork;
    }

    private static AddressFamily IpFamily(ConfigNode key) => OneArgument(key) switch
    {
        "inet" => AddressFamily.InterNetwork,
        "inet6" => AddressFamily.InterNetworkV6,
        string other => throw new ConfigException(key.Place, $"ip_family {other}: inet or inet6"),
    };

    private static RealServerConfig RealServer(ConfigNode node, VirtualServerConfig service, Inherited inherited, List<ConfigWarning> warnings)
    {
        if (node.Arguments.Count is < 1 or > 2)
        {
            throw new ConfigException(node.Place, "real_server takes an address and a port (real_server IP PORT { … })");
        }
        IPAddress address = Address(node, node.Arguments[0]);
        ushort port = node.Arguments.Count == 2 ? Port(node, node.Arguments[1], allowZero: true) : service.Port;
        // A server of the other family is for tunnels only; the method may come later in the block (or from the
        // virtual server), so KeepalivedRules checks it once the whole configuration is read.
        IReadOnlyList<ConfigNode> block = node.Block ?? [];

        var server = new RealServerConfig(address, port, node.Place);
        var checkers = new List<ConfigNode>();
        foreach (ConfigNode key in block)
        {
            switch (key.Keyword)
            {
                case "weight":
                    server = server with { Weight = Integer(key, OneArgument(key), 0, 65535) };
                    break;
                case "inhibit_on_failure":
                    NoArguments(key);
                    inherited = inherited with { Inhibit = true };
                    break;
                case "notify_up":
                    server = server with { NotifyUp = Script(key) };
                    break;
                case "notify_down":
                    server = server with { NotifyDown = Script(key) };
                    break;
                case "uthreshold":
                    server = server with { UpperThreshold = Integer(key, OneArgument(key), 0, int.MaxValue) };
                    break;
                case "lthreshold":
                    server = server with { LowerThreshold = Integer(key, OneArgument(key), 0, int.MaxValue) };
                    break;
                case "lb_kind" or "lvs_method":
                    (ForwardingMethod serverMethod, TunnelEncapsulation serverTunnel) = MethodAndTunnel(key);
                    inherited = inherited with { Method = serverMethod, Tunnel = serverTunnel };
                    break;
                case "delay_loop":
                    inherited = inherited with { DelayLoop = Seconds(key, allowZero: false) };
                    break;
                case "alpha":
                    NoArguments(key);
                    inherited = inherited with { Alpha = true };
                    break;
                case "virtualhost":
                    inherited = inherited with { VirtualHost = OneArgument(key) };
                    break;
                case "TCP_CHECK" or "HTTP_GET" or "SSL_GET" or "MISC_CHECK" or "UDP_CHECK" or "DNS_CHECK":
                    checkers.Add(key);
                    break;
                default:
                    inherited = CommonTiming(key, inherited) ?? Ignored(key, warnings, inherited);
                    break;
            }
        }
        if (server.UpperThreshold != 0 && server.LowerThreshold > server.UpperThreshold)
        {
            throw new ConfigException(node.Place, $"lthreshold {server.LowerThreshold} is above uthreshold {server.UpperThreshold}");
        }
        // keepalived (ipvswrapper.c) forces the real server's port to the service's in DR and TUN.
        server = server with
        {
            // A firewall-mark service has no port to force: the server keeps its own (its checkers' port; 0: the packet's).
            Port = service.FirewallMark != 0 ? port : ForcedPort(inherited.Method, service.Port, port),
            Method = inherited.Method,
            Tunnel = inherited.Method == ForwardingMethod.Tunnel ? inherited.Tunnel : default,
            InhibitOnFailure = inherited.Inhibit,
            Alpha = inherited.Alpha,
        };
        return server with { Checkers = [.. checkers.Select(key => Checker(key, server, inherited, warnings))] };
    }

    private static ushort ForcedPort(ForwardingMethod method, ushort servicePort, ushort port) =>
        method is ForwardingMethod.Route or ForwardingMethod.Tunnel || port == 0 ? servicePort : port;

    private static CheckerConfig Checker(ConfigNode node, RealServerConfig server, Inherited inherited, List<ConfigWarning> warnings)
    {
        if (node.Arguments.Count != 0)
        {
            throw new ConfigException(node.Place, $"{node.Keyword} takes no arguments, only a block");
        }
        IReadOnlyList<ConfigNode> block = node.Block ?? [];
        CheckerKind kind = node.Keyword switch
        {
            "TCP_CHECK" => CheckerKind.Tcp,
            "HTTP_GET" => CheckerKind.Http,
            "SSL_GET" => CheckerKind.Ssl,
            "MISC_CHECK" => CheckerKind.Misc,
            "UDP_CHECK" => CheckerKind.Udp,
            _ => CheckerKind.Dns,
        };

        // The shared settings first, then what each kind adds.
        IPAddress connectAddress = server.Address;
        ushort connectPort = server.Port;
        IPAddress? bindTo = null;
        var specific = new List<ConfigNode>();
        foreach (ConfigNode key in block)
        {
            switch (key.Keyword)
            {
                case "connect_ip":
                    connectAddress = Address(key, OneArgument(key));
                    break;
                case "connect_port":
                    connectPort = Port(key, OneArgument(key), allowZero: false);
                    break;
                case "bindto":
                    bindTo = Address(key, OneArgument(key));
                    break;
                case "nb_get_retry" when kind is CheckerKind.Http or CheckerKind.Ssl:
                    inherited = inherited with { Retry = Integer(key, OneArgument(key), 0, int.MaxValue) };
                    break;
                case "delay_loop":
                    inherited = inherited with { DelayLoop = Seconds(key, allowZero: false) };
                    break;
                case "alpha":
                    NoArguments(key);
                    inherited = inherited with { Alpha = true };
                    break;
                default:
                    if (CommonTiming(key, inherited) is Inherited timing)
                    {
                        inherited = timing;
                    }
                    else
                    {
                        specific.Add(key);
                    }
                    break;
            }
        }
        TimeSpan delayLoop = inherited.DelayLoop;
        TimeSpan defaultDelayBeforeRetry = kind switch
        {
            CheckerKind.Http or CheckerKind.Ssl => KeepalivedDefaults.HttpDelayBeforeRetry,
            CheckerKind.Dns => delayLoop,
            _ => KeepalivedDefaults.DelayBeforeRetry,
        };
        int defaultRetry = kind switch
        {
            CheckerKind.Dns => KeepalivedDefaults.DnsRetry,
            CheckerKind.Misc => KeepalivedDefaults.MiscRetry,
            _ => KeepalivedDefaults.Retry,
        };
        if (kind == CheckerKind.Dns && connectPort == server.Port && !block.Any(k => k.Keyword == "connect_port"))
        {
            connectPort = server.Port == 0 ? (ushort)53 : server.Port;
        }

        CheckerConfig checker = kind switch
        {
            CheckerKind.Tcp => new TcpCheckConfig(node.Place) { ConnectAddress = connectAddress, ConnectPort = connectPort },
            CheckerKind.Http or CheckerKind.Ssl => Http(kind, node, specific, inherited, warnings) with { ConnectAddress = connectAddress, ConnectPort = connectPort },
            CheckerKind.Misc => Misc(node, specific, delayLoop, warnings) with { ConnectAddress = connectAddress, ConnectPort = connectPort },
            CheckerKind.Udp => Udp(node, specific, warnings) with { ConnectAddress = connectAddress, ConnectPort = connectPort },
            _ => Dns(node, specific, warnings) with { ConnectAddress = connectAddress, ConnectPort = connectPort },
        };
        if (kind == CheckerKind.Tcp)
        {
            foreach (ConfigNode key in specific)
            {
                Ignored(key, warnings);
            }
        }
        if (kind != CheckerKind.Misc && connectPort == 0)
        {
            throw new ConfigException(node.Place, $"{node.Keyword} needs a port: the real server has none; give connect_port");
        }
        return checker with
        {
            BindTo = bindTo,
            ConnectTimeout = inherited.ConnectTimeout ?? KeepalivedDefaults.ConnectTimeout,
            Retry = inherited.Retry ?? defaultRetry,
            DelayBeforeRetry = inherited.DelayBeforeRetry ?? defaultDelayBeforeRetry,
            DelayLoop = delayLoop,
            Warmup = inherited.Warmup ?? delayLoop,
            Alpha = inherited.Alpha,
        };
    }

    /// <summary>connect_timeout, retry, delay_before_retry and warmup, which any level may set; null when <paramref name="key"/> is none of them.</summary>
    private static Inherited? CommonTiming(ConfigNode key, Inherited inherited) => key.Keyword switch
    {
        "connect_timeout" => inherited with { ConnectTimeout = Seconds(key, allowZero: false) },
        "retry" => inherited with { Retry = Integer(key, OneArgument(key), 0, int.MaxValue) },
        "delay_before_retry" => inherited with { DelayBeforeRetry = Seconds(key, allowZero: true) },
        "warmup" => inherited with { Warmup = Seconds(key, allowZero: true) },
        _ => null,
    };

    private static HttpCheckConfig Http(CheckerKind kind, ConfigNode node, List<ConfigNode> keys, Inherited inherited, List<ConfigWarning> warnings)
    {
        var urls = ImmutableArray.CreateBuilder<UrlCheck>();
        string protocol = "1.0";
        string? virtualHost = inherited.VirtualHost;
        foreach (ConfigNode key in keys)
        {
            switch (key.Keyword)
            {
                case "url":
                    urls.Add(Url(key, warnings));
                    break;
                case "http_protocol":
                    protocol = OneArgument(key) switch
                    {
                        "1.0" or "1.0C" or "1.1" => key.Arguments[0],
                        "1.0c" => "1.0C",
                        string other => throw new ConfigException(key.Place, $"http_protocol {other}: not 1.0, 1.0C or 1.1"),
                    };
                    break;
                case "virtualhost":
                    virtualHost = OneArgument(key);
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        if (urls.Count == 0)
        {
            throw new ConfigException(node.Place, $"{node.Keyword} has no url {{ path … }} to check");
        }
        return new HttpCheckConfig(kind, node.Place)
        {
            Urls = urls.ToImmutable(),
            Protocol = protocol,
            VirtualHost = virtualHost,
        };
    }

    private static UrlCheck Url(ConfigNode node, List<ConfigWarning> warnings)
    {
        string? path = null;
        string? digest = null;
        string? virtualHost = null;
        var codes = new List<(int, int)>();
        foreach (ConfigNode key in RequireBlock(node))
        {
            switch (key.Keyword)
            {
                case "path":
                    path = OneArgument(key);
                    break;
                case "digest":
                    digest = OneArgument(key).ToLowerInvariant();
                    if (digest.Length != 32 || !digest.All(Uri.IsHexDigit))
                    {
                        throw new ConfigException(key.Place, "digest is the MD5 of the body: 32 hexadecimal digits (genhash prints it)");
                    }
                    break;
                case "status_code":
                    if (key.Arguments.Count == 0)
                    {
                        throw new ConfigException(key.Place, "status_code takes codes or ranges (200 200-299 503)");
                    }
                    foreach (string code in key.Arguments)
                    {
                        codes.Add(StatusRange(key, code));
                    }
                    break;
                case "virtualhost":
                    virtualHost = OneArgument(key);
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        if (path is null)
        {
            throw new ConfigException(node.Place, "url needs a path");
        }
        if (codes.Count == 0)
        {
            codes.Add((200, 299));
        }
        return new UrlCheck(path, [.. codes], digest, virtualHost);
    }

    private static (int, int) StatusRange(ConfigNode key, string text)
    {
        int dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            int code = Integer(key, text, 100, 599);
            return (code, code);
        }
        int low = Integer(key, text[..dash], 100, 599);
        int high = Integer(key, text[(dash + 1)..], 100, 599);
        if (low > high)
        {
            throw new ConfigException(key.Place, $"status_code {text}: the range is empty");
        }
        return (low, high);
    }

    private static MiscCheckConfig Misc(ConfigNode node, List<ConfigNode> keys, TimeSpan delayLoop, List<ConfigWarning> warnings)
    {
        string? path = null;
        TimeSpan? timeout = null;
        bool dynamic = false;
        foreach (ConfigNode key in keys)
        {
            switch (key.Keyword)
            {
                case "misc_path":
                    path = Script(key);
                    break;
                case "misc_timeout":
                    timeout = Seconds(key, allowZero: false);
                    break;
                case "misc_dynamic":
                    NoArguments(key);
                    dynamic = true;
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        if (path is null)
        {
            throw new ConfigException(node.Place, "MISC_CHECK needs misc_path");
        }
        return new MiscCheckConfig(node.Place, path)
        {
            Timeout = timeout ?? delayLoop,
            Dynamic = dynamic,
        };
    }

    private static UdpCheckConfig Udp(ConfigNode node, List<ConfigNode> keys, List<ConfigWarning> warnings)
    {
        var check = new UdpCheckConfig(node.Place);
        foreach (ConfigNode key in keys)
        {
            switch (key.Keyword)
            {
                case "payload":
                    check = check with { Payload = [.. Hex(key, OneArgument(key))] };
                    break;
                case "require_reply":
                    string? pattern = key.Arguments.Count switch
                    {
                        0 => null,
                        1 => key.Arguments[0].ToUpperInvariant(),
                        _ => throw new ConfigException(key.Place, "require_reply takes at most one hexadecimal pattern"),
                    };
                    if (pattern is not null && (pattern.Length % 2 != 0 || !pattern.All(c => c == 'X' || Uri.IsHexDigit(c))))
                    {
                        throw new ConfigException(key.Place, "require_reply: the pattern is hexadecimal bytes, X for any nibble");
                    }
                    check = check with { RequireReply = true, ReplyPattern = pattern };
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        return check;
    }

    private static readonly FrozenSet<string> DnsTypes = FrozenSet.Create(StringComparer.Ordinal, "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA");

    private static DnsCheckConfig Dns(ConfigNode node, List<ConfigNode> keys, List<ConfigWarning> warnings)
    {
        var check = new DnsCheckConfig(node.Place);
        foreach (ConfigNode key in keys)
        {
            switch (key.Keyword)
            {
                case "type":
                    string type = OneArgument(key).ToUpperInvariant();
                    if (!DnsTypes.Contains(type))
                    {
                        throw new ConfigException(key.Place, $"type {key.Arguments[0]}: not A, NS, CNAME, SOA, MX, TXT or AAAA");
                    }
                    check = check with { Type = type };
                    break;
                case "name":
                    string name = OneArgument(key);
                    if (name.Length > 253 || name.Split('.').Any(label => label.Length > 63))
                    {
                        throw new ConfigException(key.Place, $"name {name}: not a DNS name (labels of at most 63 characters, 253 in all)");
                    }
                    check = check with { Name = name };
                    break;
                default:
                    Ignored(key, warnings);
                    break;
            }
        }
        return check;
    }

    private static ForwardingMethod Method(ConfigNode key) => MethodAndTunnel(key).Method;

    /// <summary>
    /// <c>lb_kind</c>/<c>lvs_method</c> NAT|DR|TUN, and for TUN keepalived's tunnel type:
    /// <c>TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]</c> (remcsum for GUE only).
    /// </summary>
    private static (ForwardingMethod Method, TunnelEncapsulation Tunnel) MethodAndTunnel(ConfigNode key)
    {
        IReadOnlyList<string> arguments = key.Arguments;
        if (arguments.Count == 0)
        {
            throw new ConfigException(key.Place, $"{key.Keyword} takes NAT, DR or TUN");
        }
        ForwardingMethod method = arguments[0].ToUpperInvariant() switch
        {
            "NAT" => ForwardingMethod.Masquerade,
            "DR" => ForwardingMethod.Route,
            "TUN" => ForwardingMethod.Tunnel,
            string other => throw new ConfigException(key.Place, $"{key.Keyword} {other}: not NAT, DR or TUN"),
        };
        if (arguments.Count == 1)
        {
            return (method, default);
        }
        if (method != ForwardingMethod.Tunnel || arguments.Count < 3 || arguments[1] != "type")
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: only TUN takes more (TUN type ipip|gue port N|gre [nocsum|csum|remcsum])");
        }
        int next = 3;
        TunnelType type = arguments[2] switch
        {
            "ipip" => TunnelType.Ipip,
            "gue" => TunnelType.Gue,
            "gre" => TunnelType.Gre,
            string other => throw new ConfigException(key.Place, $"{key.Keyword} TUN type {other}: not ipip, gue or gre"),
        };
        ushort port = 0;
        if (type == TunnelType.Gue)
        {
            if (arguments.Count < 5 || arguments[3] != "port")
            {
                throw new ConfigException(key.Place, $"{key.Keyword} TUN type gue: the port is required (type gue port N)");
            }
            port = (ushort)Integer(key, arguments[4], 1, 65535);
            next = 5;
        }
        TunnelChecksum checksum = TunnelChecksum.NoChecksum;
        if (arguments.Count > next)
        {
            checksum = (arguments[next], type) switch
            {
                ("nocsum", TunnelType.Gue or TunnelType.Gre) => TunnelChecksum.NoChecksum,
                ("csum", TunnelType.Gue or TunnelType.Gre) => TunnelChecksum.Checksum,
                ("remcsum", TunnelType.Gue) => TunnelChecksum.RemoteChecksum,
                _ => throw new ConfigException(key.Place, $"{key.Keyword} TUN type {arguments[2]}: {arguments[next]} is not one of its checksum options"),
            };
            next++;
        }
        if (arguments.Count > next)
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: '{arguments[next]}' is one argument too many");
        }
        return (method, new TunnelEncapsulation(type, port, checksum));
    }

    private static int Granularity(ConfigNode key, IPAddress service)
    {
        string text = OneArgument(key);
        if (service.AddressFamily == AddressFamily.InterNetworkV6)
        {
            return Integer(key, text, 1, 128);
        }
        if (!IPAddress.TryParse(text, out IPAddress? mask) || mask.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ConfigException(key.Place, $"persistence_granularity {text}: not an IPv4 netmask");
        }
        uint bits = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(mask.GetAddressBytes());
        int prefix = System.Numerics.BitOperations.PopCount(bits);
        if (bits != (prefix == 0 ? 0 : uint.MaxValue << (32 - prefix)) || prefix == 0)
        {
            throw new ConfigException(key.Place, $"persistence_granularity {text}: not a contiguous netmask");
        }
        return prefix;
    }

    private static IPAddress Address(ConfigNode key, string text)
    {
        if (!IPAddress.TryParse(text, out IPAddress? address) || text.Contains('%', StringComparison.Ordinal) ||
            (address.AddressFamily == AddressFamily.InterNetwork && text.Count(c => c == '.') != 3))
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: '{text}' is not an IP address");
        }
        return address;
    }

    private static ushort Port(ConfigNode key, string text, bool allowZero) =>
        (ushort)Integer(key, text, allowZero ? 0 : 1, 65535);

    private static int Integer(ConfigNode key, string text, int min, int max)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: '{text}' is not a whole number from {min} to {max}");
        }
        return value;
    }

    /// <summary>Seconds, with a fraction if wanted (keepalived reads timers as decimals, to the microsecond).</summary>
    private static TimeSpan Seconds(ConfigNode key, bool allowZero)
    {
        string text = OneArgument(key);
        if (!decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal seconds) ||
            seconds > 86_400 * 365 || (!allowZero && seconds == 0))
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: '{text}' is not a number of seconds{(allowZero ? "" : " above 0")}");
        }
        return TimeSpan.FromTicks((long)(seconds * TimeSpan.TicksPerSecond));
    }

    private static byte[] Hex(ConfigNode key, string text)
    {
        try
        {
            return Convert.FromHexString(text);
        }
        catch (FormatException)
        {
            throw new ConfigException(key.Place, $"{key.Keyword}: '{text}' is not hexadecimal bytes");
        }
    }

    /// <summary>A script and its arguments: the words of the line, joined (a quoted command is one word already).</summary>
    private static string Script(ConfigNode key) => key.Arguments.Count > 0
        ? string.Join(' ', key.Arguments)
        : throw new ConfigException(key.Place, $"{key.Keyword} needs a script path");

    private static string OneArgument(ConfigNode key) => key.Arguments.Count == 1 && key.Block is null
        ? key.Arguments[0]
        : throw new ConfigException(key.Place, $"{key.Keyword} takes one value");

    private static void NoArguments(ConfigNode key)
    {
        if (key.Arguments.Count != 0 || key.Block is not null)
        {
            throw new ConfigException(key.Place, $"{key.Keyword} takes no value");
        }
    }

    private static IReadOnlyList<ConfigNode> RequireBlock(ConfigNode node) =>
        node.Block ?? throw new ConfigException(node.Place, $"{node.Keyword} needs a block ({node.Keyword} … {{ … }})");

    private static void Ignored(ConfigNode key, List<ConfigWarning> warnings) =>
        warnings.Add(new ConfigWarning(key.Place, $"'{key.Keyword}' is not implemented by udr; ignored"));

    private static Inherited Ignored(ConfigNode key, List<ConfigWarning> warnings, Inherited inherited)
    {
        Ignored(key, warnings);
        return inherited;
    }
}
