using System.Net;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// Parses an ipvsadm argument vector (the words after "ipvsadm") into an <see cref="IpvsadmCommand"/>, with
/// ipvsadm 1.31's checks, in its order, with its messages and exit statuses (see ipvsadm.c parse_options and
/// process_options). Nothing here touches a rule set: that is <see cref="RuleSetEditor"/>'s job, as the kernel's.
/// </summary>
public static class IpvsadmParser
{
    /// <summary>DEF_SCHED: what -A and -E use when -s is not given (-E too: it does not keep the old one).</summary>
    public const string DefaultScheduler = "wlc";

    /// <summary>IPVS_SVC_PERSISTENT_TIMEOUT (libipvs.h): a bare -p. The man page's 300 is out of date.</summary>
    public const int DefaultPersistenceTimeout = 360;

    /// <summary>MAX_TIMEOUT: 31 days, the upper bound of -p and --set.</summary>
    public const int MaxTimeout = 86400 * 31;

    /// <summary>DEF_MCAST_IFN.</summary>
    public const string DefaultMcastInterface = "eth0";

    // Field sizes ipvsadm copies into (strncpy / snprintf), so over-long words are cut the same way.
    private const int SchedulerNameMaxLength = 15;
    private const int PersistenceEngineMaxLength = 16;
    private const int InterfaceNameMaxLength = 15;
    private const int SchedulerFlagsMaxLength = 127;

