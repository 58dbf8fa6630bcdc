using PacketDotNet;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// Which RSTs the end-to-end assertions count as a reset connection: all but a closed end's answer to a stray segment
/// after a FIN each way (the lab's veths can reorder two segments a host sends from two CPUs).
/// </summary>
[Category("Lab")]
public sealed class ConnectionResetsTests
{
    private const string Client = "198.18.0.1", Vip = "198.18.0.100";

    private static CapturedPacket Segment(bool fromClient, bool syn = false, bool ack = true, bool fin = false, bool rst = false, int clientPort = 10013) =>
        new(0, MacAddress.Read([2, 0, 0, 0, 0, 1]), MacAddress.Read([2, 0, 0, 0, 0, 2]), fromClient ? Client : Vip, fromClient ? Vip : Client,
            ProtocolType.Tcp, fromClient ? clientPort : 80, fromClient ? 80 : clientPort, syn, ack, rst, 0) { Fin = fin };

    private static readonly CapturedPacket[] Handshake = [Segment(true, syn: true, ack: false), Segment(false, syn: true), Segment(true)];

    [Test]
    public void A_reset_after_a_fin_each_way_answers_a_stray_segment_and_is_not_counted()
    {
        // The capture of the CI failure: the server's FIN, the client's FIN, two ACKs of it (one answering a duplicate
        // ACK that arrived after the FIN), and the client's RST to the second.
        CapturedPacket reset = Segment(true, ack: false, rst: true);
        CapturedPacket[] capture = [.. Handshake, Segment(false, fin: true), Segment(true, fin: true), Segment(false), Segment(false), reset];
        Assert.That(EndToEndSupport.ConnectionResets(capture), Is.Empty);
    }

    [Test]
    public void A_reset_of_an_open_or_half_closed_connection_is_counted()
    {
        CapturedPacket refused = Segment(false, rst: true);
        CapturedPacket halfClosed = Segment(false, rst: true, clientPort: 10014);
        CapturedPacket[] capture =
        [
            Segment(true, syn: true, ack: false), refused,
            Segment(true, syn: true, ack: false, clientPort: 10014), Segment(false, syn: true, clientPort: 10014),
            Segment(false, fin: true, clientPort: 10014), halfClosed,
        ];
        Assert.That(EndToEndSupport.ConnectionResets(capture), Is.EqualTo(new[] { refused, halfClosed }));
    }

    [Test]
    public void A_new_syn_on_the_same_ports_opens_the_connection_afresh()
    {
        CapturedPacket reset = Segment(false, rst: true);
        CapturedPacket[] capture = [.. Handshake, Segment(false, fin: true), Segment(true, fin: true), .. Handshake, reset];
        Assert.That(EndToEndSupport.ConnectionResets(capture), Is.EqualTo(new[] { reset }));
    }
}
