using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Connections;

public class TcpStateMachineTests
{
    // Transcribed verbatim from the kernel's tcp_states table (net/netfilter/ipvs/ip_vs_proto_tcp.c).
    private const string ReferenceTable = """
        INPUT      syn: SR ES ES SR SR SR SR SR SR SR SR
                   fin: CL CW SS TW TW TW CL CW LA LI TW
                   ack: ES ES SS ES FW TW CL CW CL LI ES
                   rst: CL CL CL SR CL CL CL CL LA LI SR
        OUTPUT     syn: SS ES SS SR SS SS SS SS SS LI SR
                   fin: TW FW SS TW FW TW CL TW LA LI TW
                   ack: ES ES SS ES FW TW CL CW LA ES ES
                   rst: CL CL SS CL CL TW CL CL CL CL CL
        INPUT_ONLY syn: SR ES ES SR SR SR SR SR SR SR SR
                   fin: CL FW SS TW FW TW CL CW LA LI TW
                   ack: ES ES SS ES FW TW CL CW CL LI ES
                   rst: CL CL CL SR CL CL CL CL LA LI CL
        """;

    private static readonly string[] Columns = ["NO", "ES", "SS", "SR", "FW", "TW", "CL", "CW", "LA", "LI", "SA"];

    private static IEnumerable<TestCaseData> ReferenceTransitions()
    {
        PacketDirection direction = PacketDirection.Input;
        foreach (string rawLine in ReferenceTable.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.StartsWith("INPUT_ONLY", StringComparison.Ordinal))
            {
                direction = PacketDirection.InputOnly;
            }
            else if (line.StartsWith("INPUT", StringComparison.Ordinal))
            {
                direction = PacketDirection.Input;
            }
            else if (line.StartsWith("OUTPUT", StringComparison.Ordinal))
            {
                direction = PacketDirection.Output;
            }
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int flagIndex = Array.FindIndex(parts, p => p.EndsWith(':'));
            byte flags = parts[flagIndex] switch
            {
                "syn:" => TcpFlags.Syn,
                "fin:" => TcpFlags.Fin | TcpFlags.Ack, // priority: FIN wins over ACK
                "ack:" => TcpFlags.Ack,
                _ => TcpFlags.Rst | TcpFlags.Ack, // RST wins over everything
            };
            string[] next = parts[(flagIndex + 1)..];
            for (int column = 0; column < Columns.Length; column++)
            {
                yield return new TestCaseData(direction, flags, (TcpState)column, (TcpState)Array.IndexOf(Columns, next[column]))
                    .SetName($"{direction} {parts[flagIndex]} {Columns[column]} -> {next[column]}");
            }
        }
    }

    [TestCaseSource(nameof(ReferenceTransitions))]
    public void Next_state_matches_the_reference_table(PacketDirection direction, byte flags, TcpState from, TcpState expected) =>
        Assert.That(TcpStateMachine.Next(from, direction, flags), Is.EqualTo(expected));

    [Test]
    public void Syn_outranks_fin_and_rst_outranks_syn()
    {
        Assert.That(TcpStateMachine.Next(TcpState.Established, PacketDirection.Input, TcpFlags.Syn | TcpFlags.Fin), Is.EqualTo(TcpState.Established));
        Assert.That(TcpStateMachine.Next(TcpState.None, PacketDirection.Input, TcpFlags.Syn | TcpFlags.Rst), Is.EqualTo(TcpState.Close));
    }

    [Test]
    public void A_packet_without_syn_fin_ack_or_rst_moves_to_close() =>
        Assert.That(TcpStateMachine.Next(TcpState.Established, PacketDirection.Input, TcpFlags.Psh), Is.EqualTo(TcpState.Close));

    [Test]
    public void Only_established_counts_as_active()
    {
        foreach (TcpState state in Enum.GetValues<TcpState>())
        {
            Assert.That(TcpStateMachine.IsActive(state), Is.EqualTo(state == TcpState.Established), state.ToString());
        }
    }

    [Test]
    public void Timeouts_follow_ipvs_defaults_and_set_semantics()
    {
        Timeouts t = Timeouts.Default;
        Assert.That(new[] { t.ForTcpState(TcpState.None), t.Tcp, t.ForTcpState(TcpState.SynSent), t.ForTcpState(TcpState.SynRecv), t.TcpFin,
            t.ForTcpState(TcpState.TimeWait), t.ForTcpState(TcpState.Close), t.ForTcpState(TcpState.CloseWait), t.ForTcpState(TcpState.LastAck),
            t.ForTcpState(TcpState.Listen), t.ForTcpState(TcpState.SynAck), t.Udp },
            Is.EqualTo(new[] { 2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120, 300 }));
        Timeouts changed = t.With(tcp: 0, tcpFin: 30, udp: 0);
        Assert.That((changed.Tcp, changed.TcpFin, changed.Udp), Is.EqualTo((900, 30, 300)));
    }

    [Test]
    public void State_names_are_ipvsadms() =>
        Assert.That(Enum.GetValues<TcpState>().Select(TcpStateMachine.Name), Is.EqualTo(new[]
        {
            "NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK",
        }));
}
