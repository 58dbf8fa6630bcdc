using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Connections;

/// <summary>IPVS TCP connection states (IP_VS_TCP_S_*), in the kernel's numbering.</summary>
public enum TcpState : byte
{
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

/// <summary>Which of IPVS's three TCP tables a packet is looked up in (tcp_state_off).</summary>
public enum PacketDirection : byte
{
    /// <summary>Client to real server, on a connection that has seen (or may see) replies (NAT).</summary>
    Input = 0,
    /// <summary>Real server to client, through the balancer (NAT replies).</summary>
    Output = 1,
    /// <summary>Client to real server on a connection whose replies bypass the balancer (DR, TUN: NOOUTPUT).</summary>
    InputOnly = 2,
}

/// <summary>
/// IPVS's TCP state tables (ip_vs_proto_tcp.c tcp_states) and the ipvsadm state names. Rows are the packet's
/// flag class with the priority RST &gt; SYN &gt; FIN &gt; ACK; a packet with none of these moves to CLOSE.
/// </summary>
public static class TcpStateMachine
{
    private const TcpState NO = TcpState.None, ES = TcpState.Established, SS = TcpState.SynSent, SR = TcpState.SynRecv,
        FW = TcpState.FinWait, TW = TcpState.TimeWait, CL = TcpState.Close, CW = TcpState.CloseWait, LA = TcpState.LastAck,
        LI = TcpState.Listen, SA = TcpState.SynAck;

    private const int FlagSyn = 0, FlagFin = 1, FlagAck = 2, FlagRst = 3;
    private const int StateCount = 11;

    // [direction * 4 + flag class][current state] -> next state. Columns: NO ES SS SR FW TW CL CW LA LI SA.
    private static readonly TcpState[] Table =
    [
        // INPUT
        SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR, // syn
        CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW, // fin
        ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES, // ack
        CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR, // rst
        // OUTPUT
        SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR, // syn
        TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW, // fin
        ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES, // ack
        CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL, // rst
        // INPUT_ONLY
        SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR, // syn
        CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW, // fin
        ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES, // ack
        CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL, // rst
    ];

    private static readonly string[] Names =
        ["NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK"];

    /// <summary>The state IPVS moves to from <paramref name="current"/> on a packet with <paramref name="tcpFlags"/>.</summary>
    public static TcpState Next(TcpState current, PacketDirection direction, byte tcpFlags)
    {
        int flagClass;
        if ((tcpFlags & TcpFlags.Rst) != 0)
        {
            flagClass = FlagRst;
        }
        else if ((tcpFlags & TcpFlags.Syn) != 0)
        {
            flagClass = FlagSyn;
        }
        else if ((tcpFlags & TcpFlags.Fin) != 0)
        {
            flagClass = FlagFin;
        }
        else if ((tcpFlags & TcpFlags.Ack) != 0)
        {
            flagClass = FlagAck;
        }
        else
        {
            return TcpState.Close; // tcp_state_idx() < 0: set_tcp_state keeps its initial IP_VS_TCP_S_CLOSE
        }
        return Table[(((int)direction * 4) + flagClass) * StateCount + (int)current];
    }

    /// <summary>Only ESTABLISHED counts in ActiveConn (set_tcp_state moves counters on exactly that test).</summary>
    public static bool IsActive(TcpState state) => state == TcpState.Established;

    public static string Name(TcpState state) => Names[(int)state];
}
