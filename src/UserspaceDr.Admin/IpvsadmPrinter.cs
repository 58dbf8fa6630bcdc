using System.Globalization;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Admin;

/// <summary>ipvsadm's printing format flags (FMT_* in ipvsadm.c), set from the list options.</summary>
[Flags]
public enum IpvsadmFormat
{
    None = 0,
    Numeric = 0x1,
    /// <summary>-S: the rule format -R reads back.</summary>
    Rule = 0x2,
    Stats = 0x4,
    Rate = 0x8,
    Thresholds = 0x10,
    PersistentConnections = 0x20,
    NoSort = 0x40,
    Exact = 0x80,
    TunnelInfo = 0x100,
}

/// <summary>
/// The text ipvsadm 1.31 prints, byte for byte: list_all / list_service (header, titles, service and real-server
/// lines for plain, --stats, --rate, --thresholds, --persistent-conn and --tun-info listings), -S rules, -L -c
/// connection entries, --timeout, -h and -v. Column widths, trailing spaces, the 33- and 28-character cuts, K/M/G/T
/// scaling and --exact follow ipvsadm.c (print_title, print_service_entry, print_largenum, print_conn). Pure: the
/// state comes in, the text goes out.
/// </summary>
public static class IpvsadmPrinter
{
    /// <summary>IP_VS_VERSION_CODE 1.2.1, as the kernel reports it.</summary>
    public const string IpvsVersion = "1.2.1";

