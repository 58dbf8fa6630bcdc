using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

using static UserspaceDr.Tests.Forwarding.TunnelTests;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// GUE and GRE tunnel servers (ipvs_gue_encap, ipvs_gre_encap): the outer IPv4 header's protocol, the UDP and GUE
/// headers or the GRE header between it and the inner packet, their checksums when asked for, the MTU they take, and
/// outer fragments carrying them. Decoded by PacketDotNet where it knows the header (UDP), by the RFCs' layout otherwise.
/// </summary>
public class GueGreTunnelTests
{
    private static EngineHarness Lab(TunnelEncapsulation tunnel, int mtu = 1500) => TunnelTests.Lab(mtu: mtu, tunnel: tunnel);

    private static byte[] Syn(int payload = 100, bool dontFragment = true, ushort port = 40000) =>
        Frames.WithIpHeader(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true,
            payload: [.. Enumerable.Range(0, payload).Select(i => (byte)((i * 7) + 3))]), 0, dontFragment);

    /// <summary>The inner packet as the server must get it: the client's, its TTL one less and its header checksum made for that.</summary>
    private static byte[] ExpectedInner(byte[] syn)
    {
        byte[] inner = syn.AsSpan(14).ToArray();
        inner[8]--;
        BinaryPrimitives.WriteUInt16BigEndian(inner.AsSpan(10), 0);
        BinaryPrimitives.WriteUInt16BigEndian(inner.AsSpan(10), Checksum.Compute(inner.AsSpan(0, 20)));
        return inner;
    }

    [TestCase(TunnelChecksum.NoChecksum)]
    [TestCase(TunnelChecksum.Checksum)]
    [TestCase(TunnelChecksum.RemoteChecksum)]
    public void Gue_puts_udp_to_the_tun_port_and_a_version_0_header_naming_ipv4_before_the_inner_packet(TunnelChecksum checksum)
    {
        byte[] syn = Syn();
        EngineHarness.Outcome sent = Lab(new TunnelEncapsulation(TunnelType.Gue, 6080, checksum)).ProcessBuffer(syn);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(sent.Frame, Has.Length.EqualTo(syn.Length + 20 + 8 + 4), "outer IPv4, UDP and GUE headers");
        (EthernetPacket ethernet, IPv4Packet outer) = Frames.Decode(sent.Frame);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(GatewayMac));
        Assert.That(outer.Protocol, Is.EqualTo(PacketDotNet.ProtocolType.Udp));
        Assert.That(outer.ValidIPChecksum, Is.True);
        Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(ServerLinkAddress)));
        Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer)));
        var udp = (UdpPacket)outer.PayloadPacket;
        Assert.That(udp.DestinationPort, Is.EqualTo(6080));
        Assert.That(udp.SourcePort, Is.InRange(32768, 60999), "a flow hash in the local port range");
        Assert.That(udp.Length, Is.EqualTo(8 + 4 + syn.Length - 14));
        if (checksum == TunnelChecksum.NoChecksum)
        {
            Assert.That(udp.Checksum, Is.Zero, "--tun-nocsum: no UDP checksum");
        }
        else
        {
            Assert.That(udp.ValidUdpChecksum, Is.True, "a full UDP checksum (remcsum is for locally made packets only)");
        }
        byte[] gue = udp.PayloadData;
        Assert.That(gue[..4], Is.EqualTo(new byte[] { 0, 4, 0, 0 }), "GUE version 0, C 0, no options, proto_ctype 4, flags 0");
        Assert.That(gue[4..], Is.EqualTo(ExpectedInner(syn)));
    }

    [TestCase(TunnelType.Gue, TunnelChecksum.Checksum, 32)]
    [TestCase(TunnelType.Gre, TunnelChecksum.Checksum, 28)]
    [TestCase(TunnelType.Gre, TunnelChecksum.NoChecksum, 24)]
    public void A_routers_frag_needed_about_a_gue_or_gre_packet_tells_the_client_the_mtu_left_inside(TunnelType type, TunnelChecksum checksum, int overhead)
    {
        EngineHarness lab = Lab(new TunnelEncapsulation(type, 6080, checksum));
        byte[] syn = Syn(payload: 1200);
        EngineHarness.Outcome sent = lab.ProcessBuffer(syn);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        // A router behind link 1 could not forward it: it quotes the outer header, the GUE or GRE header and 28 bytes of the inner packet.
        byte[] quote = sent.Frame.AsSpan(14, 20 + overhead - 20 + 28).ToArray();
        byte[] error = FromServerSide(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, quote));

        EngineHarness.Outcome relayed = lab.ProcessBuffer(error, link: 1);

        Assert.That(relayed.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeededFromTunnel));
        (_, IPv4Packet ip) = Frames.Decode(relayed.Reply);
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        byte[] icmp = relayed.Reply.AsSpan(34, ip.TotalLength - 20).ToArray();
        Assert.That((icmp[6] << 8) | icmp[7], Is.EqualTo(1280 - overhead), "the MTU less the outer IPv4 and the encapsulation header");
        Assert.That(icmp.AsSpan(8).ToArray(), Is.EqualTo(ExpectedInner(syn)[..28]), "the client's packet quoted as the router saw it inside");

        // The same error about another server's encapsulation (a GUE quote to a GRE server, or another port) is not udr's.
        EngineHarness other = Lab(new TunnelEncapsulation(TunnelType.Gue, 7070));
        Assert.That(other.ProcessBuffer(syn).Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(other.ProcessBuffer(error, link: 1).Reason, Is.EqualTo(FrameReason.IcmpErrorNotTracked));
    }

    [Test]
    public void The_gue_source_port_follows_the_flow()
    {
        EngineHarness lab = Lab(new TunnelEncapsulation(TunnelType.Gue, 6080));
        int Port(ushort clientPort) => ((UdpPacket)Frames.Decode(lab.ProcessBuffer(Syn(port: clientPort)).Frame).Ip.PayloadPacket).SourcePort;
        int first = Port(40000);
        Assert.That(Port(40000), Is.EqualTo(first), "one flow, one port");
        Assert.That(Enumerable.Range(40001, 16).Select(p => Port((ushort)p)).Distinct().Count(), Is.GreaterThan(8), "flows spread over ports");
    }

    [TestCase(TunnelChecksum.NoChecksum, 4)]
    [TestCase(TunnelChecksum.Checksum, 8)]
    public void Gre_puts_a_version_0_header_with_the_ipv4_protocol_type_and_its_checksum_when_asked(TunnelChecksum checksum, int headerLength)
    {
        byte[] syn = Syn();
        EngineHarness.Outcome sent = Lab(new TunnelEncapsulation(TunnelType.Gre, 0, checksum)).ProcessBuffer(syn);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        (_, IPv4Packet outer) = Frames.Decode(sent.Frame);
        Assert.That((int)outer.Protocol, Is.EqualTo(47), "IPPROTO_GRE");
        Assert.That(outer.ValidIPChecksum, Is.True);
        byte[] gre = sent.Frame.AsSpan(34, outer.TotalLength - 20).ToArray();
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(gre), Is.EqualTo(checksum == TunnelChecksum.Checksum ? 0x8000 : 0), "only the C bit, version 0");
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(gre.AsSpan(2)), Is.EqualTo(0x0800), "IPv4 inside");
        if (checksum == TunnelChecksum.Checksum)
        {
            Assert.That(Checksum.Fold(Checksum.Add(gre)), Is.EqualTo(0xFFFF), "the checksum covers the GRE header and the packet it carries");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(gre.AsSpan(6)), Is.Zero, "reserved");
        }
        Assert.That(gre[headerLength..], Is.EqualTo(ExpectedInner(syn)));
    }

    [TestCase(TunnelType.Gue, 32)]
    [TestCase(TunnelType.Gre, 24)]
    public void A_df_packet_too_big_with_the_encapsulation_is_told_the_mtu_left_inside(TunnelType type, int overhead)
    {
        EngineHarness.Outcome refused = Lab(new TunnelEncapsulation(type, 6080), mtu: 1000).ProcessBuffer(Syn(payload: 1000 - overhead - 40 + 1));
        Assert.That(refused.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(refused.Reply.AsSpan(14 + 20 + 6)), Is.EqualTo(1000 - overhead));
        Assert.That(Lab(new TunnelEncapsulation(type, 6080), mtu: 1000).ProcessBuffer(Syn(payload: 1000 - overhead - 40)).Reason, Is.EqualTo(FrameReason.Forwarded),
            "what fits goes");
    }

    [TestCase(TunnelChecksum.NoChecksum)]
    [TestCase(TunnelChecksum.Checksum)]
    public void To_an_ipv6_server_gue_rides_in_ipv6_its_udp_checksum_over_the_ipv6_pseudo_header_or_zero(TunnelChecksum checksum)
    {
        const string Server6 = "2001:2::21";
        const string Balancer6 = "2001:2::2";
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames6.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Server6), 80, ForwardingMethod.Tunnel) { Tunnel = new TunnelEncapsulation(TunnelType.Gue, 6080, checksum) }],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links = [new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse("198.18.0.2"), InetAddress.Parse(Balancer6).IPv6)],
        };
        var lab = new EngineHarness(new RuleSetSpec([service]), options: options);
        lab.Neighbors = new NeighborTable(lab.Neighbors.Hops, new Dictionary<UInt128, NextHop> { [InetAddress.Parse(Server6).IPv6] = new NextHop(Frames.UdrMac(GatewayMac)) });
        byte[] syn = Frames6.Tcp(40000, payload: [1, 2, 3]);
        EngineHarness.Outcome sent = lab.ProcessBuffer(syn);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        var outer = (IPv6Packet)((EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, sent.Frame)).PayloadPacket;
        Assert.That(outer.NextHeader, Is.EqualTo(PacketDotNet.ProtocolType.Udp));
        byte[] datagram = sent.Frame[(14 + 40)..];
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(datagram.AsSpan(2)), Is.EqualTo(6080));
        Assert.That(datagram[8..12], Is.EqualTo(new byte[] { 0, 41, 0, 0 }), "GUE naming IPv6 inside");
        ushort udpChecksum = BinaryPrimitives.ReadUInt16BigEndian(datagram.AsSpan(6));
        if (checksum == TunnelChecksum.NoChecksum)
        {
            Assert.That(udpChecksum, Is.Zero, "--tun-nocsum: 0 over IPv6 too (a tunnel's zero checksum, RFC 6935)");
        }
        else
        {
            Assert.That(Checksum.Fold(Checksum.Add(datagram, Ipv6Checksum.PseudoHeader(InetAddress.Parse(Balancer6).IPv6, InetAddress.Parse(Server6).IPv6, 17, datagram.Length))),
                Is.EqualTo(0xFFFF), "the checksum holds over the IPv6 pseudo-header");
        }
        Assert.That(datagram[12..].Length, Is.EqualTo(syn.Length - 14), "the inner IPv6 packet whole");
    }

    [Test]
    public void Without_df_a_gue_packet_too_big_leaves_as_two_outer_fragments_whose_payload_is_the_whole_udp_datagram()
    {
        byte[] syn = Syn(payload: 1200, dontFragment: false);
        EngineHarness.Outcome sent = Lab(new TunnelEncapsulation(TunnelType.Gue, 6080, TunnelChecksum.Checksum), mtu: 1000).ProcessBuffer(syn);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedAsFragments));
        (_, IPv4Packet first) = Frames.Decode(sent.Frame);
        (_, IPv4Packet second) = Frames.Decode(sent.Overflow);
        Assert.That(first.TotalLength, Is.LessThanOrEqualTo(1000));
        Assert.That((int)second.Protocol, Is.EqualTo(17));
        Assert.That(second.FragmentOffset * 8, Is.EqualTo(first.TotalLength - 20));
        byte[] datagram = [.. sent.Frame.AsSpan(34, first.TotalLength - 20), .. sent.Overflow.AsSpan(34, second.TotalLength - 20)];
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(datagram.AsSpan(4)), Is.EqualTo(datagram.Length), "UDP length of the whole datagram");
        ulong pseudo = Checksum.PseudoHeader(Ipv4Address.Parse(ServerLinkAddress), Ipv4Address.Parse(TunnelServer), 17, datagram.Length);
        Assert.That(Checksum.Fold(Checksum.Add(datagram, pseudo)), Is.EqualTo(0xFFFF), "the UDP checksum holds over the reassembled datagram");
        Assert.That(datagram[12..], Is.EqualTo(ExpectedInner(syn)));
    }
}
