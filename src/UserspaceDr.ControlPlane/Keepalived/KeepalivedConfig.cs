using System.Collections.Immutable;
using System.Net;
using UserspaceDr.Core.Services;

namespace UserspaceDr.ControlPlane.Keepalived;

/// <summary>
/// The LVS half of a keepalived.conf, as udr acts on it: the virtual servers with their real servers and checkers, the
/// global keys that apply to a balancer, and the VRRP blocks (keepalived runs them; udr takes lvs_sync_daemon's syncid
/// from them). Addresses are <see cref="IPAddress"/>es of either family; what udr's data plane cannot serve yet is
/// refused when the rule set is made (<see cref="KeepalivedRules"/>), with its place.
/// </summary>
public sealed record KeepalivedConfig(
    GlobalDefinitions Globals,
    ImmutableArray<VirtualServerConfig> VirtualServers,
    ImmutableArray<ConfigNode> VrrpBlocks,
    ImmutableArray<ConfigWarning> Warnings);

/// <summary>global_defs keys a balancer acts on: <c>lvs_timeouts</c> (0 = keep), <c>lvs_flush</c>, <c>lvs_sync_daemon</c>.</summary>
public sealed record GlobalDefinitions(int TcpTimeout = 0, int TcpFinTimeout = 0, int UdpTimeout = 0, bool LvsFlush = false)
{
    public LvsSyncDaemon? SyncDaemon { get; init; }

    /// <summary><c>vrrp_notify_fifo PATH</c>: where keepalived reports VRRP transitions, one line each (udr reads it).</summary>
    public string? VrrpNotifyFifo { get; init; }
}

/// <summary>
/// <c>lvs_sync_daemon IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group A]</c>: the sync daemon on IF; with a
/// VRRP instance, master while it is MASTER and backup otherwise, and its syncid defaults to the instance's
/// virtual_router_id. 0 / null = not given.
/// </summary>
public sealed record LvsSyncDaemon(string Interface, ConfigPlace Place)
{
    public string? Instance { get; init; }
    public int? SyncId { get; init; }
    public int MaxLength { get; init; }
    public int Port { get; init; }
    public int Ttl { get; init; }
    public IPAddress? Group { get; init; }
}

/// <summary>A <c>sorry_server IP [PORT]</c>: the pool while quorum is lost.</summary>
public sealed record SorryServerConfig(IPAddress Address, ushort Port, ForwardingMethod Method, bool Inhibit);

/// <summary>
/// A <c>virtual_server IP PORT { … }</c>. Timing values are keepalived's (seconds, fractions allowed) after the
/// virtual server's defaults have been handed down to its real servers and their checkers.
/// </summary>
public sealed record VirtualServerConfig(
    IPAddress Address,
    ushort Port,
    ServiceProtocol Protocol,
    ConfigPlace Place)
{
    public string Scheduler { get; init; } = "wlc";
    public SchedulerFlags Flags { get; init; }
    public ForwardingMethod Method { get; init; } = ForwardingMethod.Masquerade;

    /// <summary>Seconds; 0 = not persistent.</summary>
    public int PersistenceTimeout { get; init; }

    /// <summary>The persistence netmask as a prefix length (IPv4 dotted masks are converted); null = a host (/32, /128).</summary>
    public int? PersistencePrefix { get; init; }

    public bool OnePacket { get; init; }
    public TimeSpan DelayLoop { get; init; } = KeepalivedDefaults.DelayLoop;
    public int Quorum { get; init; } = 1;
    public int Hysteresis { get; init; }
    public string? QuorumUp { get; init; }
    public string? QuorumDown { get; init; }
    public bool Alpha { get; init; }
    public bool Omega { get; init; }
    public SorryServerConfig? SorryServer { get; init; }
    public ImmutableArray<RealServerConfig> RealServers { get; init; } = [];

    /// <summary>virtual_server fwmark N: the mark (0 for an address/port virtual server).</summary>
    public uint FirewallMark { get; init; }

    /// <summary>"TCP 198.18.0.100:80" (or "FWM 1", "FWM 1 IPv6"), as logs name a service.</summary>
    public string Name => FirewallMark != 0
        ? VirtualServiceSpec.FirewallMarkName(FirewallMark, Core.Packets.InetAddress.FromIPAddress(Address).Family)
        : $"{(Protocol == ServiceProtocol.Udp ? "UDP" : "TCP")} {KeepalivedDefaults.Endpoint(Address, Port)}";
}

