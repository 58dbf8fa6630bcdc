using System.Net;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// The ipvsadm commands, in ipvsadm's own order (CMD_ADD .. CMD_ZERO), plus -h and -v which ipvsadm handles
/// by printing and exiting. <see cref="IpvsadmOptionRules"/> indexes its legality table by this order.
/// </summary>
public enum IpvsadmCommandKind
{
    /// <summary>-A, --add-service.</summary>
    AddService,
    /// <summary>-E, --edit-service.</summary>
    EditService,
    /// <summary>-D, --delete-service.</summary>
    DeleteService,
    /// <summary>-C, --clear ("flush").</summary>
    Flush,
    /// <summary>-L, -l, --list (also what no arguments at all mean).</summary>
    List,
    /// <summary>-a, --add-server.</summary>
    AddServer,
    /// <summary>-d, --delete-server.</summary>
    DeleteServer,
    /// <summary>-e, --edit-server.</summary>
    EditServer,
    /// <summary>--set tcp tcpfin udp.</summary>
    SetTimeouts,
    /// <summary>--start-daemon master|backup.</summary>
    StartDaemon,
    /// <summary>--stop-daemon master|backup.</summary>
    StopDaemon,
    /// <summary>-R, --restore.</summary>
    Restore,
    /// <summary>-S, --save.</summary>
    Save,
    /// <summary>-Z, --zero.</summary>
    Zero,
    /// <summary>-h, --help: print usage to stdout, exit 0.</summary>
    Help,
    /// <summary>-v, --version: print the version line to stdout, exit 0.</summary>
    Version,
}

/// <summary>
/// Which options a command line carried; bit n is ipvsadm's OPT_* bit n, so the names in
/// <see cref="IpvsadmOptionRules"/> line up. -6 and --sort are not tracked, as in ipvsadm.
/// </summary>
[Flags]
public enum IpvsadmOptions : long
{
    None = 0,
    Numeric = 1L << 0,
    Connection = 1L << 1,
    Service = 1L << 2,
    Scheduler = 1L << 3,
    Persistent = 1L << 4,
    Netmask = 1L << 5,
    RealServer = 1L << 6,
    ForwardingMethod = 1L << 7,
    Weight = 1L << 8,
    UpperThreshold = 1L << 9,
    LowerThreshold = 1L << 10,
    McastInterface = 1L << 11,
    Timeout = 1L << 12,
    Daemon = 1L << 13,
    Stats = 1L << 14,
    Rate = 1L << 15,
    Thresholds = 1L << 16,
    PersistentConnections = 1L << 17,
    NoSort = 1L << 18,
    SyncId = 1L << 19,
    Exact = 1L << 20,
    OnePacket = 1L << 21,
    PersistenceEngine = 1L << 22,
    SchedulerFlags = 1L << 23,
    McastGroup = 1L << 24,
    McastPort = 1L << 25,
    McastTtl = 1L << 26,
    SyncMaxLength = 1L << 27,
    TunnelInfo = 1L << 28,
    TunnelType = 1L << 29,
    TunnelPort = 1L << 30,
    TunnelNoChecksum = 1L << 31,
    TunnelChecksum = 1L << 32,
    TunnelRemoteChecksum = 1L << 33,
}

/// <summary>How a virtual service is addressed: -t, -u, --sctp-service or -f.</summary>
public enum VirtualServiceKind
{
    Tcp,
    Udp,
    Sctp,
    FirewallMark,
}

/// <summary>
/// The virtual service a command names. For -t/-u/--sctp-service, <see cref="Address"/> and <see cref="Port"/>
/// (0 when omitted); for -f, <see cref="FirewallMark"/> and <see cref="IsIpv6"/> (from -6).
/// </summary>
public sealed record VirtualServiceAddress(VirtualServiceKind Kind, IPAddress Address, ushort Port, uint FirewallMark = 0)
{
    public bool IsIpv6 { get; init; } = Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;

