using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// NAT over two links (clients on link 0, NAT servers on link 1) and the translation of ICMP errors both ways
/// (ip_vs_nat_icmp). Every checksum is verified with the tests' own RFC 1071 code, not udr's.
/// </summary>
public class NatIcmpTests
{
    private const string NatServer = "198.18.1.13";
    private const string ClientRouter = "198.18.0.254";
    private static readonly System.Net.NetworkInformation.PhysicalAddress NatServerMac = Frames.Mac("02:00:00:00:01:13");
    private static readonly System.Net.NetworkInformation.PhysicalAddress ServerLinkMac = Frames.Mac("02:00:00:00:01:02");

    private static EngineHarness Lab()
    {
        var tcp = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(NatServer), 8080, ForwardingMethod.Masquerade)],
        };
        var udp = new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse(Frames.Vip), 53, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(NatServer), 5353, ForwardingMethod.Masquerade)],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links =
            [
                new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse("198.18.0.2")),
                new EngineLink(Frames.UdrMac(ServerLinkMac), 1500, Ipv4Address.Parse("198.18.1.2")),
            ],
        };
        var lab = new EngineHarness(new RuleSetSpec([tcp, udp]), options: options);
        lab.Neighbors = lab.Neighbors.With(Ipv4Address.Parse(NatServer), new NextHop(Frames.UdrMac(NatServerMac), Link: 1));
        return lab;
    }

    /// <summary>A frame as it arrives on the server side: from the NAT server's MAC to link 1's.</summary>
    private static byte[] FromServer(byte[] frame)
    {
        NatServerMac.GetAddressBytes().CopyTo(frame, 6);
        ServerLinkMac.GetAddressBytes().CopyTo(frame, 0);
        return frame;
    }

    private static readonly byte[] Query = [1, 2, 3, 4, 5];

    private static EngineHarness LabWithUdpFlow()
    {
        var lab = Lab();
        Assert.That(lab.ProcessBuffer(Frames.Udp(Frames.Client, 5000, Frames.Vip, 53, Query), link: 0).Reason, Is.EqualTo(FrameReason.Forwarded));
        return lab;
    }

    /// <summary>Checks the IP header, the ICMP message, the quoted IP header and (when whole) the quoted transport checksum.</summary>
    private static (IPv4Packet Outer, byte[] Icmp, byte[] Quote) AssertIcmpChecksums(byte[] frame, bool quotedTransportWhole)
    {
        (_, IPv4Packet outer) = Frames.Decode(frame);
        Assert.That(Frames.ChecksumVerifies(frame.AsSpan(14, 20)), Is.True, "outer IP header checksum");
        byte[] icmp = frame.AsSpan(34, outer.TotalLength - 20).ToArray();
        Assert.That(Frames.ChecksumVerifies(icmp), Is.True, "ICMP checksum over the whole message");
        Assert.That(outer.Extract<IcmpV4Packet>().ValidIcmpChecksum, Is.True, "PacketDotNet agrees");
        byte[] quote = icmp.AsSpan(8).ToArray();
        int quotedHeader = (quote[0] & 0x0F) * 4;
        Assert.That(Frames.ChecksumVerifies(quote.AsSpan(0, quotedHeader)), Is.True, "quoted IP header checksum");
        if (quotedTransportWhole)
        {
            byte[] transport = quote.AsSpan(quotedHeader).ToArray();
            uint pseudo = Frames.PseudoHeaderSum(quote.AsSpan(12, 4), quote.AsSpan(16, 4), quote[9], transport.Length);
            Assert.That(Frames.ChecksumVerifies(transport, pseudo), Is.True, "quoted transport checksum, as the quoted addresses now say");
        }
        return (outer, icmp, quote);
    }

    private static (string Source, int SourcePort, string Destination, int DestinationPort) QuotedTuple(byte[] quote)
    {
        int header = (quote[0] & 0x0F) * 4;
        return (new IPAddress(quote.AsSpan(12, 4)).ToString(), (quote[header] << 8) | quote[header + 1],
            new IPAddress(quote.AsSpan(16, 4)).ToString(), (quote[header + 2] << 8) | quote[header + 3]);
    }

    [Test]
    public void An_icmp_error_to_the_vip_about_a_nat_reply_is_translated_for_the_real_server()
    {
        var lab = LabWithUdpFlow();
        // The reply as the client's side saw it (VIP:53 → client:5000), quoted whole by a router that could not deliver it.
        byte[] reply = Frames.Udp(Frames.Vip, 53, Frames.Client, 5000, [9, 9, 9]);
        byte[] error = TunnelTests.IcmpError(ClientRouter, Frames.Vip, 3, 3, 0, reply.AsSpan(14).ToArray());

        EngineHarness.Outcome sent = lab.ProcessBuffer(error, link: 0);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedIcmpError));
        Assert.That(sent.Link, Is.EqualTo(1));
        (EthernetPacket ethernet, _) = Frames.Decode(sent.Frame);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(NatServerMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(ServerLinkMac));
        (IPv4Packet outer, byte[] icmp, byte[] quote) = AssertIcmpChecksums(sent.Frame, quotedTransportWhole: true);
        Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(ClientRouter)));
        Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(NatServer)), "outer destination VIP → RIP");
        Assert.That(outer.TimeToLive, Is.EqualTo(63));
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)3, (byte)3)));
        Assert.That(QuotedTuple(quote), Is.EqualTo((NatServer, 5353, Frames.Client, 5000)), "the reply as the server sent it");
        Assert.That(quote.AsSpan(28).ToArray(), Is.EqualTo(new byte[] { 9, 9, 9 }));
    }

    [TestCase(28, false)]
    [TestCase(40 + 6, true)]
    public void A_quoted_tcp_reply_is_translated_and_its_checksum_kept_when_quoted(int quoted, bool checksumQuoted)
    {
        var lab = Lab();
        Assert.That(lab.ProcessBuffer(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true)).Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] reply = Frames.Tcp(Frames.Vip, 80, Frames.Client, 40000, syn: true, ack: true, payload: [7, 7, 7, 7, 7, 7]);
        byte[] error = TunnelTests.IcmpError(ClientRouter, Frames.Vip, 3, 4, 1400, reply.AsSpan(14, quoted).ToArray());

        EngineHarness.Outcome sent = lab.ProcessBuffer(error);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedIcmpError));
        (_, _, byte[] quote) = AssertIcmpChecksums(sent.Frame, quotedTransportWhole: checksumQuoted);
        Assert.That(QuotedTuple(quote), Is.EqualTo((NatServer, 8080, Frames.Client, 40000)));
        Assert.That(quote, Has.Length.EqualTo(quoted));
    }

    [Test]
    public void A_real_servers_port_unreachable_reaches_the_client_translated()
    {
        var lab = LabWithUdpFlow();
        // The server has nothing on 5353 and answers the query as it received it (client:5000 → RIP:5353).
        byte[] asReceived = Frames.Udp(Frames.Client, 5000, NatServer, 5353, Query);
        byte[] error = FromServer(TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, asReceived.AsSpan(14).ToArray()));

        EngineHarness.Outcome sent = lab.ProcessBuffer(error, link: 1);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedReplyIcmpError));
        Assert.That(FrameReasons.VerdictOf(sent.Reason), Is.EqualTo(Verdict.Transmit));
        Assert.That(sent.Link, Is.EqualTo(0), "out by the client's link");
        (EthernetPacket ethernet, _) = Frames.Decode(sent.Frame);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac), "link 0's MAC");
        (IPv4Packet outer, byte[] icmp, byte[] quote) = AssertIcmpChecksums(sent.Frame, quotedTransportWhole: true);
        Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)), "from the VIP, never the private address");
        Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(outer.TimeToLive, Is.EqualTo(63));
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)3, (byte)3)));
        Assert.That(QuotedTuple(quote), Is.EqualTo((Frames.Client, 5000, Frames.Vip, 53)), "the client's own query");
        Assert.That(quote.AsSpan(28).ToArray(), Is.EqualTo(Query));
        Assert.That(lab.Engine.Counters.Read(lab.Rules.Services.Single(s => s.Port == 53).Destinations.Single()).OutPackets, Is.EqualTo(1),
            "OutPkts, as ip_vs_out_icmp counts");
    }

    [Test]
    public void A_routers_frag_needed_about_a_clients_packet_to_a_nat_server_reaches_the_client_translated()
    {
        var lab = LabWithUdpFlow();
        // A router between the balancer and the server (198.18.1.254) could not forward client:5000 → RIP:5353.
        byte[] asForwarded = Frames.Udp(Frames.Client, 5000, NatServer, 5353, Query);
        byte[] error = FromServer(TunnelTests.IcmpError("198.18.1.254", Frames.Client, 3, 4, 1400, asForwarded.AsSpan(14).ToArray()));

        EngineHarness.Outcome sent = lab.ProcessBuffer(error, link: 1);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedReplyIcmpError));
        (IPv4Packet outer, byte[] icmp, byte[] quote) = AssertIcmpChecksums(sent.Frame, quotedTransportWhole: true);
        Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)), "as ip_vs_nat_icmp rewrites it, whoever sent it");
        Assert.That((icmp[0], icmp[1], (icmp[6] << 8) | icmp[7]), Is.EqualTo(((byte)3, (byte)4, 1400)));
        Assert.That(QuotedTuple(quote), Is.EqualTo((Frames.Client, 5000, Frames.Vip, 53)), "the client's own datagram");
    }

    [Test]
    public void Icmp_errors_that_cannot_be_translated_have_defined_outcomes()
    {
        var lab = LabWithUdpFlow();
        byte[] asReceived = Frames.Udp(Frames.Client, 5000, NatServer, 5353, Query);
        byte[] other = Frames.Udp(Frames.Client, 5001, NatServer, 5353, Query);

        Assert.That(Outbound(TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, other.AsSpan(14).ToArray())),
            Is.EqualTo(FrameReason.NotForVirtualAddress), "no such connection");
        Assert.That(Outbound(TunnelTests.IcmpError(NatServer, "198.18.0.9", 3, 3, 0, asReceived.AsSpan(14).ToArray())),
            Is.EqualTo(FrameReason.NotForVirtualAddress), "not sent to the quoted packet's sender");
        Assert.That(Outbound(TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, asReceived.AsSpan(14, 23).ToArray())),
            Is.EqualTo(FrameReason.NotForVirtualAddress), "quote without the ports");
        Assert.That(Outbound(TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, asReceived.AsSpan(14, 24).ToArray())),
            Is.EqualTo(FrameReason.ForwardedReplyIcmpError), "ports but no UDP checksum: translated all the same");

        byte[] corrupt = TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, asReceived.AsSpan(14).ToArray());
        corrupt[^1] ^= 0x55;
        Assert.That(Outbound(corrupt), Is.EqualTo(FrameReason.IcmpChecksumInvalid));

        byte[] expiring = TunnelTests.IcmpError(NatServer, Frames.Client, 3, 3, 0, asReceived.AsSpan(14).ToArray());
        expiring[14 + 8] = 1;
        Frames.WithIpHeader(expiring);
        Assert.That(Outbound(expiring), Is.EqualTo(FrameReason.IcmpErrorTtlExpired));

        byte[] reply = Frames.Udp(Frames.Vip, 53, Frames.Client, 5000, [9]);
        byte[] inboundCorrupt = TunnelTests.IcmpError(ClientRouter, Frames.Vip, 3, 3, 0, reply.AsSpan(14).ToArray());
        inboundCorrupt[^1] ^= 0x55;
        Assert.That(lab.ProcessBuffer(inboundCorrupt).Reason, Is.EqualTo(FrameReason.IcmpChecksumInvalid));

        FrameReason Outbound(byte[] frame) => lab.ProcessBuffer(FromServer(frame), link: 1).Reason;
    }

    [Test]
    public void Nat_over_two_links_sends_replies_back_by_the_clients_link_with_its_mac()
    {
        var lab = Lab();
        EngineHarness.Outcome inbound = lab.ProcessBuffer(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true), link: 0);
        Assert.That(inbound.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(inbound.Link, Is.EqualTo(1), "to the server's link");
        Assert.That(Frames.Decode(inbound.Frame).Ethernet.SourceHardwareAddress, Is.EqualTo(ServerLinkMac));

        byte[] synAck = FromServer(Frames.Tcp(NatServer, 8080, Frames.Client, 40000, syn: true, ack: true));
        EngineHarness.Outcome reply = lab.ProcessBuffer(synAck, link: 1);
        Assert.That(reply.Reason, Is.EqualTo(FrameReason.ForwardedReply));
        Assert.That(reply.Link, Is.EqualTo(0), "back by the link the client's frames came in on");
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(reply.Frame);
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac), "link 0's MAC");
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
        Assert.That(ip.ValidIPChecksum && ip.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
    }

    [Test]
    public void A_client_on_the_servers_link_gets_its_replies_on_that_link()
    {
        var lab = Lab();
        byte[] syn = Frames.Tcp(Frames.Client, 40002, Frames.Vip, 80, syn: true);
        ServerLinkMac.GetAddressBytes().CopyTo(syn, 0);
        Assert.That(lab.ProcessBuffer(syn, link: 1).Reason, Is.EqualTo(FrameReason.Forwarded));
        EngineHarness.Outcome reply = lab.ProcessBuffer(FromServer(Frames.Tcp(NatServer, 8080, Frames.Client, 40002, syn: true, ack: true)), link: 1);
        Assert.That(reply.Reason, Is.EqualTo(FrameReason.ForwardedReply));
        Assert.That(reply.Link, Is.EqualTo(1));
        Assert.That(Frames.Decode(reply.Frame).Ethernet.SourceHardwareAddress, Is.EqualTo(ServerLinkMac));
    }
}