/// <summary>A <c>real_server IP PORT { … }</c> (its port already forced to the service's in DR and TUN).</summary>
public sealed record RealServerConfig(IPAddress Address, ushort Port, ConfigPlace Place)
{
    public ForwardingMethod Method { get; init; } = ForwardingMethod.Masquerade;

    /// <summary>TUN's tunnel type (<c>lvs_method TUN type gue port N csum</c>); IP-in-IP by default.</summary>
    public TunnelEncapsulation Tunnel { get; init; }
    public int Weight { get; init; } = 1;
    public bool InhibitOnFailure { get; init; }
    public string? NotifyUp { get; init; }
    public string? NotifyDown { get; init; }
    public int UpperThreshold { get; init; }
    public int LowerThreshold { get; init; }
    public bool Alpha { get; init; }
    public ImmutableArray<CheckerConfig> Checkers { get; init; } = [];

    public string Name => KeepalivedDefaults.Endpoint(Address, Port);
}

/// <summary>The checker kinds udr runs (keepalived's keywords).</summary>
public enum CheckerKind
{
    Tcp,
    Http,
    Ssl,
    Misc,
    Udp,
    Dns,
}

/// <summary>
/// One checker of a real server, with the settings every kind shares (the parser sets them all, after inheritance;
/// the defaults here are keepalived's for a TCP_CHECK). Equal settings make equal records, which is how a reload
/// (SIGHUP) knows which checkers it may keep running with their state.
/// </summary>
public abstract record CheckerConfig(CheckerKind Kind, ConfigPlace Place)
{
    /// <summary>The address checked (connect_ip; default the real server's).</summary>
    public IPAddress ConnectAddress { get; init; } = IPAddress.None;

    /// <summary>The port checked (connect_port; default the real server's).</summary>
    public ushort ConnectPort { get; init; }

    /// <summary>The local address the check is sent from (bindto); null = the kernel's choice.</summary>
    public IPAddress? BindTo { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = KeepalivedDefaults.ConnectTimeout;
    public int Retry { get; init; } = KeepalivedDefaults.Retry;
    public TimeSpan DelayBeforeRetry { get; init; } = KeepalivedDefaults.DelayBeforeRetry;
    public TimeSpan DelayLoop { get; init; } = KeepalivedDefaults.DelayLoop;

    /// <summary>The first check waits a random time up to this; zero starts at once.</summary>
    public TimeSpan Warmup { get; init; } = KeepalivedDefaults.DelayLoop;

    /// <summary>The checker starts as failed (alpha): its server is not added until a check passes.</summary>
    public bool Alpha { get; init; }

    /// <summary>keepalived's keyword for the kind.</summary>
    public string Keyword => Kind switch
    {
        CheckerKind.Tcp => "TCP_CHECK",
        CheckerKind.Http => "HTTP_GET",
        CheckerKind.Ssl => "SSL_GET",
        CheckerKind.Misc => "MISC_CHECK",
        CheckerKind.Udp => "UDP_CHECK",
        _ => "DNS_CHECK",
    };
}

public sealed record TcpCheckConfig(ConfigPlace Place) : CheckerConfig(CheckerKind.Tcp, Place);

/// <summary>One <c>url { … }</c> of HTTP_GET/SSL_GET: all of them must pass.</summary>
public sealed record UrlCheck(string Path, ImmutableArray<(int Low, int High)> StatusCodes, string? Digest, string? VirtualHost)
{
    public bool StatusMatches(int status) => StatusCodes.Any(range => status >= range.Low && status <= range.High);