    /// <summary>
    /// The service this names, as the spec -A would add with no options (-f: the mark, its family's unspecified
    /// address, port 0); null for what udr never holds (SCTP). Compared with <see cref="VirtualServiceSpec.SameService(VirtualServiceSpec)"/>.
    /// </summary>
    public VirtualServiceSpec? ToServiceKey() => Kind switch
    {
        VirtualServiceKind.FirewallMark => VirtualServiceSpec.ForFirewallMark(FirewallMark, IsIpv6 ? Core.Packets.IpFamily.IPv6 : Core.Packets.IpFamily.IPv4),
        VirtualServiceKind.Tcp => new VirtualServiceSpec(ServiceProtocol.Tcp, Core.Packets.InetAddress.FromIPAddress(Address), Port),
        VirtualServiceKind.Udp => new VirtualServiceSpec(ServiceProtocol.Udp, Core.Packets.InetAddress.FromIPAddress(Address), Port),
        _ => null,
    };
}

/// <summary>A real server address as given to -r, with the port ipvsadm settled on.</summary>
public sealed record RealServerAddress(IPAddress Address, ushort Port)
{
    public bool IsIpv6 => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
}

/// <summary>The role given to --start-daemon / --stop-daemon.</summary>
public enum SyncDaemonRole
{
    Master = 1,
    Backup = 2,
}

/// <summary>--start-daemon / --stop-daemon settings; 0 / null = not given (the kernel picks its default).</summary>
public sealed record SyncDaemonSettings(SyncDaemonRole Role)
{
    /// <summary>--mcast-interface; ipvsadm fills in "eth0" for --start-daemon when absent.</summary>
    public string McastInterface { get; init; } = "";
    public int SyncId { get; init; }
    public IPAddress? McastGroup { get; init; }
    public int McastPort { get; init; }
    public int McastTtl { get; init; }
    public int SyncMaxLength { get; init; }
}

/// <summary>--set tcp tcpfin udp, in seconds; 0 = leave unchanged.</summary>
public sealed record IpvsTimeouts(int Tcp, int TcpFin, int Udp);

/// <summary>
/// One parsed ipvsadm invocation, with ipvsadm's own defaults already applied: scheduler wlc for -A/-E,
/// weight 1, -g, persistence 360 s for a bare -p, mask 255.255.255.255 (128 for IPv6), and for -a/-e the
/// real-server port forced to the service port under -g/-i.
/// </summary>
public sealed record IpvsadmCommand(IpvsadmCommandKind Kind)
{
    /// <summary>Every option the command line carried (see <see cref="IpvsadmOptions"/>).</summary>
    public IpvsadmOptions Options { get; init; }

    public VirtualServiceAddress? Service { get; init; }

    /// <summary>-s; for -A/-E "wlc" when not given (ipvsadm's DEF_SCHED), otherwise "" when not given.</summary>
    public string Scheduler { get; init; } = "";

    /// <summary>-b, parsed against the scheduler of the same command.</summary>
    public SchedulerFlags SchedulerFlags { get; init; }

    /// <summary>-p in seconds; 0 = not persistent.</summary>
    public int PersistenceTimeout { get; init; }

    /// <summary>-M: an IPv4 mask in host order, or an IPv6 prefix length for IPv6 services.</summary>
    public uint PersistenceNetmask { get; init; } = 0xFFFF_FFFF;

    /// <summary>-o, --ops.</summary>
    public bool OnePacket { get; init; }

    /// <summary>--pe; "" when not given.</summary>
    public string PersistenceEngine { get; init; } = "";

    public RealServerAddress? RealServer { get; init; }

    public ForwardingMethod Method { get; init; } = ForwardingMethod.Route;

    public int Weight { get; init; } = 1;

    public int UpperThreshold { get; init; }

    public int LowerThreshold { get; init; }

    public TunnelType TunnelType { get; init; } = TunnelType.Ipip;

    /// <summary>--tun-port; 0 = not given.</summary>
    public ushort TunnelPort { get; init; }

    public TunnelChecksum TunnelChecksum { get; init; }

    /// <summary>Only for <see cref="IpvsadmCommandKind.SetTimeouts"/>.</summary>
    public IpvsTimeouts? Timeouts { get; init; }

    /// <summary>Only for <see cref="IpvsadmCommandKind.StartDaemon"/> / <see cref="IpvsadmCommandKind.StopDaemon"/>.</summary>
    public SyncDaemonSettings? Daemon { get; init; }

    public bool Has(IpvsadmOptions option) => (Options & option) == option;
}