    /// <summary>Parses <paramref name="args"/>; <paramref name="programName"/> only appears in the "Try ... -h" hint.</summary>
    public static IpvsadmResult<IpvsadmCommand> Parse(IReadOnlyList<string> args, string programName = "ipvsadm")
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0)
        {
            // main(): no arguments at all lists the table.
            return IpvsadmResult.Success(new IpvsadmCommand(IpvsadmCommandKind.List));
        }
        try
        {
            return IpvsadmResult.Success(new CommandLine(args, programName).Parse());
        }
        catch (IpvsadmUsageException failure)
        {
            return IpvsadmResult.Failure<IpvsadmCommand>(failure.Error);
        }
    }

    /// <summary>ipvsadm's fail(): ends the parse with a message and exit status.</summary>
    private sealed class IpvsadmUsageException(IpvsadmError error) : Exception(error.Message)
    {
        public IpvsadmError Error { get; } = error;
    }

    /// <summary>The state of one process_options() call (ipvsadm's struct ipvs_command_entry and friends).</summary>
    private sealed class CommandLine(IReadOnlyList<string> args, string programName)
    {
        private readonly PoptScanner _scanner = new(args);
        private IpvsadmCommandKind _kind;
        private IpvsadmOptions _options;

        // The virtual service as parsed so far; later options (-r, -6, -M) read it as it stands at that point.
        private VirtualServiceKind _serviceKind = VirtualServiceKind.Tcp;
        private bool _serviceIpv6;
        private IPAddress _serviceAddress = IPAddress.Any;
        private ushort _servicePort;
        private uint _firewallMark;
        private uint _netmask = 0xFFFF_FFFF;

        private string _scheduler = "";
        private int _persistenceTimeout;
        private bool _onePacket;
        private string _persistenceEngine = "";
        private string _schedulerFlagsText = "";

        private RealServerAddress? _realServer;
        private ForwardingMethod _method = ForwardingMethod.Route;
        private int _weight = 1;
        private int _upperThreshold;
        private int _lowerThreshold;
        private TunnelType _tunnelType = TunnelType.Ipip;
        private ushort _tunnelPort;
        private TunnelChecksum _tunnelChecksum;

        private SyncDaemonSettings? _daemon;
        private IpvsTimeouts? _timeouts;

        public IpvsadmCommand Parse()
        {
            if (!_scanner.TryNext(out OptionSpec? first, out string? firstArgument, out _))
            {
                throw TryHelp();
            }
            switch (first!.Id)
            {
                case OptionId.AddService: _kind = IpvsadmCommandKind.AddService; break;
                case OptionId.EditService: _kind = IpvsadmCommandKind.EditService; break;
                case OptionId.DeleteService: _kind = IpvsadmCommandKind.DeleteService; break;
                case OptionId.AddServer: _kind = IpvsadmCommandKind.AddServer; break;
                case OptionId.EditServer: _kind = IpvsadmCommandKind.EditServer; break;
                case OptionId.DeleteServer: _kind = IpvsadmCommandKind.DeleteServer; break;
                case OptionId.Clear: _kind = IpvsadmCommandKind.Flush; break;
                case OptionId.List: _kind = IpvsadmCommandKind.List; break;
                case OptionId.Zero: _kind = IpvsadmCommandKind.Zero; break;
                case OptionId.Set: _kind = IpvsadmCommandKind.SetTimeouts; break;
                case OptionId.Restore: _kind = IpvsadmCommandKind.Restore; break;
                case OptionId.Save: _kind = IpvsadmCommandKind.Save; break;
                case OptionId.StartDaemon:
                    _kind = IpvsadmCommandKind.StartDaemon;
                    _daemon = new SyncDaemonSettings(ParseDaemonRole(firstArgument!, "illegal start-daemon parameter specified"));
                    break;
                case OptionId.StopDaemon:
                    _kind = IpvsadmCommandKind.StopDaemon;
                    // Sic: ipvsadm's message for --stop-daemon says start_daemon.
                    _daemon = new SyncDaemonSettings(ParseDaemonRole(firstArgument!, "illegal start_daemon specified"));
                    break;
                case OptionId.Help:
                    // usage_exit(0) / version_exit(0) happen before anything else is looked at.
                    return new IpvsadmCommand(IpvsadmCommandKind.Help);
                case OptionId.Version:
                    return new IpvsadmCommand(IpvsadmCommandKind.Version);
                default:
                    // The command must come first: "ipvsadm -n -L" is refused the same way.
                    throw TryHelp();
            }

            while (true)
            {
                if (!_scanner.TryNext(out OptionSpec? option, out string? argument, out PoptError error))
                {
                    if (error != PoptError.None)
                    {
                        // ipvsadm prints popt's complaint and returns -1 from main: exit status 255.
                        throw new IpvsadmUsageException(new IpvsadmError(
                            $"{_scanner.BadOption}: {PoptScanner.Describe(error)}", IpvsadmError.FailureExitCode));
                    }
                    break;
                }
                ParseOption(option!.Id, argument);
            }

            if (_kind == IpvsadmCommandKind.SetTimeouts)
            {
                string? tcp = _scanner.NextLeftover();
                string? tcpFin = tcp is null ? null : _scanner.NextLeftover();
                string? udp = tcpFin is null ? null : _scanner.NextLeftover();
                if (udp is null)
                {
                    throw Fail("--set option requires 3 timeout values");
                }
                _timeouts = new IpvsTimeouts(ParseTimeout(tcp!, 0), ParseTimeout(tcpFin!, 0), ParseTimeout(udp, 0));
            }
            if (_scanner.NextLeftover() is string unexpected)
            {
                throw Fail($"unexpected argument {unexpected}");
            }
            SchedulerFlags schedulerFlags = _schedulerFlagsText.Length > 0 ? ParseSchedulerFlags() : SchedulerFlags.None;

            if (IpvsadmOptionRules.Check(_kind, _options) is string illegal)
            {
                throw Fail(illegal);
            }
            if (_kind is IpvsadmCommandKind.AddService or IpvsadmCommandKind.EditService)
            {
                bool isFirewallMark = _serviceKind == VirtualServiceKind.FirewallMark;
                if (!isFirewallMark && _servicePort == 0 && _persistenceTimeout == 0)
                {
                    throw Fail("Zero port specified for non-persistent service");
                }
                if (_onePacket && !isFirewallMark && _serviceKind != VirtualServiceKind.Udp)
                {
                    throw Fail("One-Packet Scheduling is only for UDP virtual services");
                }
                if (_scheduler.Length == 0)
                {
                    _scheduler = DefaultScheduler;
                }
            }
            if (_kind == IpvsadmCommandKind.StartDaemon && _daemon!.McastInterface.Length == 0)
            {
                _daemon = _daemon with { McastInterface = DefaultMcastInterface };
            }
            if (_kind is IpvsadmCommandKind.AddServer or IpvsadmCommandKind.EditServer)
            {
                CheckServer();
            }
            if (_kind == IpvsadmCommandKind.List && ListOptionsConflict())
            {
                throw Fail("options conflicts in the list command");
            }
            return BuildCommand(schedulerFlags);
        }

        private void ParseOption(OptionId id, string? argument)
        {
            switch (id)
            {
                case OptionId.TcpService:
                case OptionId.UdpService:
                case OptionId.SctpService:
                    SetOption(IpvsadmOptions.Service);
                    _serviceKind = id switch
                    {
                        OptionId.TcpService => VirtualServiceKind.Tcp,
                        OptionId.UdpService => VirtualServiceKind.Udp,
                        _ => VirtualServiceKind.Sctp,
                    };
                    if (!TryParseService(argument!, _serviceKind, out ParsedAddress service) || service.Address is null)
                    {
                        throw Fail("illegal virtual server address[:port] specified");
                    }
                    _serviceAddress = service.Address;
                    _serviceIpv6 = service.IsIpv6;
                    if (service.IsIpv6)
                    {
                        _netmask = 128;
                    }
                    if (service.Port is ushort port)
                    {
                        _servicePort = port;
                    }
                    break;
                case OptionId.FwmarkService:
                    SetOption(IpvsadmOptions.Service);
                    _serviceKind = VirtualServiceKind.FirewallMark;
                    _serviceIpv6 = false;
                    _firewallMark = ParseFirewallMark(argument!);
                    break;
                case OptionId.Scheduler:
                    SetOption(IpvsadmOptions.Scheduler);
                    _scheduler = Truncate(argument!, SchedulerNameMaxLength);
                    break;
                case OptionId.Persistent:
                    SetOption(IpvsadmOptions.Persistent);
                    _persistenceTimeout = argument is null ? DefaultPersistenceTimeout : ParseTimeout(argument, 1);
                    break;
                case OptionId.Netmask:
                    SetOption(IpvsadmOptions.Netmask);
                    _netmask = ParseNetmask(argument!);
                    break;
                case OptionId.RealServer:
                    SetOption(IpvsadmOptions.RealServer);
                    // ipvsadm parses -r into a copy of the service, so a missing port means the service port
                    // as far as it has been parsed at this point.
                    if (!TryParseService(argument!, _serviceKind, out ParsedAddress server) || server.Address is null)
                    {
                        throw Fail("illegal real server address[:port] specified");
                    }
                    _realServer = new RealServerAddress(server.Address, server.Port ?? _servicePort);
                    break;
                case OptionId.Ipip:
                    SetOption(IpvsadmOptions.ForwardingMethod);
                    _method = ForwardingMethod.Tunnel;
                    break;
                case OptionId.Gatewaying:
                    SetOption(IpvsadmOptions.ForwardingMethod);
                    _method = ForwardingMethod.Route;
                    break;
                case OptionId.Masquerading:
                    SetOption(IpvsadmOptions.ForwardingMethod);
                    _method = ForwardingMethod.Masquerade;
                    break;
                case OptionId.Weight:
                    SetOption(IpvsadmOptions.Weight);
                    _weight = ParseNumber(argument!, 0, 65535, "illegal weight specified");
                    break;
                case OptionId.UpperThreshold:
                    SetOption(IpvsadmOptions.UpperThreshold);
                    _upperThreshold = ParseNumber(argument!, 0, int.MaxValue, "illegal u_threshold specified");
                    break;
                case OptionId.LowerThreshold:
                    SetOption(IpvsadmOptions.LowerThreshold);
                    _lowerThreshold = ParseNumber(argument!, 0, int.MaxValue, "illegal l_threshold specified");
                    break;
                case OptionId.Connection: SetOption(IpvsadmOptions.Connection); break;
                case OptionId.Numeric: SetOption(IpvsadmOptions.Numeric); break;
                case OptionId.McastInterface:
                    SetOption(IpvsadmOptions.McastInterface);
                    _daemon = DaemonSettings() with { McastInterface = Truncate(argument!, InterfaceNameMaxLength) };
                    break;
                case OptionId.SyncId:
                    SetOption(IpvsadmOptions.SyncId);
                    _daemon = DaemonSettings() with { SyncId = ParseNumber(argument!, 0, 255, "illegal syncid specified") };
                    break;
                case OptionId.Timeout: SetOption(IpvsadmOptions.Timeout); break;
                case OptionId.Daemon: SetOption(IpvsadmOptions.Daemon); break;
                case OptionId.Stats: SetOption(IpvsadmOptions.Stats); break;
                case OptionId.Rate: SetOption(IpvsadmOptions.Rate); break;
                case OptionId.Thresholds: SetOption(IpvsadmOptions.Thresholds); break;
                case OptionId.PersistentConnections: SetOption(IpvsadmOptions.PersistentConnections); break;
                case OptionId.NoSort: SetOption(IpvsadmOptions.NoSort); break;
                case OptionId.Sort: break; // sorting is the default; kept for compatibility
                case OptionId.Exact: SetOption(IpvsadmOptions.Exact); break;
                case OptionId.Ipv6:
                    if (_firewallMark == 0)
                    {
                        throw Fail("-6 used before -f");
                    }
                    _serviceIpv6 = true;
                    _netmask = 128;
                    break;
                case OptionId.OnePacket:
                    SetOption(IpvsadmOptions.OnePacket);
                    _onePacket = true;
                    break;
                case OptionId.PersistenceEngine:
                    SetOption(IpvsadmOptions.PersistenceEngine);
                    _persistenceEngine = Truncate(argument!, PersistenceEngineMaxLength);
                    break;
                case OptionId.SchedulerFlags:
                    SetOption(IpvsadmOptions.SchedulerFlags);
                    _schedulerFlagsText = Truncate(argument!, SchedulerFlagsMaxLength);
                    break;
                case OptionId.McastGroup:
                    SetOption(IpvsadmOptions.McastGroup);
                    _daemon = DaemonSettings() with { McastGroup = ParseMcastGroup(argument!) };
                    break;
                case OptionId.McastPort:
                    SetOption(IpvsadmOptions.McastPort);
                    _daemon = DaemonSettings() with { McastPort = ParseNumber(argument!, 1, 65535, "illegal mcast-port specified") };
                    break;
                case OptionId.McastTtl:
                    SetOption(IpvsadmOptions.McastTtl);
                    _daemon = DaemonSettings() with { McastTtl = ParseNumber(argument!, 1, 255, "illegal mcast-ttl specified") };
                    break;
                case OptionId.SyncMaxLength:
                    SetOption(IpvsadmOptions.SyncMaxLength);
                    // 65535 less the IPv4 and UDP headers.
                    _daemon = DaemonSettings() with { SyncMaxLength = ParseNumber(argument!, 1, 65535 - 20 - 8, "illegal sync-maxlen specified") };
                    break;
                case OptionId.TunnelInfo: SetOption(IpvsadmOptions.TunnelInfo); break;
                case OptionId.TunnelType:
                    SetOption(IpvsadmOptions.TunnelType);
                    _tunnelType = argument switch
                    {
                        "ipip" => TunnelType.Ipip,
                        "gue" => TunnelType.Gue,
                        "gre" => TunnelType.Gre,
                        _ => throw Fail("illegal tunnel type specified"),
                    };
                    break;
                case OptionId.TunnelPort:
                    SetOption(IpvsadmOptions.TunnelPort);
                    _tunnelPort = (ushort)ParseNumber(argument!, 1, 65535, "illegal tunnel port specified");
                    break;
                case OptionId.TunnelNoChecksum:
                    SetOption(IpvsadmOptions.TunnelNoChecksum);
                    _tunnelChecksum = TunnelChecksum.NoChecksum;
                    break;
                case OptionId.TunnelChecksum:
                    SetOption(IpvsadmOptions.TunnelChecksum);
                    _tunnelChecksum = TunnelChecksum.Checksum;
                    break;
                case OptionId.TunnelRemoteChecksum:
                    SetOption(IpvsadmOptions.TunnelRemoteChecksum);
                    _tunnelChecksum = TunnelChecksum.RemoteChecksum;
                    break;
                default:
                    // A second command (or -h/-v) after the first: ipvsadm has no case for it in its option
                    // loop, so "-A ... -E" reads "invalid option `-E'" rather than "multiple commands specified".
                    throw Fail($"invalid option `{_scanner.BadOption}'");
            }
        }

        private void CheckServer()
        {
            // -g and -i cannot change the port: the packet keeps the one the client sent to.
            if (_serviceKind != VirtualServiceKind.FirewallMark &&
                _method is ForwardingMethod.Tunnel or ForwardingMethod.Route)
            {
                _realServer = _realServer! with { Port = _servicePort };
            }
            if (_realServer!.IsIpv6 != _serviceIpv6 && _method != ForwardingMethod.Tunnel)
            {
                throw Fail("Different address family is allowed only for tunneling servers");
            }
            const IpvsadmOptions tunnelOptions = IpvsadmOptions.TunnelType | IpvsadmOptions.TunnelPort |
                IpvsadmOptions.TunnelNoChecksum | IpvsadmOptions.TunnelChecksum | IpvsadmOptions.TunnelRemoteChecksum;
            if ((_options & tunnelOptions) != 0 && _method != ForwardingMethod.Tunnel)
            {
                throw Fail("Tunnel options conflict with forward method");
            }
            if (IpvsadmOptionRules.CheckTunnel(_tunnelType, _options) is string illegal)
            {
                throw Fail(illegal);
            }
        }

        private bool ListOptionsConflict()
        {
            bool detail = (_options & (IpvsadmOptions.Connection | IpvsadmOptions.Timeout | IpvsadmOptions.Daemon)) != 0;
            bool counters = (_options & (IpvsadmOptions.Stats | IpvsadmOptions.Rate | IpvsadmOptions.Thresholds)) != 0;
            bool settings = (_options & (IpvsadmOptions.Timeout | IpvsadmOptions.Daemon)) != 0;
            return (detail && counters) || (settings && (_options & IpvsadmOptions.PersistentConnections) != 0);
        }

        private IpvsadmCommand BuildCommand(SchedulerFlags schedulerFlags)
        {
            VirtualServiceAddress? service = null;
            if ((_options & IpvsadmOptions.Service) != 0)
            {
                service = _serviceKind == VirtualServiceKind.FirewallMark
                    ? new VirtualServiceAddress(_serviceKind, _serviceIpv6 ? IPAddress.IPv6Any : IPAddress.Any, 0, _firewallMark) { IsIpv6 = _serviceIpv6 }
                    : new VirtualServiceAddress(_serviceKind, _serviceAddress, _servicePort);
            }
            return new IpvsadmCommand(_kind)
            {
                Options = _options,
                Service = service,
                Scheduler = _scheduler,
                SchedulerFlags = schedulerFlags,
                PersistenceTimeout = _persistenceTimeout,
                PersistenceNetmask = _netmask,
                OnePacket = _onePacket,
                PersistenceEngine = _persistenceEngine,
                RealServer = _realServer,
                Method = _method,
                Weight = _weight,
                UpperThreshold = _upperThreshold,
                LowerThreshold = _lowerThreshold,
                TunnelType = _tunnelType,
                TunnelPort = _tunnelPort,
                TunnelChecksum = _tunnelChecksum,
                Timeouts = _timeouts,
                Daemon = _kind is IpvsadmCommandKind.StartDaemon or IpvsadmCommandKind.StopDaemon ? _daemon : null,
            };
        }

        private SyncDaemonSettings DaemonSettings() => _daemon ?? new SyncDaemonSettings(SyncDaemonRole.Master);

        private void SetOption(IpvsadmOptions option)
        {
            if ((_options & option) != 0)
            {
                throw Fail($"multiple '{IpvsadmOptionRules.OptionName(option)}' options specified");
            }
            _options |= option;
        }

        /// <summary>parse_sched_flags: comma list, checked against this command's -s (or wlc when none).</summary>
        private SchedulerFlags ParseSchedulerFlags()
        {
            string scheduler = _scheduler.Length > 0 ? _scheduler : DefaultScheduler;
            SchedulerFlags flags = SchedulerFlags.None;
            string[] names = _schedulerFlagsText.Split(',', StringSplitOptions.RemoveEmptyEntries);
            if (names.Length == 0)
            {
                throw Fail("invalid scheduler flag `'");
            }
            foreach (string name in names)
            {
                (SchedulerFlags flag, string? requires) = name switch
                {
                    "flag-1" => (SchedulerFlags.Flag1, null),
                    "flag-2" => (SchedulerFlags.Flag2, null),
                    "flag-3" => (SchedulerFlags.Flag3, (string?)null),
                    "sh-fallback" => (SchedulerFlags.Flag1, "sh"),
                    "sh-port" => (SchedulerFlags.Flag2, "sh"),
                    "mh-fallback" => (SchedulerFlags.Flag1, "mh"),
                    "mh-port" => (SchedulerFlags.Flag2, "mh"),
                    _ => throw Fail($"invalid scheduler flag `{name}'"),
                };
                if (requires is not null && scheduler != requires)
                {
                    throw Fail($"incompatible scheduler flag `{name}'");
                }
                flags |= flag;
            }
            return flags;
        }

        /// <summary>parse_service: "addr", "addr:port", "[v6]:port" or bare IPv6; port by number or service name.</summary>
        private static bool TryParseService(string text, VirtualServiceKind kind, out ParsedAddress parsed)
        {
            parsed = default;
            if (text.All(char.IsAsciiDigit))
            {
                return false; // a bare number (or nothing) is never a host
            }
            string host = text;
            string? portText = null;
            bool bracketed = false;
            if (text.StartsWith('['))
            {
                int close = text.IndexOf(']', StringComparison.Ordinal);
                if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
                {
                    return false;
                }
                host = text[1..close];
                portText = text[(close + 2)..];
                bracketed = true;
            }
            IPAddress address;
            bool ipv6 = IpvsadmSyntax.TryParseIpv6(host, out IPAddress v6);
            if (ipv6)
            {
                address = v6;
            }
            else
            {
                if (!bracketed)
                {
                    int colon = host.LastIndexOf(':');
                    if (colon >= 0)
                    {
                        portText = host[(colon + 1)..];
                        host = host[..colon];
                    }
                }
                else
                {
                    // ipvsadm cut the word at ']' and looks for the port in what is left: "[1.2.3.4]:80" has none.
                    portText = null;
                }
                if (!IpvsadmSyntax.TryInetAton(host, out uint v4))
                {
                    return false; // ipvsadm would try DNS here; udr never does
                }
                address = IpvsadmSyntax.FromHostOrder(v4);
            }
            ushort? port = null;
            if (portText is not null)
            {
                if (IpvsadmSyntax.TryStringToNumber(portText, 0, 65535, out long number))
                {
                    port = (ushort)number;
                }
                else if (IpvsadmSyntax.ServiceToPort(portText, kind) is int named and >= 0)
                {
                    port = (ushort)named;
                }
                else
                {
                    return false;
                }
            }
            parsed = new ParsedAddress(address, port, ipv6);
            return true;
        }

        private uint ParseNetmask(string text)
        {
            if (_serviceIpv6)
            {
                long prefix = IpvsadmSyntax.Atoi(text);
                if (prefix is < 1 or > 128)
                {
                    throw Fail("illegal ipv6 netmask specified");
                }
                return (uint)prefix;
            }
            if (!IpvsadmSyntax.TryInetAton(text, out uint mask))
            {
                throw Fail("illegal virtual server persistent mask specified");
            }
            return mask;
        }

        private static uint ParseFirewallMark(string text)
        {
            if (!IpvsadmSyntax.TryStringToNumber(text, 1, uint.MaxValue, out long mark))
            {
                throw Fail($"invalid fwmark value `{text}' specified");
            }
            return (uint)mark;
        }

        private static int ParseTimeout(string text, int min)
        {
            if (!IpvsadmSyntax.TryStringToNumber(text, min, MaxTimeout, out long seconds))
            {
                throw Fail($"invalid timeout value `{text}' specified");
            }
            return (int)seconds;
        }

        private static int ParseNumber(string text, int min, int max, string message)
        {
            if (!IpvsadmSyntax.TryStringToNumber(text, min, max, out long value))
            {
                throw Fail(message);
            }
            return (int)value;
        }

        private static SyncDaemonRole ParseDaemonRole(string text, string message) => text switch
        {
            "master" => SyncDaemonRole.Master,
            "backup" => SyncDaemonRole.Backup,
            _ => throw Fail(message),
        };

        private static IPAddress ParseMcastGroup(string text)
        {
            if (text.Contains(':', StringComparison.Ordinal))
            {
                if (!IpvsadmSyntax.TryParseIpv6(text, out IPAddress v6) || !v6.IsIPv6Multicast)
                {
                    throw Fail($"invalid IPv6 mcast-group `{text}'");
                }
                return v6;
            }
            if (!Ipv4Address.TryParse(text, out uint v4) || (v4 >> 28) != 0xE)
            {
                throw Fail($"invalid IPv4 mcast-group `{text}'");
            }
            return IpvsadmSyntax.FromHostOrder(v4);
        }

        private static string Truncate(string text, int maxLength) => text.Length > maxLength ? text[..maxLength] : text;

        private static IpvsadmUsageException Fail(string message) =>
            new(new IpvsadmError(message, IpvsadmError.UsageExitCode));

        private IpvsadmUsageException TryHelp() =>
            new(new IpvsadmError($"Try `{programName} -h' or '{programName} --help' for more information.", IpvsadmError.FailureExitCode));
    }

    private readonly record struct ParsedAddress(IPAddress? Address, ushort? Port, bool IsIpv6);
}
