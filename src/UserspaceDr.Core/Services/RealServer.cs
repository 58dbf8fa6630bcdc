using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Services;

/// <summary>
/// A real server of one virtual service (an IPVS "dest"). Like the kernel's struct ip_vs_dest, the object keeps
/// its identity across rule-set publications: connections name it (by its <see cref="Handle"/>), so its counters, overload flag,
/// weight and forwarding method are shared state, changed with atomics. Its address and port never change. A
/// connection copies the method in when it is created, so an edit of the method only affects new connections.
/// </summary>
public sealed class RealServer
{
    private int _retired;
    private ulong _handle;
    private int _method;
    private int _weight;
    private int _lastWeight;
    private int _upperThreshold;
    private int _lowerThreshold;
    private int _activeConnections;
    private int _inactiveConnections;
    private int _persistentConnections;
    private int _overloaded;
    private int _removed;
    private int _tunnel;

    public RealServer(InetAddress address, ushort port, ForwardingMethod method, int weight, int upperThreshold = 0, int lowerThreshold = 0,
        TunnelEncapsulation tunnel = default)
    {
        Address = address;
        Port = port;
        _method = (int)method;
        _tunnel = Pack(tunnel);
        _weight = weight;
        _lastWeight = weight;
        _upperThreshold = upperThreshold;
        _lowerThreshold = lowerThreshold;
        ServerHandles.Register(this);
    }

    /// <summary>
    /// What a connection entry keeps to name this server (<see cref="ServerHandles"/>); 0 once the server is retired.
    /// </summary>
    public ulong Handle
    {
        get => Volatile.Read(ref _handle);
        internal set => Volatile.Write(ref _handle, value);
    }

    /// <summary>
    /// Index of this server's row in each worker's traffic counters, from its data plane's <see cref="ServerStatsSlots"/>
    /// (given by <see cref="RuleSet.Build"/>; a server made elsewhere has lease 0 and its traffic is not counted).
    /// </summary>
    public int StatsSlot { get; private set; }

    /// <summary>Which hand-out of <see cref="StatsSlot"/> this server holds (0: none).</summary>
    public long StatsLease { get; private set; }

    internal void TakeStatsSlot(ServerStatsSlots slots) => (StatsSlot, StatsLease) = slots.Take();

    /// <summary>
    /// The server is gone for good (deleted, and no connection bound to it): its counter row is given back (at most once)
    /// and its handle retired, so an entry that still names it resolves to no server.
    /// </summary>
    internal void Retire(ServerStatsSlots slots)
    {
        if (Interlocked.Exchange(ref _retired, 1) != 0)
        {
            return;
        }
        if (StatsLease != 0)
        {
            slots.Release(StatsSlot);
        }
        ServerHandles.Retire(Handle);
    }

    public InetAddress Address { get; }
    public ushort Port { get; }
    /// <summary>The forwarding method new connections get (-g/-m/-i; changed in place by -e, as the kernel does).</summary>
    public ForwardingMethod Method => (ForwardingMethod)Volatile.Read(ref _method);

    /// <summary>How a tunnel (-i) server's packets are wrapped (--tun-type; changed in place by -e, read per packet as the kernel reads dest->tun_type).</summary>
    public TunnelEncapsulation Tunnel => Unpack(Volatile.Read(ref _tunnel));

    /// <summary>One int, so a reader never sees half of an edit: type, checksum option, port.</summary>
    private static int Pack(TunnelEncapsulation tunnel) => (int)tunnel.Type | ((int)tunnel.Checksum << 8) | (tunnel.Port << 16);

    private static TunnelEncapsulation Unpack(int packed) =>
        new((TunnelType)(packed & 0xFF), (ushort)((uint)packed >> 16), (TunnelChecksum)((packed >> 8) & 0xFF));

    /// <summary>0 = quiesced: no new connections, existing ones continue.</summary>
    public int Weight => Volatile.Read(ref _weight);

    /// <summary>The last non-zero weight (the mh scheduler keeps a quiesced server's slots with it).</summary>
    public int LastWeight => Volatile.Read(ref _lastWeight);

    public int UpperThreshold => Volatile.Read(ref _upperThreshold);
    public int LowerThreshold => Volatile.Read(ref _lowerThreshold);
    public int ActiveConnections => Volatile.Read(ref _activeConnections);
    public int InactiveConnections => Volatile.Read(ref _inactiveConnections);
    public int PersistentConnections => Volatile.Read(ref _persistentConnections);

