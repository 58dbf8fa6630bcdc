using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// IPVS's sloppy_tcp (<c>udr run --sloppy-tcp</c>): a TCP packet of no known connection starts one unless it is a RST,
/// so a flow that reaches a balancer mid-way (an ECMP router moved it, a failover without sync) is scheduled instead of
/// dropped; with mh or sh, to the server the balancer that saw its SYN chose.
/// </summary>
public class SloppyTcpTests
{
    private static readonly EngineOptions Sloppy = new() { LocalMac = Frames.UdrMac(Frames.BalancerMac), SloppyTcp = true };

    private static EngineHarness Balancer(string scheduler, bool sloppy) =>
        new(EngineHarness.Service(scheduler, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]), options: sloppy ? Sloppy : null);

    [Test]
    public void A_mid_flow_ack_starts_an_established_connection_and_a_rst_starts_none()
    {
        EngineHarness lab = Balancer("rr", sloppy: true);
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: [1, 2, 3])), Is.EqualTo(FrameReason.Forwarded));
        Connection<uint> entry = lab.Engine.Connections.Snapshot().Single();
        Assert.Multiple(() =>
        {
            Assert.That(entry.State, Is.EqualTo(TcpState.Established), "NONE + ACK = ESTABLISHED (tcp_states, input)");
            Assert.That(entry.IsInactive, Is.False, "counted in ActiveConn");
            Assert.That(lab.Process(Frames.Tcp(Frames.Client, 40001, Frames.Vip, 80, rst: true)), Is.EqualTo(FrameReason.TcpNotSyn));
            Assert.That(lab.Engine.Connections.Count, Is.EqualTo(1), "a RST never schedules");
        });
    }

    [Test]
    public void Without_sloppy_tcp_the_same_ack_is_dropped() =>
        Assert.That(Balancer("mh", sloppy: false).Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.TcpNotSyn));

    [TestCase("mh")]
    [TestCase("sh")]
    public void A_flow_moved_to_another_balancer_with_the_same_rules_reaches_the_same_server(string scheduler)
    {
        // Two balancers, each with its own rule set built from the same rules: the hash tables must come out the same.
        EngineHarness first = Balancer(scheduler, sloppy: true);
        EngineHarness second = Balancer(scheduler, sloppy: true);
        var servers = new HashSet<string>();
        for (int flow = 0; flow < 200; flow++)
        {
            string client = $"198.19.{flow / 250}.{(flow % 250) + 1}";
            ushort port = (ushort)(30000 + flow);
            byte[] syn = Frames.Tcp(client, port, Frames.Vip, 80, syn: true);
            Assert.That(first.Process(syn), Is.EqualTo(FrameReason.Forwarded));
            byte[] moved = Frames.Tcp(client, port, Frames.Vip, 80, ack: true, payload: [1]);
            Assert.That(second.Process(moved), Is.EqualTo(FrameReason.Forwarded), $"flow {flow}");
            string chosen = Frames.Decode(syn).Ethernet.DestinationHardwareAddress.ToString();
            Assert.That(Frames.Decode(moved).Ethernet.DestinationHardwareAddress.ToString(), Is.EqualTo(chosen), $"flow {flow}");
            servers.Add(chosen);
        }
        Assert.That(servers, Has.Count.EqualTo(2), "the flows are spread over both servers, not all on one");
    }
}