    public bool Equals(UrlCheck? other) =>
        other is not null && Path == other.Path && Digest == other.Digest && VirtualHost == other.VirtualHost &&
        StatusCodes.SequenceEqual(other.StatusCodes);

    public override int GetHashCode() => HashCode.Combine(Path, Digest, VirtualHost, StatusCodes.Length);
}

public sealed record HttpCheckConfig(CheckerKind Kind, ConfigPlace Place) : CheckerConfig(Kind, Place)
{
    public ImmutableArray<UrlCheck> Urls { get; init; } = [];

    /// <summary>"1.0" (the default), "1.0C" (1.0 with Connection: close) or "1.1".</summary>
    public string Protocol { get; init; } = "1.0";

    /// <summary>The virtualhost of the checker (a url's own overrides it); null = the connect address.</summary>
    public string? VirtualHost { get; init; }

    public bool Equals(HttpCheckConfig? other) =>
        other is not null && base.Equals(other) && Urls.SequenceEqual(other.Urls) && Protocol == other.Protocol &&
        VirtualHost == other.VirtualHost;

    public override int GetHashCode() => HashCode.Combine(base.GetHashCode(), Urls.Length, Protocol);
}

public sealed record MiscCheckConfig(ConfigPlace Place, string Path) : CheckerConfig(CheckerKind.Misc, Place)
{
    /// <summary>The script is killed and the check fails after this long (misc_timeout; default delay_loop).</summary>
    public TimeSpan Timeout { get; init; } = KeepalivedDefaults.DelayLoop;

    /// <summary>misc_dynamic: exit 1 is down, 2..255 up with weight exit−2.</summary>
    public bool Dynamic { get; init; }
}

public sealed record UdpCheckConfig(ConfigPlace Place) : CheckerConfig(CheckerKind.Udp, Place)
{
    /// <summary>What is sent; empty = a random 16 bytes per check, as keepalived sends when none is set.</summary>
    public ImmutableArray<byte> Payload { get; init; } = [];

    /// <summary>A reply is needed (require_reply); without it, only an ICMP error fails the check.</summary>
    public bool RequireReply { get; init; }

    /// <summary>The reply's expected bytes as hex nibbles, 'X' a wildcard nibble (require_reply HEX); null = any reply.</summary>
    public string? ReplyPattern { get; init; }

    public bool Equals(UdpCheckConfig? other) =>
        other is not null && base.Equals(other) && Payload.SequenceEqual(other.Payload) && RequireReply == other.RequireReply &&
        ReplyPattern == other.ReplyPattern;

    public override int GetHashCode() => HashCode.Combine(base.GetHashCode(), Payload.Length, RequireReply, ReplyPattern);
}

public sealed record DnsCheckConfig(ConfigPlace Place) : CheckerConfig(CheckerKind.Dns, Place)
{
    /// <summary>The query type's name (A, NS, CNAME, SOA, MX, TXT, AAAA); SOA by default.</summary>
    public string Type { get; init; } = "SOA";

    /// <summary>The name queried; the root (".") by default.</summary>
    public string Name { get; init; } = ".";
}

/// <summary>keepalived's defaults (check_data.h, check_api.c, check_http.c, check_dns.c, check_misc.c).</summary>
public static class KeepalivedDefaults
{
    public static readonly TimeSpan DelayLoop = TimeSpan.FromSeconds(60);
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    public static readonly TimeSpan DelayBeforeRetry = TimeSpan.FromSeconds(1);
    public static readonly TimeSpan HttpDelayBeforeRetry = TimeSpan.FromSeconds(3);
    public const int Retry = 1;
    public const int DnsRetry = 3;
    public const int MiscRetry = 0;
    public const int PersistenceTimeout = 360;

    /// <summary>"198.18.0.1:80", "[2001:2::1]:80".</summary>
    public static string Endpoint(IPAddress address, ushort port)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";
    }
}