    /// <summary>IP_VS_DEST_F_OVERLOAD: set when the upper threshold is reached; every scheduler skips the server.</summary>
    public bool Overloaded => Volatile.Read(ref _overloaded) != 0;

    /// <summary>Deleted from its service; connections still bound to it are handled per expire_nodest_conn.</summary>
    public bool Removed => Volatile.Read(ref _removed) != 0;

    /// <summary>ip_vs_dest_conn_overhead: active connections weigh 256 times inactive ones.</summary>
    public int Overhead => (ActiveConnections << 8) + InactiveConnections;

    /// <summary>Applies an edit (-e). The kernel keeps the object and changes its fields in place.</summary>
    public void Update(int weight, int upperThreshold, int lowerThreshold)
    {
        Volatile.Write(ref _weight, weight);
        if (weight != 0)
        {
            Volatile.Write(ref _lastWeight, weight);
        }
        Volatile.Write(ref _upperThreshold, upperThreshold);
        Volatile.Write(ref _lowerThreshold, lowerThreshold);
        // __ip_vs_update_dest: a raised (or cleared) upper threshold lifts the overload flag.
        if (upperThreshold == 0 || upperThreshold > ActiveConnections + InactiveConnections)
        {
            Volatile.Write(ref _overloaded, 0);
        }
    }

    /// <summary>Applies an edit (-e) that may also change the forwarding method (new connections only).</summary>
    public void Update(int weight, int upperThreshold, int lowerThreshold, ForwardingMethod method, TunnelEncapsulation tunnel = default)
    {
        Volatile.Write(ref _method, (int)method);
        Volatile.Write(ref _tunnel, Pack(tunnel));
        Update(weight, upperThreshold, lowerThreshold);
    }

    public void MarkRemoved() => Volatile.Write(ref _removed, 1);

    /// <summary>
    /// Added back to its service while connections still hold it (ip_vs_trash_get_dest): the same object returns,
    /// so the connections it still has carry on.
    /// </summary>
    public void Reinstate() => Volatile.Write(ref _removed, 0);

    /// <summary>Connections and templates still bound to this server (what keeps a deleted one in the trash).</summary>
    public bool HasConnections => ActiveConnections + InactiveConnections + PersistentConnections > 0;

    /// <summary>ip_vs_bind_dest: a new connection or template is counted and the overload flag is checked (templates count
    /// in PersistConn, not in the total the thresholds compare).</summary>
    public void BindConnection(bool active, bool template)
    {
        if (template)
        {
            Interlocked.Increment(ref _persistentConnections);
        }
        else if (active)
        {
            Interlocked.Increment(ref _activeConnections);
        }
        else
        {
            Interlocked.Increment(ref _inactiveConnections);
        }
        int upper = UpperThreshold;
        if (upper != 0 && ActiveConnections + InactiveConnections >= upper)
        {
            Volatile.Write(ref _overloaded, 1);
        }
    }

    /// <summary>ip_vs_unbind_dest: a connection goes away; the overload flag is cleared per the lower threshold.</summary>
    public void UnbindConnection(bool active, bool template)
    {
        if (template)
        {
            Interlocked.Decrement(ref _persistentConnections);
        }
        else if (active)
        {
            Interlocked.Decrement(ref _activeConnections);
        }
        else
        {
            Interlocked.Decrement(ref _inactiveConnections);
        }
        int lower = LowerThreshold;
        int upper = UpperThreshold;
        int total = ActiveConnections + InactiveConnections;
        bool clear = lower != 0 ? total < lower : upper == 0 || total * 4 < upper * 3;
        if (clear)
        {
            Volatile.Write(ref _overloaded, 0);
        }
    }

    /// <summary>A connection's state crossed between active and inactive (ip_vs_set_state counter moves).</summary>
    public void MoveConnection(bool toActive)
    {
        if (toActive)
        {
            Interlocked.Decrement(ref _inactiveConnections);
            Interlocked.Increment(ref _activeConnections);
        }
        else
        {
            Interlocked.Decrement(ref _activeConnections);
            Interlocked.Increment(ref _inactiveConnections);
        }
    }

    public override string ToString() => Address.WithPort(Port);
}
