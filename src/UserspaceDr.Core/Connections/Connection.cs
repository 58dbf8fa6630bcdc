using System.Runtime.InteropServices;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Connections;

[Flags]
public enum ConnectionFlags : ushort
{
    None = 0,
    /// <summary>Slot holds an entry.</summary>
    Used = 1,
    /// <summary>A persistence template (IP_VS_CONN_F_TEMPLATE): client-network to server affinity, cport 0.</summary>
    Template = 2,
    /// <summary>IP_VS_CONN_F_NOOUTPUT: no reply seen through the balancer (DR/TUN); selects the INPUT_ONLY table.</summary>
    NoOutput = 4,
    /// <summary>IP_VS_CONN_F_INACTIVE: counted in InActConn rather than ActiveConn.</summary>
    Inactive = 8,
    /// <summary>Created under a persistence template, which it keeps alive.</summary>
    Controlled = 16,
    /// <summary>Template confirmed by an established connection (shown as ASSURED).</summary>
    Assured = 32,
    /// <summary>
    /// The reply-direction index of a NAT connection: keyed by (protocol, client, cport, RIP, rport) as the reply
    /// shows them, it points at its connection through DestAddress/DestPort (= VIP/vport). Removed with it.
    /// </summary>
    ReplyLink = 64,
}

/// <summary>
/// What identifies a connection: protocol, client address/port and VIP/port (templates: masked client, cport 0;
/// NAT reply links: the real server's address/port in place of the VIP's). <typeparamref name="TAddress"/> is the
/// family's address type (<see cref="Packets.AddressBits"/>: uint for IPv4, UInt128 for IPv6).
/// </summary>
public readonly record struct ConnectionKey<TAddress>(byte Protocol, TAddress ClientAddress, ushort ClientPort, TAddress VirtualAddress, ushort VirtualPort,
    bool Template = false, bool ReplyLink = false)
    where TAddress : unmanaged, IEquatable<TAddress>;

/// <summary>
/// One tracked connection: a plain struct stored inline in <see cref="ConnectionTable{TAddress}"/>'s slots (64 bytes
/// for IPv4, one cache line). The destination is copied in (address, port, method) as the kernel copies it into
/// ip_vs_conn, so an edit of the server never changes where an established flow goes; <see cref="Dest"/> is kept for
/// its shared counters. The entry holds no object reference (the server is named by its <see cref="ServerHandles"/>
/// handle), so the table can live outside the collected heap.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct Connection<TAddress>
    where TAddress : unmanaged, IEquatable<TAddress>
{
    // The addresses first: in this order both families pack without padding (IPv4 64 bytes, IPv6 112, a multiple of
    // UInt128's 16-byte alignment), and IPv4's whole entry, what a lookup reads included, is one cache line.
    public TAddress ClientAddress;
    public TAddress VirtualAddress;
    public TAddress DestAddress;
    /// <summary>Masked client address of the template that controls this connection (when Controlled).</summary>
    public TAddress TemplateClientAddress;
    /// <summary>The server's <see cref="RealServer.Handle"/>; 0: none.</summary>
    public ulong DestHandle;
    public long ExpiresAtMs;
    /// <summary>
    /// The client-side next hop (the MAC the client's frames came from, the client or its router, and the link they
    /// arrived on), packed (Forwarding.ClientHop): where NAT replies and ICMP errors for the client go.
    /// </summary>
    public ulong ClientMac;
    public uint Hash;
    /// <summary>
    /// Template: the number of connections it controls (n_control). A connection has no use for it and keeps its
    /// firewall mark there instead (<see cref="FirewallMark"/>): one field for two, so that the IPv4 entry stays one
    /// cache line.
    /// </summary>
    public int ControlCount;
    public ushort ClientPort;
    public ushort VirtualPort;
    public ushort DestPort;
    /// <summary>Virtual port of the controlling template (0 for port-0 services).</summary>
    public ushort TemplateVirtualPort;
    public ConnectionFlags Flags;
    public byte Protocol;
    public TcpState State;
    public ForwardingMethod Method;
    /// <summary>A master's packet count for sync, modulo the sync period (ip_vs_conn.in_pkts as sync_threshold reads it).</summary>
    public byte SyncPackets;
    /// <summary>The state last synced (ip_vs_conn.old_state): a change to another state than ESTABLISHED is synced at once.</summary>
    public TcpState SyncedState;

    /// <summary>The real server this entry is bound to; null when none, or when that server has been retired since.</summary>
    public RealServer? Dest
    {
        readonly get => ServerHandles.Resolve(DestHandle);
        set => DestHandle = value?.Handle ?? 0;
    }

    public readonly bool IsTemplate => (Flags & ConnectionFlags.Template) != 0;
    public readonly bool IsInactive => (Flags & ConnectionFlags.Inactive) != 0;
    public readonly bool IsReplyLink => (Flags & ConnectionFlags.ReplyLink) != 0;

    public readonly ConnectionKey<TAddress> Key => new(Protocol, ClientAddress, ClientPort, VirtualAddress, VirtualPort, IsTemplate, IsReplyLink);

    /// <summary>A connection (never a template): the firewall mark of its service, 0 for an address/port service (ip_vs_conn.fwmark).</summary>
    public uint FirewallMark
    {
        readonly get => IsTemplate ? 0 : (uint)ControlCount;
        set => ControlCount = (int)value;
    }

    /// <summary>The key of the persistence template that controls this connection (when Controlled).</summary>
    public readonly ConnectionKey<TAddress> ControllingTemplateKey => FirewallMark != 0
        ? TemplateKeys.ForMark(TemplateClientAddress, FirewallMark)
        : new(Protocol, TemplateClientAddress, 0, VirtualAddress, TemplateVirtualPort, Template: true);


    internal readonly bool Matches(in ConnectionKey<TAddress> key) =>
        ClientAddress.Equals(key.ClientAddress) && VirtualAddress.Equals(key.VirtualAddress) && ClientPort == key.ClientPort &&
        VirtualPort == key.VirtualPort && Protocol == key.Protocol && IsTemplate == key.Template && IsReplyLink == key.ReplyLink;
}

/// <summary>Keys of persistence templates.</summary>
public static class TemplateKeys
{
    /// <summary>
    /// A firewall-mark service's persistence template (ip_vs_sched_persist): protocol IPPROTO_IP, the masked client,
    /// port 0, the mark in the place of the virtual address, port 0.
    /// </summary>
    public static ConnectionKey<TAddress> ForMark<TAddress>(TAddress client, uint mark)
        where TAddress : unmanaged, IEquatable<TAddress> =>
        new(0, client, 0, AddressBits.FromMark<TAddress>(mark), 0, Template: true);
}
