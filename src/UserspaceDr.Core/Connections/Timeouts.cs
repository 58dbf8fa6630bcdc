namespace UserspaceDr.Core.Connections;

/// <summary>
/// Per-state timeouts in seconds (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c). Immutable; `--set tcp tcpfin
/// udp` publishes a new instance. A connection's expiry is re-armed with its state's timeout on every packet.
/// </summary>
public sealed class Timeouts
{
    public static readonly Timeouts Default = new(tcp: 900, tcpFin: 120, udp: 300);

    /// <summary>ip_vs_conn_new arms a fresh entry for 3 s before its first packet runs the state machine.</summary>
    public const int NewConnectionSeconds = 3;

    /// <summary>A template that still controls connections is re-checked this much later.</summary>
    public const int TemplateRecheckSeconds = 60;

    /// <summary>
    /// SYN_RECV while secure_tcp is on (instead of 60 s): long enough for a client's SYN retransmissions (1 s, 3 s)
    /// to find their entry, short enough that a flood's half-open entries are gone seconds after it ends.
    /// </summary>
    public const int SynRecvDefenseSeconds = 5;

    private readonly int[] _tcp;

    public Timeouts(int tcp, int tcpFin, int udp)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tcp);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tcpFin);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(udp);
        // NONE ES SS SR FW TW CL CW LA LI SA
        _tcp = [2, tcp, 120, 60, tcpFin, 120, 10, 60, 30, 120, 120];
        Udp = udp;
    }

    public int Tcp => _tcp[(int)TcpState.Established];
    public int TcpFin => _tcp[(int)TcpState.FinWait];
    public int Udp { get; }

    public int ForTcpState(TcpState state) => _tcp[(int)state];

    /// <summary>`--set` semantics: 0 keeps the current value.</summary>
    public Timeouts With(int tcp, int tcpFin, int udp) =>
        new(tcp == 0 ? Tcp : tcp, tcpFin == 0 ? TcpFin : tcpFin, udp == 0 ? Udp : udp);
}