    /// <summary>What -v prints (and the first line of -h).</summary>
    public const string VersionLine = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v" + IpvsVersion + ")\n";

    /// <summary>The schedulers ipvsadm 1.31 names in its help (udr implements rr wrr lc wlc sed nq fo ovf sh mh).</summary>
    private const string SchedulerList = "rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh";

    private const int ServiceNameWidth = 33;
    private const int DestinationNameWidth = 28;
    private const int AddressPortBuffer = 60; // addrport_to_anyname's malloc(60) and snprintf

    /// <summary>The format flags a list or save command asks for.</summary>
    public static IpvsadmFormat FormatOf(IpvsadmCommand command)
    {
        ArgumentNullException.ThrowIfNull(command);
        IpvsadmFormat format = command.Kind == IpvsadmCommandKind.Save ? IpvsadmFormat.Rule : IpvsadmFormat.None;
        ReadOnlySpan<(IpvsadmOptions Option, IpvsadmFormat Format)> map =
        [
            (IpvsadmOptions.Numeric, IpvsadmFormat.Numeric),
            (IpvsadmOptions.Stats, IpvsadmFormat.Stats),
            (IpvsadmOptions.Rate, IpvsadmFormat.Rate),
            (IpvsadmOptions.Thresholds, IpvsadmFormat.Thresholds),
            (IpvsadmOptions.PersistentConnections, IpvsadmFormat.PersistentConnections),
            (IpvsadmOptions.NoSort, IpvsadmFormat.NoSort),
            (IpvsadmOptions.Exact, IpvsadmFormat.Exact),
            (IpvsadmOptions.TunnelInfo, IpvsadmFormat.TunnelInfo),
        ];
        foreach ((IpvsadmOptions option, IpvsadmFormat flag) in map)
        {
            if (command.Has(option))
            {
                format |= flag;
            }
        }
        return format;
    }

    /// <summary>list_all: "ipvsadm -L" (header, title, every service) or, with <see cref="IpvsadmFormat.Rule"/>, "ipvsadm -S".</summary>
    public static string ListAll(IpvsState state, IpvsadmFormat format, IIpvsadmNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(state);
        names ??= NumericNames.Instance;
        var text = new StringBuilder();
        if ((format & IpvsadmFormat.Rule) == 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"IP Virtual Server version {IpvsVersion} (size={state.ConnectionTableSize})\n");
        }
        AppendTitle(text, format);
        IEnumerable<VirtualServiceState> services = (format & IpvsadmFormat.NoSort) != 0
            ? state.Services
            : IpvsadmOrder.Sort(state.Services, (a, b) => IpvsadmOrder.CompareServices(a.Spec, b.Spec));
        foreach (VirtualServiceState service in services)
        {
            AppendService(text, service, format, names);
        }
        return text.ToString();
    }

    /// <summary>list_service: "ipvsadm -L -t VIP:port" (title and that one service, no header line).</summary>
    public static string ListService(VirtualServiceState service, IpvsadmFormat format, IIpvsadmNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(service);
        var text = new StringBuilder();
        AppendTitle(text, format);
        AppendService(text, service, format, names ?? NumericNames.Instance);
        return text.ToString();
    }

    /// <summary>list_conn: "ipvsadm -L -c" over the entries as given (the kernel lists them in hash order).</summary>
    public static string Connections(IEnumerable<IpvsConnection> connections, IpvsadmFormat format, IIpvsadmNames? names = null)
    {
        ArgumentNullException.ThrowIfNull(connections);
        names ??= NumericNames.Instance;
        var text = new StringBuilder("IPVS connection entries\n");
        text.Append("pro expire ").Append(Left("state", 11)).Append(' ').Append(Left("source", 18)).Append(' ')
            .Append(Left("virtual", 18)).Append(' ');
        if ((format & IpvsadmFormat.PersistentConnections) != 0)
        {
            text.Append(Left("destination", 18)).Append(' ').Append(Left("pe name", 16)).Append(" pe_data\n");
        }
        else
        {
            text.Append("destination\n");
        }
        foreach (IpvsConnection entry in connections)
        {
            // udr has no persistence engines, so no entry carries pe name/data: rows keep the short form, as
            // ipvsadm's own rows do when /proc has no such columns.
            long expires = Math.Max(0, entry.ExpiresInSeconds);
            string expire = string.Create(CultureInfo.InvariantCulture, $"{expires / 60:00}:{expires % 60:00}");
            text.Append(Left(ProtocolName(entry.Protocol), 3)).Append(' ')
                .Append(Left(expire, 6)).Append(' ')
                .Append(Left(entry.State, 11)).Append(' ')
                .Append(Left(AddressPort(entry.ClientAddress, entry.ClientPort, entry.Protocol, format, names), 18)).Append(' ')
                .Append(Left(AddressPort(entry.VirtualAddress, entry.VirtualPort, entry.Protocol, format, names), 18)).Append(' ')
                .Append(AddressPort(entry.DestinationAddress, entry.DestinationPort, entry.Protocol, format, names)).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>list_timeout: "ipvsadm -L --timeout".</summary>
    public static string Timeouts(IpvsTimeouts timeouts)
    {
        ArgumentNullException.ThrowIfNull(timeouts);
        return string.Create(CultureInfo.InvariantCulture, $"Timeout (tcp tcpfin udp): {timeouts.Tcp} {timeouts.TcpFin} {timeouts.Udp}\n");
    }

    /// <summary>usage_exit: what -h prints on stdout, with <paramref name="program"/> where ipvsadm puts argv[0].</summary>
    public static string Usage(string program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var text = new StringBuilder(VersionLine);
        text.Append("Usage:\n");
        foreach (string form in (ReadOnlySpan<string>)[
            "-A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]",
            "-D virtual-service", "-C", "-R", "-S [-n]", "-a|e virtual-service -r server-address [options]",
            "-d virtual-service -r server-address", "-L|l [virtual-service] [options]", "-Z [virtual-service]",
            "--set tcp tcpfin udp", "--start-daemon {master|backup} [daemon-options]", "--stop-daemon {master|backup}", "-h"])
        {
            text.Append("  ").Append(program).Append(' ').Append(form).Append('\n');
        }
        text.Append('\n');
        text.Append(
            "Commands:\n" +
            "Either long or short options are allowed.\n" +
            "  --add-service     -A        add virtual service with options\n" +
            "  --edit-service    -E        edit virtual service with options\n" +
            "  --delete-service  -D        delete virtual service\n" +
            "  --clear           -C        clear the whole table\n" +
            "  --restore         -R        restore rules from stdin\n" +
            "  --save            -S        save rules to stdout\n" +
            "  --add-server      -a        add real server with options\n" +
            "  --edit-server     -e        edit real server with options\n" +
            "  --delete-server   -d        delete real server\n" +
            "  --list            -L|-l     list the table\n" +
            "  --zero            -Z        zero counters in a service or all services\n" +
            "  --set tcp tcpfin udp        set connection timeout values\n" +
            "  --start-daemon              start connection sync daemon\n" +
            "  --stop-daemon               stop connection sync daemon\n" +
            "  --help            -h        display this help message\n\n");
        text.Append(
            "virtual-service:\n" +
            "  --tcp-service|-t  service-address   service-address is host[:port]\n" +
            "  --udp-service|-u  service-address   service-address is host[:port]\n" +
            "  --sctp-service    service-address   service-address is host[:port]\n" +
            "  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n" +
            "\n");
        text.Append(
            "Options:\n" +
            "  --ipv6         -6                   fwmark entry uses IPv6\n" +
            "  --scheduler    -s scheduler         one of " + SchedulerList + ",\n" +
            "                                      the default scheduler is " + IpvsadmParser.DefaultScheduler + ".\n" +
            "  --pe            engine              alternate persistence engine may be sip,\n" +
            "                                      not set by default.\n" +
            "  --persistent   -p [timeout]         persistent service\n" +
            "  --netmask      -M netmask           persistent granularity mask\n" +
            "  --real-server  -r server-address    server-address is host (and port)\n" +
            "  --gatewaying   -g                   gatewaying (direct routing) (default)\n" +
            "  --ipip         -i                   ipip encapsulation (tunneling)\n" +
            "  --masquerading -m                   masquerading (NAT)\n" +
            "  --tun-type      type                one of ipip|gue|gre,\n" +
            "                                      the default tunnel type is ipip.\n" +
            "  --tun-port      port                tunnel destination port\n" +
            "  --tun-nocsum                        tunnel encapsulation without checksum\n" +
            "  --tun-csum                          tunnel encapsulation with checksum\n" +
            "  --tun-remcsum                       tunnel encapsulation with remote checksum\n" +
            "  --weight       -w weight            capacity of real server\n" +
            "  --u-threshold  -x uthreshold        upper threshold of connections\n" +
            "  --l-threshold  -y lthreshold        lower threshold of connections\n" +
            "  --connection   -c                   output of current IPVS connections\n" +
            "  --timeout                           output of timeout (tcp tcpfin udp)\n" +
            "  --daemon                            output of daemon information\n" +
            "  --stats                             output of statistics information\n" +
            "  --rate                              output of rate information\n" +
            "  --exact                             expand numbers (display exact values)\n" +
            "  --thresholds                        output of thresholds information\n" +
            "  --persistent-conn                   output of persistent connection info\n" +
            "  --tun-info                          output of tunnel information\n" +
            "  --nosort                            disable sorting output of service/server entries\n" +
            "  --sort                              does nothing, for backwards compatibility\n" +
            "  --ops          -o                   one-packet scheduling\n" +
            "  --numeric      -n                   numeric output of addresses and ports\n" +
            "  --sched-flags  -b flags             scheduler flags (comma-separated)\n");
        text.Append(
            "Daemon Options:\n" +
            "  --syncid sid                        syncid for connection sync (default=255)\n" +
            "  --sync-maxlen length                Max sync message length (default=1472)\n" +
            "  --mcast-interface interface         multicast interface for connection sync\n" +
            "  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n" +
            "  --mcast-port port                   UDP port (default=8848)\n" +
            "  --mcast-ttl ttl                     Multicast TTL (default=1)\n");
        return text.ToString();
    }

    /// <summary>print_largenum: 9 columns, K/M/G/T scaled from 100 million up; --exact prints every digit.</summary>
    public static string LargeNumber(long value, IpvsadmFormat format)
    {
        ulong number = (ulong)Math.Max(0, value);
        string digits = number.ToString(CultureInfo.InvariantCulture);
        if ((format & IpvsadmFormat.Exact) != 0)
        {
            return digits.PadLeft(digits.Length <= 8 ? 9 : digits.Length + 1);
        }
        (ulong scaled, string unit) = number switch
        {
            < 100_000_000UL => (number, ""),
            < 1_000_000_000UL => (number / 1_000UL, "K"),
            < 100_000_000_000UL => (number / 1_000_000UL, "M"),
            < 100_000_000_000_000UL => (number / 1_000_000_000UL, "G"),
            _ => (number / 1_000_000_000_000UL, "T"),
        };
        return unit.Length == 0 ? digits.PadLeft(9) : scaled.ToString(CultureInfo.InvariantCulture).PadLeft(8) + unit;
    }

    /// <summary>Scheduler flags by name (print_sched_flags); empty for sh/mh with only flag-3, as in ipvsadm.</summary>
    internal static string SchedulerFlagNames(string scheduler, SchedulerFlags flags)
    {
        var names = new List<string>(3);
        if (scheduler is "sh" or "mh")
        {
            if ((flags & SchedulerFlags.Flag1) != 0)
            {
                names.Add(scheduler + "-fallback");
            }
            if ((flags & SchedulerFlags.Flag2) != 0)
            {
                names.Add(scheduler + "-port");
            }
        }
        else
        {
            if ((flags & SchedulerFlags.Flag1) != 0)
            {
                names.Add("flag-1");
            }
            if ((flags & SchedulerFlags.Flag2) != 0)
            {
                names.Add("flag-2");
            }
            if ((flags & SchedulerFlags.Flag3) != 0)
            {
                names.Add("flag-3");
            }
        }
        return string.Join(',', names);
    }

    private static void AppendTitle(StringBuilder text, IpvsadmFormat format)
    {
        const string Local = "Prot LocalAddress:Port";
        const string Remote = "  -> RemoteAddress:Port\n";
        if ((format & IpvsadmFormat.Stats) != 0)
        {
            text.Append(Left(Local, ServiceNameWidth)).Append(Columns8("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")).Append('\n').Append(Remote);
        }
        else if ((format & IpvsadmFormat.Rate) != 0)
        {
            text.Append(Left(Local, ServiceNameWidth)).Append(Columns8("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")).Append('\n').Append(Remote);
        }
        else if ((format & IpvsadmFormat.Thresholds) != 0)
        {
            text.Append(Left(Local, ServiceNameWidth)).Append(' ').Append(Left("Uthreshold", 10)).Append(' ').Append(Left("Lthreshold", 10))
                .Append(' ').Append(Left("ActiveConn", 10)).Append(' ').Append(Left("InActConn", 10)).Append('\n').Append(Remote);
        }
        else if ((format & IpvsadmFormat.PersistentConnections) != 0)
        {
            text.Append(Left(Local, ServiceNameWidth)).Append(' ').Append(Left("Weight", 9)).Append(' ').Append(Left("PersistConn", 11))
                .Append(' ').Append(Left("ActiveConn", 10)).Append(' ').Append(Left("InActConn", 10)).Append('\n').Append(Remote);
        }
        else if ((format & IpvsadmFormat.TunnelInfo) != 0)
        {
            text.Append("Prot LocalAddress:Port Scheduler Flags\n" +
                        "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n");
        }
        else if ((format & IpvsadmFormat.Rule) == 0)
        {
            text.Append("Prot LocalAddress:Port Scheduler Flags\n" +
                        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
        }
    }

    private static void AppendService(StringBuilder text, VirtualServiceState state, IpvsadmFormat format, IIpvsadmNames names)
    {
        VirtualServiceSpec service = state.Spec;
        string address = AddressPort(service.Address, service.Port, service.Protocol, format, names);
        string name;
        // print_service_entry formats the mark with %d: one of 2^31 or more prints negative, as ipvsadm prints it.
        string mark = ((int)service.FirewallMark).ToString(CultureInfo.InvariantCulture);
        if ((format & IpvsadmFormat.Rule) != 0)
        {
            name = service.IsFirewallMark
                ? "-f " + mark + (service.Address.IsIPv6 ? " -6" : "")
                : (service.Protocol == ServiceProtocol.Udp ? "-u " : "-t ") + address;
            text.Append("-A ").Append(name).Append(" -s ").Append(service.Scheduler);
            if (service.PersistenceTimeout > 0)
            {
                text.Append(" -p ").Append(service.PersistenceTimeout.ToString(CultureInfo.InvariantCulture));
                if (PersistenceMask(service) is string mask)
                {
                    text.Append(" -M ").Append(mask);
                }
            }
            if (service.OnePacket)
            {
                text.Append(" -o");
            }
            if (service.Flags != SchedulerFlags.None)
            {
                text.Append(" -b ").Append(SchedulerFlagNames(service.Scheduler, service.Flags));
            }
        }
        else
        {
            // ipvsadm cuts IPv4 names to the column and never IPv6 ones, whose columns shift instead.
            name = service.IsFirewallMark
                ? "FWM  " + mark + (service.Address.IsIPv6 ? " IPv6" : "")
                : Left(ProtocolName(service.Protocol), 4) + " " + address;
            name = service.Address.IsIPv6 ? name : Cut(name, ServiceNameWidth);
            if ((format & IpvsadmFormat.Stats) != 0)
            {
                text.Append(Left(name, ServiceNameWidth));
                AppendLarge(text, format, state.Stats.Connections, state.Stats.InPackets, state.Stats.OutPackets, state.Stats.InBytes, state.Stats.OutBytes);
            }
            else if ((format & IpvsadmFormat.Rate) != 0)
            {
                text.Append(Left(name, ServiceNameWidth));
                TrafficRates rates = state.Rates;
                AppendLarge(text, format, rates.ConnectionsPerSecond, rates.InPacketsPerSecond, rates.OutPacketsPerSecond,
                    rates.InBytesPerSecond, rates.OutBytesPerSecond);
            }
            else
            {
                text.Append(name).Append(' ').Append(service.Scheduler);
                if (service.Flags != SchedulerFlags.None)
                {
                    text.Append(" (").Append(SchedulerFlagNames(service.Scheduler, service.Flags)).Append(')');
                }
                if (service.PersistenceTimeout > 0)
                {
                    text.Append(" persistent ").Append(service.PersistenceTimeout.ToString(CultureInfo.InvariantCulture));
                    if (PersistenceMask(service) is string mask)
                    {
                        text.Append(" mask ").Append(mask);
                    }
                }
                if (service.OnePacket)
                {
                    text.Append(" ops");
                }
            }
        }
        text.Append('\n');

        IEnumerable<RealServerState> servers = (format & IpvsadmFormat.NoSort) != 0
            ? state.RealServers
            : IpvsadmOrder.Sort(state.RealServers, (a, b) => IpvsadmOrder.CompareRealServers(a.Spec, b.Spec));
        foreach (RealServerState server in servers)
        {
            AppendServer(text, name, service.Protocol, server, format, names);
        }
    }

    /// <summary>print_tunnel_rule: the type always, GUE's port, and for GUE and GRE the checksum option, --tun-nocsum included.</summary>
    private static void AppendTunnelRule(StringBuilder text, TunnelEncapsulation tunnel)
    {
        text.Append(" --tun-type ").Append(IpvsadmOptionRules.TunnelTypeName(tunnel.Type));
        if (tunnel.Type == TunnelType.Gue)
        {
            text.Append(" --tun-port ").Append(tunnel.Port.ToString(CultureInfo.InvariantCulture));
        }
        if (tunnel.Type != TunnelType.Ipip)
        {
            text.Append(tunnel.Checksum switch
            {
                TunnelChecksum.Checksum => " --tun-csum",
                TunnelChecksum.RemoteChecksum when tunnel.Type == TunnelType.Gue => " --tun-remcsum",
                _ => " --tun-nocsum",
            });
        }
    }

    private static void AppendServer(StringBuilder text, string serviceName, ServiceProtocol protocol, RealServerState state,
        IpvsadmFormat format, IIpvsadmNames names)
    {
        RealServerSpec server = state.Spec;
        string name = AddressPort(server.Address, server.Port, protocol, format, names);
        if ((format & IpvsadmFormat.Rule) != 0)
        {
            text.Append("-a ").Append(serviceName).Append(" -r ").Append(name).Append(' ').Append(ForwardingSwitch(server.Method))
                .Append(" -w ").Append(server.Weight.ToString(CultureInfo.InvariantCulture));
            if (server.Method == ForwardingMethod.Tunnel)
            {
                AppendTunnelRule(text, server.Tunnel);
            }
            text.Append('\n');
            return;
        }
        name = server.Address.IsIPv6 ? name : Cut(name, DestinationNameWidth);
        text.Append("  -> ");
        if ((format & IpvsadmFormat.Stats) != 0)
        {
            text.Append(Left(name, DestinationNameWidth));
            AppendLarge(text, format, state.Stats.Connections, state.Stats.InPackets, state.Stats.OutPackets, state.Stats.InBytes, state.Stats.OutBytes);
        }
        else if ((format & IpvsadmFormat.Rate) != 0)
        {
            // Only the byte rates go through print_largenum; the others are plain "%8llu".
            TrafficRates rates = state.Rates;
            text.Append(Left(name, DestinationNameWidth))
                .Append(' ').Append(Counter(rates.ConnectionsPerSecond).PadLeft(8))
                .Append(' ').Append(Counter(rates.InPacketsPerSecond).PadLeft(8))
                .Append(' ').Append(Counter(rates.OutPacketsPerSecond).PadLeft(8));
            AppendLarge(text, format, rates.InBytesPerSecond, rates.OutBytesPerSecond);
        }
        else if ((format & IpvsadmFormat.Thresholds) != 0)
        {
            text.Append(Left(name, DestinationNameWidth)).Append(' ')
                .Append(Left(Unsigned(server.UpperThreshold), 10)).Append(' ')
                .Append(Left(Unsigned(server.LowerThreshold), 10)).Append(' ')
                .Append(Left(Unsigned(state.ActiveConnections), 10)).Append(' ')
                .Append(Left(Unsigned(state.InactiveConnections), 10));
        }
        else if ((format & IpvsadmFormat.PersistentConnections) != 0)
        {
            text.Append(Left(name, DestinationNameWidth)).Append(' ')
                .Append(Left(Unsigned(server.Weight), 9)).Append(' ')
                .Append(Left(Unsigned(state.PersistentConnections), 11)).Append(' ')
                .Append(Left(Unsigned(state.ActiveConnections), 10)).Append(' ')
                .Append(Left(Unsigned(state.InactiveConnections), 10));
        }
        else if ((format & IpvsadmFormat.TunnelInfo) != 0)
        {
            text.Append(Left(name, DestinationNameWidth)).Append(' ')
                .Append(Left(ForwardingName(server.Method), 7)).Append(' ')
                .Append(Left(server.Method == ForwardingMethod.Tunnel ? server.Tunnel.ToString() : "n/a", 13)).Append(' ')
                .Append(Left(server.Weight.ToString(CultureInfo.InvariantCulture), 6)).Append(' ')
                .Append(Left(Unsigned(state.ActiveConnections), 10)).Append(' ')
                .Append(Left(Unsigned(state.InactiveConnections), 10));
        }
        else
        {
            text.Append(Left(name, DestinationNameWidth)).Append(' ')
                .Append(Left(ForwardingName(server.Method), 7)).Append(' ')
                .Append(Left(server.Weight.ToString(CultureInfo.InvariantCulture), 6)).Append(' ')
                .Append(Left(Unsigned(state.ActiveConnections), 10)).Append(' ')
                .Append(Left(Unsigned(state.InactiveConnections), 10));
        }
        text.Append('\n');
    }

    private static void AppendLarge(StringBuilder text, IpvsadmFormat format, params ReadOnlySpan<long> values)
    {
        foreach (long value in values)
        {
            text.Append(LargeNumber(value, format));
        }
    }

    /// <summary>
    /// addrport_to_anyname: "address:port" (IPv6: "[address]:port"), by name unless -n, at most 59 characters.
    /// </summary>
    private static string AddressPort(InetAddress address, ushort port, ServiceProtocol protocol, IpvsadmFormat format, IIpvsadmNames names)
    {
        bool numeric = (format & IpvsadmFormat.Numeric) != 0;
        string host = (numeric ? null : names.HostName(address)) ?? address.ToString();
        string service = (numeric ? null : names.ServiceName(port, protocol)) ?? port.ToString(CultureInfo.InvariantCulture);
        string text = address.IsIPv6 ? $"[{host}]:{service}" : $"{host}:{service}"; // names, not only numbers: not InetAddress.WithPort
        return Cut(text, AddressPortBuffer - 1);
    }

    /// <summary>The -M a listing shows: an IPv4 netmask other than /32, an IPv6 prefix length other than 128; null for neither.</summary>
    private static string? PersistenceMask(VirtualServiceSpec service) => service.Address.IsIPv6
        ? (service.PersistenceNetmask != 128 ? service.PersistenceNetmask.ToString(CultureInfo.InvariantCulture) : null)
        : (service.PersistenceNetmask != 0xFFFF_FFFF ? Ipv4Address.Format(service.PersistenceNetmask) : null);

    public static string ProtocolName(ServiceProtocol protocol) => protocol switch
    {
        ServiceProtocol.Tcp => "TCP",
        ServiceProtocol.Udp => "UDP",
        0 => "IP", // a firewall-mark service's persistence template (IPPROTO_IP)
        _ => "?",
    };

    /// <summary>fwd_name: the Forward column.</summary>
    public static string ForwardingName(ForwardingMethod method) => method switch
    {
        ForwardingMethod.Masquerade => "Masq",
        ForwardingMethod.Local => "Local",
        ForwardingMethod.Tunnel => "Tunnel",
        _ => "Route",
    };

    /// <summary>fwd_switch: local servers are saved as -g.</summary>
    private static string ForwardingSwitch(ForwardingMethod method) => method switch
    {
        ForwardingMethod.Masquerade => "-m",
        ForwardingMethod.Tunnel => "-i",
        _ => "-g",
    };

    private static string Columns8(params ReadOnlySpan<string> titles)
    {
        var text = new StringBuilder();
        foreach (string title in titles)
        {
            text.Append(' ').Append(title.PadLeft(8));
        }
        return text.ToString();
    }

    /// <summary>"%u" of a C int: what a negative value would print as.</summary>
    private static string Unsigned(int value) => ((uint)value).ToString(CultureInfo.InvariantCulture);

    /// <summary>"%llu" of a 64-bit counter (never below 0 here).</summary>
    private static string Counter(long value) => Math.Max(0, value).ToString(CultureInfo.InvariantCulture);

    /// <summary>"%-Ns": pad on the right, never cut.</summary>
    private static string Left(string text, int width) => text.PadRight(width);

    private static string Cut(string text, int length) => text.Length > length ? text[..length] : text;
}
