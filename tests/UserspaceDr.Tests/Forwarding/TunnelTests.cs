using System.Net;
using PacketDotNet;
using PacketDotNet.Utils;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>IP-in-IP (ForwardingMethod.Tunnel): encapsulation, path MTU, and ICMP errors about tunnelled packets.</summary>
public class TunnelTests
{
    // Link 0 faces the clients, link 1 the tunnel servers' network.
    private const string ClientLinkAddress = "198.18.0.2";
    internal const string ServerLinkAddress = "198.18.2.2";
    private const string RouteSource = "198.18.2.3";
    internal const string TunnelServer = "198.18.3.21";
    internal const string Router = "198.18.2.254";
    internal static readonly System.Net.NetworkInformation.PhysicalAddress ServerLinkMac = Frames.Mac("02:00:00:00:02:02");
    internal static readonly System.Net.NetworkInformation.PhysicalAddress GatewayMac = Frames.Mac("02:00:00:00:02:fe");

    /// <summary>An engine whose link 1 leads to the tunnel server (TCP 80 and UDP 53), by IP-in-IP unless <paramref name="tunnel"/> says GUE or GRE.</summary>
    internal static EngineHarness Lab(uint routeSource = 0, int mtu = 1500, string serverLinkAddress = ServerLinkAddress, TunnelEncapsulation tunnel = default)
    {
        var tcp = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(TunnelServer), 80, ForwardingMethod.Tunnel) { Tunnel = tunnel }],
        };
        var udp = new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse(Frames.Vip), 53, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(TunnelServer), 53, ForwardingMethod.Tunnel) { Tunnel = tunnel }],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links =
            [
                new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse(ClientLinkAddress)),
                new EngineLink(Frames.UdrMac(ServerLinkMac), 1500, serverLinkAddress.Length == 0 ? 0 : Ipv4Address.Parse(serverLinkAddress)),
            ],
        };
        var lab = new EngineHarness(new RuleSetSpec([tcp, udp]), options: options);
        lab.Neighbors = lab.Neighbors.With(Ipv4Address.Parse(TunnelServer),
            new NextHop(Frames.UdrMac(GatewayMac), Link: 1, SourceAddress: routeSource, Mtu: mtu));
        return lab;
    }

    private static byte[] Syn(int payload = 16, byte tos = 0, bool dontFragment = true, byte ttl = 64, ushort port = 40000) =>
        Frames.WithIpHeader(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true, payload: Pattern(payload), ttl: ttl), tos, dontFragment);

    private static byte[] Pattern(int length) => Enumerable.Range(0, length).Select(i => (byte)((i * 7) + 3)).ToArray();

    /// <summary>The outer header (decoded by PacketDotNet) and the inner packet's bytes of an untagged tunnelled frame.</summary>
    private static (EthernetPacket Ethernet, IPv4Packet Outer, byte[] Inner) DecodeTunnelled(byte[] frame)
    {
        (EthernetPacket ethernet, IPv4Packet outer) = Frames.Decode(frame);
        return (ethernet, outer, frame.AsSpan(14 + 20, outer.TotalLength - 20).ToArray());
    }

    [Test]
    public void A_packet_for_a_tunnel_server_is_wrapped_in_an_outer_ipip_header()
    {
        var lab = Lab();
        byte[] syn = Syn(payload: 100, tos: 0xB8);
        byte[] originalIp = syn.AsSpan(14).ToArray();

        EngineHarness.Outcome sent = lab.ProcessBuffer(syn);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(sent.Offset, Is.EqualTo(FrameBuffer.RecommendedHeadroom - 20), "the frame grew 20 bytes into its headroom");
        Assert.That(sent.Frame, Has.Length.EqualTo(syn.Length + 20));
        Assert.That(sent.Link, Is.EqualTo(1), "egress link from the next hop");
        (EthernetPacket ethernet, IPv4Packet outer, byte[] inner) = DecodeTunnelled(sent.Frame);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(GatewayMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(ServerLinkMac), "the egress link's MAC");
        Assert.That(ethernet.Type, Is.EqualTo(EthernetType.IPv4));
        Assert.That(outer.Version, Is.EqualTo(IPVersion.IPv4));
        Assert.That(outer.HeaderLength, Is.EqualTo(5));
        Assert.That((int)outer.Protocol, Is.EqualTo(4), "IPPROTO_IPIP");
        Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(ServerLinkAddress)), "no route source: the egress link's address");
        Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer)));
        Assert.That(outer.TimeToLive, Is.EqualTo(63), "the inner TTL after the decrement");
        Assert.That(outer.TypeOfService, Is.EqualTo(0xB8), "DSCP EF copied");
        Assert.That(sent.Frame[14 + 6] & 0x40, Is.EqualTo(0x40), "DF copied from the inner header");
        Assert.That(outer.TotalLength, Is.EqualTo(originalIp.Length + 20));
        Assert.That(outer.ValidIPChecksum && Frames.ChecksumVerifies(sent.Frame.AsSpan(14, 20)), Is.True);

        // The inner packet is the client's, byte for byte, except TTL − 1 and the IP checksum that follows it.
        var innerIp = new IPv4Packet(new ByteArraySegment(inner));
        Assert.That(innerIp.TimeToLive, Is.EqualTo(63));
        Assert.That(innerIp.ValidIPChecksum, Is.True);
        Assert.That(innerIp.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)), "the inner destination stays the VIP");
        Assert.That(innerIp.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
        int[] differing = Enumerable.Range(0, inner.Length).Where(i => inner[i] != originalIp[i]).ToArray();
        Assert.That(differing, Is.SubsetOf(new[] { 8, 10, 11 }));
    }

    [Test]
    public void The_route_source_is_preferred_over_the_link_address()
    {
        var lab = Lab(routeSource: Ipv4Address.Parse(RouteSource));
        EngineHarness.Outcome sent = lab.ProcessBuffer(Syn());
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Frames.Decode(sent.Frame).Ip.SourceAddress, Is.EqualTo(IPAddress.Parse(RouteSource)));
    }

    [Test]
    public void Without_any_source_address_the_frame_is_dropped()
    {
        var lab = Lab(serverLinkAddress: "");
        Assert.That(lab.ProcessBuffer(Syn()).Reason, Is.EqualTo(FrameReason.TunnelSourceAddressMissing));
    }

    // INET_ECN_encapsulate: DSCP copied; ECN copied, except CE (11) which becomes ECT(0) (10).
    [TestCase(0x00, 0x00)]
    [TestCase(0x01, 0x01)]
    [TestCase(0x02, 0x02)]
    [TestCase(0x03, 0x02)]
    [TestCase(0xB9, 0xB9)]
    [TestCase(0xBB, 0xBA)]
    public void Tos_and_ecn_are_encapsulated_as_the_kernel_does(int innerTos, int outerTos)
    {
        EngineHarness.Outcome sent = Lab().ProcessBuffer(Syn(tos: (byte)innerTos));
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(sent.Frame[14 + 1], Is.EqualTo(outerTos));
        Assert.That(sent.Frame[14 + 20 + 1], Is.EqualTo(innerTos), "the inner TOS is untouched");
    }

    [Test]
    public void Df_is_copied_and_every_outer_header_gets_a_new_id()
    {
        var lab = Lab();
        EngineHarness.Outcome first = lab.ProcessBuffer(Syn(dontFragment: false, port: 40000));
        EngineHarness.Outcome second = lab.ProcessBuffer(Syn(dontFragment: false, port: 40001));
        Assert.That(first.Frame[14 + 6] & 0x40, Is.Zero, "no DF inside, none outside");
        (_, IPv4Packet a) = Frames.Decode(first.Frame);
        (_, IPv4Packet b) = Frames.Decode(second.Frame);
        Assert.That(b.Id, Is.EqualTo((ushort)(a.Id + 1)), "a per-engine counter");
        Assert.That(a.ValidIPChecksum && b.ValidIPChecksum, Is.True);
    }

    [Test]
    public void A_vlan_tagged_frame_keeps_its_tag_in_front_of_the_outer_header()
    {
        byte[] tagged = Frames.WithIpHeader(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: Pattern(20), vlan: 7), ipOffset: 18);
        byte[] innerBefore = tagged.AsSpan(18).ToArray();
        EngineHarness.Outcome sent = Lab().ProcessBuffer(tagged);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] frame = sent.Frame;
        Assert.That(frame.AsSpan(0, 6).ToArray(), Is.EqualTo(GatewayMac.GetAddressBytes()));
        Assert.That(frame.AsSpan(6, 6).ToArray(), Is.EqualTo(ServerLinkMac.GetAddressBytes()));
        Assert.That(frame.AsSpan(12, 6).ToArray(), Is.EqualTo(new byte[] { 0x81, 0x00, 0x00, 0x07, 0x08, 0x00 }), "802.1Q tag, then IPv4");
        var outer = new IPv4Packet(new ByteArraySegment(frame, 18, frame.Length - 18));
        Assert.That((int)outer.Protocol, Is.EqualTo(4));
        Assert.That(outer.ValidIPChecksum, Is.True);
        byte[] inner = frame.AsSpan(18 + 20).ToArray();
        Assert.That(inner, Has.Length.EqualTo(innerBefore.Length));
        Assert.That(Enumerable.Range(0, inner.Length).Where(i => inner[i] != innerBefore[i]), Is.SubsetOf(new[] { 8, 10, 11 }));
    }

    [Test]
    public void Ethernet_padding_is_not_carried_into_the_tunnel()
    {
        byte[] syn = Syn(payload: 0);
        byte[] padded = [.. syn, .. new byte[60 - 54 + 4]];
        EngineHarness.Outcome sent = Lab().ProcessBuffer(padded);
        Assert.That(sent.Frame, Has.Length.EqualTo(syn.Length + 20));
    }

    [TestCase(0)]
    [TestCase(19)]
    public void Without_headroom_for_the_outer_header_the_frame_is_dropped(int headroom)
    {
        Assert.That(Lab().ProcessBuffer(Syn(), headroom: headroom).Reason, Is.EqualTo(FrameReason.TunnelHeadroomMissing));
        Assert.That(Lab().Process(Syn()), Is.EqualTo(FrameReason.TunnelHeadroomMissing), "the span overload has no headroom");
    }

    [Test]
    public void A_gso_super_frame_is_not_encapsulated()
    {
        Assert.That(Lab().ProcessBuffer(Syn(), flags: FrameFlags.Gso).Reason, Is.EqualTo(FrameReason.TunnelGsoFrame));
    }

    [Test]
    public void A_partial_checksum_is_finished_before_encapsulation()
    {
        // Nothing after udr finishes a checksum inside IP-in-IP (no NIC offload is asked to, and the real server's
        // endpoint reads the inner bytes raw): the engine does, and the frame leaves with nothing partial.
        byte[] syn = Syn(payload: 30);
        var ip = new Ipv4Header(syn.AsSpan(14));
        ushort seed = Checksum.Fold(Checksum.PseudoHeader(ip.Source, ip.Destination, ip.Protocol, ip.TotalLength - 20));
        syn[34 + 16] = (byte)(seed >> 8);
        syn[34 + 17] = (byte)seed;
        EngineHarness.Outcome sent = Lab().ProcessBuffer(syn, flags: FrameFlags.ChecksumPartial);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(sent.Flags & FrameFlags.ChecksumPartial, Is.EqualTo(FrameFlags.None));
        var inner = new IPv4Packet(new ByteArraySegment(sent.Frame, 34, sent.Frame.Length - 34));
        Assert.That(inner.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
    }

    [Test]
    public void An_unfinished_checksum_is_finished_before_encapsulation()
    {
        byte[] syn = Syn(payload: 30);
        syn[14 + 20 + 16] = 0x12; // garbage where offload left the checksum unfinished
        EngineHarness.Outcome sent = Lab().ProcessBuffer(syn, flags: FrameFlags.ChecksumNotReady);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.Forwarded));
        var inner = new IPv4Packet(new ByteArraySegment(sent.Frame, 34, sent.Frame.Length - 34));
        Assert.That(inner.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
    }

    [Test]
    public void Df_and_too_big_for_the_tunnel_is_answered_with_frag_needed_for_the_mtu_less_20()
    {
        var lab = Lab(mtu: 1000);
        byte[] syn = Syn(payload: 1000 - 40 - 20 + 1); // inner 981 bytes: 1001 with the outer header
        EngineHarness.Outcome outcome = lab.ProcessBuffer(syn);

        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        Assert.That(FrameReasons.VerdictOf(outcome.Reason), Is.EqualTo(Verdict.Reply));
        Assert.That(outcome.Link, Is.EqualTo(0), "the reply leaves by the link the frame came in on");
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(outcome.Reply);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)), "from the VIP the client addressed");
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(ip.ValidIPChecksum, Is.True);
        byte[] icmp = outcome.Reply.AsSpan(14 + 20, ip.TotalLength - 20).ToArray();
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)3, (byte)4)), "destination unreachable, fragmentation needed");
        Assert.That((icmp[6] << 8) | icmp[7], Is.EqualTo(980), "next-hop MTU: the path MTU less the outer header");
        Assert.That(Frames.ChecksumVerifies(icmp), Is.True);
        byte[] quote = icmp.AsSpan(8).ToArray();
        Assert.That(quote.AsSpan(12, 8).ToArray(), Is.EqualTo(syn.AsSpan(14 + 12, 8).ToArray()), "the quote is the client's packet");
        Assert.That(quote.AsSpan(20).ToArray(), Is.EqualTo(syn.AsSpan(34, quote.Length - 20).ToArray()));
        Assert.That(quote.Length, Is.EqualTo(576 - 28), "quoted up to 576 bytes of datagram");
    }

    [Test]
    public void Without_df_a_packet_too_big_for_the_tunnel_becomes_two_outer_fragments()
    {
        var lab = Lab(mtu: 1000);
        byte[] syn = Syn(payload: 1400 - 40, dontFragment: false);
        EngineHarness.Outcome sent = lab.ProcessBuffer(syn);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedAsFragments));
        Assert.That(FrameReasons.VerdictOf(sent.Reason), Is.EqualTo(Verdict.Transmit));
        Assert.That(sent.Overflow, Is.Not.Empty);
        (EthernetPacket e1, IPv4Packet first) = Frames.Decode(sent.Frame);
        (EthernetPacket e2, IPv4Packet second) = Frames.Decode(sent.Overflow);
        Assert.That(sent.Frame, Has.Length.LessThanOrEqualTo(14 + 1000));
        Assert.That(sent.Overflow, Has.Length.LessThanOrEqualTo(14 + 1000));
        Assert.That(first.TotalLength, Is.EqualTo(20 + 976), "the largest multiple of 8 that fits 1000 − 20");
        Assert.That((first.FragmentFlags, first.FragmentOffset), Is.EqualTo((1, 0)), "MF, offset 0");
        Assert.That((second.FragmentFlags, second.FragmentOffset), Is.EqualTo((0, 976 / 8)), "last fragment");
        Assert.That(second.Id, Is.EqualTo(first.Id));
        foreach (IPv4Packet fragment in new[] { first, second })
        {
            Assert.That((int)fragment.Protocol, Is.EqualTo(4));
            Assert.That(fragment.ValidIPChecksum, Is.True);
            Assert.That(fragment.SourceAddress, Is.EqualTo(IPAddress.Parse(ServerLinkAddress)));
            Assert.That(fragment.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer)));
        }
        Assert.That(e2.DestinationHardwareAddress, Is.EqualTo(e1.DestinationHardwareAddress));
        Assert.That(e2.SourceHardwareAddress, Is.EqualTo(ServerLinkMac));

        // Reassembled, the outer payload is the client's packet with TTL − 1.
        byte[] reassembled = [.. sent.Frame.AsSpan(34, first.TotalLength - 20), .. sent.Overflow.AsSpan(34, second.TotalLength - 20)];
        Assert.That(reassembled, Has.Length.EqualTo(1400));
        var inner = new IPv4Packet(new ByteArraySegment(reassembled));
        Assert.That(inner.TimeToLive, Is.EqualTo(63));
        Assert.That(inner.ValidIPChecksum && inner.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
        Assert.That(reassembled.AsSpan(20).ToArray(), Is.EqualTo(syn.AsSpan(34).ToArray()));
    }

    [Test]
    public void A_partial_checksum_is_finished_before_the_packet_is_split()
    {
        byte[] syn = Syn(payload: 1400 - 40, dontFragment: false);
        var ip = new Ipv4Header(syn.AsSpan(14));
        ushort seed = Checksum.Fold(Checksum.PseudoHeader(ip.Source, ip.Destination, ip.Protocol, ip.TotalLength - 20));
        syn[34 + 16] = (byte)(seed >> 8);
        syn[34 + 17] = (byte)seed;
        EngineHarness.Outcome sent = Lab(mtu: 1000).ProcessBuffer(syn, flags: FrameFlags.ChecksumPartial);
        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedAsFragments));
        Assert.That(sent.Flags & FrameFlags.ChecksumPartial, Is.EqualTo(FrameFlags.None));
        byte[] reassembled = [.. sent.Frame.AsSpan(34), .. sent.Overflow.AsSpan(34)];
        Assert.That(new IPv4Packet(new ByteArraySegment(reassembled)).Extract<TcpPacket>().ValidTcpChecksum, Is.True);
    }

    [Test]
    public void Fragmenting_needs_an_overflow_frame_and_at_most_two_fragments()
    {
        byte[] big = Syn(payload: 1400 - 40, dontFragment: false);
        Assert.That(Lab(mtu: 1000).ProcessBuffer(big, overflow: 0).Reason, Is.EqualTo(FrameReason.TunnelOverflowMissing));
        Assert.That(Lab(mtu: 1000).ProcessBuffer(big, overflow: 14 + 20 + 423).Reason, Is.EqualTo(FrameReason.TunnelOverflowMissing), "one byte short");
        Assert.That(Lab(mtu: 1000).ProcessBuffer(big, overflow: 14 + 20 + 424).Reason, Is.EqualTo(FrameReason.ForwardedAsFragments), "exactly enough");
        Assert.That(Lab(mtu: 600).ProcessBuffer(big).Reason, Is.EqualTo(FrameReason.TunnelTooManyFragments));
        Assert.That(Lab(mtu: 87).ProcessBuffer(Syn(payload: 0)).Reason, Is.EqualTo(FrameReason.TunnelPathMtuTooSmall), "below 68 + 20");
    }

    [Test]
    public void An_icmp_error_to_the_vip_about_a_tunnelled_flow_is_relayed_encapsulated()
    {
        var lab = Lab();
        Assert.That(lab.ProcessBuffer(Syn()).Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] serverReply = Frames.Tcp(Frames.Vip, 80, Frames.Client, 40000, ack: true, payload: Pattern(40));
        byte[] error = IcmpError("198.18.0.254", Frames.Vip, 3, 4, 1200, serverReply.AsSpan(14, 28).ToArray());
        byte[] errorIp = error.AsSpan(14).ToArray();

        EngineHarness.Outcome sent = lab.ProcessBuffer(error);

        Assert.That(sent.Reason, Is.EqualTo(FrameReason.ForwardedIcmpError));
        (_, IPv4Packet outer, byte[] inner) = DecodeTunnelled(sent.Frame);
        Assert.That((int)outer.Protocol, Is.EqualTo(4));
        Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer)));
        Assert.That(Enumerable.Range(0, inner.Length).Where(i => inner[i] != errorIp[i]), Is.SubsetOf(new[] { 8, 10, 11 }));
    }

    /// <summary>An ICMP error frame from <paramref name="source"/> to <paramref name="destination"/> quoting <paramref name="quote"/>.</summary>
    internal static byte[] IcmpError(string source, string destination, byte type, byte code, ushort mtu, byte[] quote, ushort? vlan = null)
    {
        byte[] body = new byte[8 + quote.Length];
        body[0] = type;
        body[1] = code;
        body[6] = (byte)(mtu >> 8);
        body[7] = (byte)mtu;
        quote.CopyTo(body, 8);
        ushort sum = Frames.InternetChecksum(body);
        body[2] = (byte)(sum >> 8);
        body[3] = (byte)sum;
        var icmp = new IcmpV4Packet(new ByteArraySegment(body));
        var ip = new IPv4Packet(IPAddress.Parse(source), IPAddress.Parse(destination)) { PayloadPacket = icmp, TimeToLive = 64 };
        ip.UpdateIPChecksum();
        return Frames.Ethernet(ip, vlan);
    }

    /// <summary>The outer IP-in-IP header udr sent towards the tunnel server, as a router would quote it, with what follows.</summary>
    private static byte[] TunnelledQuote(byte[] innerFrame, int innerBytes, string outerSource = ServerLinkAddress)
    {
        byte[] outer = new byte[20];
        outer[0] = 0x45;
        int total = 20 + ((innerFrame[16] << 8) | innerFrame[17]);
        outer[2] = (byte)(total >> 8);
        outer[3] = (byte)total;
        outer[6] = 0x40;
        outer[8] = 61;
        outer[9] = 4;
        IPAddress.Parse(outerSource).GetAddressBytes().CopyTo(outer, 12);
        IPAddress.Parse(TunnelServer).GetAddressBytes().CopyTo(outer, 16);
        ushort sum = Frames.InternetChecksum(outer);
        outer[10] = (byte)(sum >> 8);
        outer[11] = (byte)sum;
        return [.. outer, .. innerFrame.AsSpan(14, innerBytes)];
    }

    /// <summary>The frame as it arrives from the tunnel server's side: from the gateway's MAC, to the server link's.</summary>
    internal static byte[] FromServerSide(byte[] frame)
    {
        GatewayMac.GetAddressBytes().CopyTo(frame, 6);
        ServerLinkMac.GetAddressBytes().CopyTo(frame, 0);
        return frame;
    }

    [Test]
    public void Frag_needed_about_a_tunnelled_packet_tells_the_client_the_mtu_less_20_from_the_vip()
    {
        var lab = Lab();
        byte[] syn = Syn(payload: 1200);
        Assert.That(lab.ProcessBuffer(syn, link: 0).Reason, Is.EqualTo(FrameReason.Forwarded));
        // A router behind link 1 could not forward the 1280-byte outer packet; it quotes the outer header and 28 bytes.
        byte[] error = FromServerSide(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 28)));

        EngineHarness.Outcome outcome = lab.ProcessBuffer(error, link: 1);

        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeededFromTunnel));
        Assert.That(FrameReasons.VerdictOf(outcome.Reason), Is.EqualTo(Verdict.Reply));
        Assert.That(outcome.Link, Is.EqualTo(0), "the reply leaves by the link the client's frames arrive on");
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(outcome.Reply);
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac), "link 0's MAC");
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(ip.ValidIPChecksum, Is.True);
        byte[] icmp = outcome.Reply.AsSpan(34, ip.TotalLength - 20).ToArray();
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)3, (byte)4)));
        Assert.That((icmp[6] << 8) | icmp[7], Is.EqualTo(1260));
        Assert.That(Frames.ChecksumVerifies(icmp), Is.True);
        Assert.That(icmp.AsSpan(8).ToArray(), Is.EqualTo(syn.AsSpan(14, 28).ToArray()), "the client's own packet: its header and 8 bytes");
        Assert.That(lab.Engine.Counters.Read(lab.Rules.Services.Single(s => s.Port == 80).Destinations.Single()).OutPackets, Is.EqualTo(1),
            "counted as ip_vs_out_stats does");
    }

    [Test]
    public void A_reported_tunnel_mtu_is_kept_for_the_server_for_ten_minutes()
    {
        var lab = Lab();
        byte[] first = Syn(payload: 1200);
        Assert.That(lab.ProcessBuffer(first, link: 0).Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] error = FromServerSide(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(first, 28)));
        Assert.That(lab.ProcessBuffer(error, link: 1).Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeededFromTunnel));

        // Another client connection to the same server, 1360 bytes once encapsulated: over what the router reported.
        // udr now refuses it itself (MTU 1260 inside the tunnel) instead of sending it on for the router to drop.
        EngineHarness.Outcome refused = lab.ProcessBuffer(Syn(payload: 1300, port: 40001), nowMs: 2000);
        Assert.That(refused.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        byte[] icmp = refused.Reply.AsSpan(34).ToArray();
        Assert.That((icmp[6] << 8) | icmp[7], Is.EqualTo(1260));
        Assert.That(lab.ProcessBuffer(Syn(payload: 1200, port: 40002), nowMs: 3000).Reason, Is.EqualTo(FrameReason.Forwarded), "what fits still goes");

        // Ten minutes on, the route's own MTU is tried again (the kernel's ip_rt_mtu_expires).
        Assert.That(lab.ProcessBuffer(Syn(payload: 1300, port: 40003), nowMs: 1000 + (10 * 60 * 1000) + 1).Reason, Is.EqualTo(FrameReason.Forwarded));
    }

    [Test]
    public void Frag_needed_about_a_tunnelled_packet_is_refused_or_ignored_when_it_is_not_ours()
    {
        var lab = Lab();
        byte[] syn = Syn(payload: 1200);
        lab.ProcessBuffer(syn);
        byte[] untracked = Syn(payload: 1200, port: 40999);

        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(untracked, 28))), Is.EqualTo(FrameReason.IcmpErrorNotTracked), "unknown flow");
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 28, outerSource: RouteSource))),
            Is.EqualTo(FrameReason.IcmpErrorNotTracked), "quotes a packet another host sent");
        Assert.That(Reason(IcmpError(Router, RouteSource, 3, 4, 1280, TunnelledQuote(syn, 28, outerSource: RouteSource))),
            Is.EqualTo(FrameReason.IcmpErrorNotTracked), "not the source udr tunnels from towards that server");
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 11, 0, 0, TunnelledQuote(syn, 28))), Is.EqualTo(FrameReason.IcmpErrorNotTracked), "only frag-needed");
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 0))), Is.EqualTo(FrameReason.IcmpErrorNotTracked), "outer header only");
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 23))), Is.EqualTo(FrameReason.IcmpErrorNotTracked), "no ports");
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 28)[..19])), Is.EqualTo(FrameReason.NotForVirtualAddress), "cut outer header");

        byte[] corrupt = IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(syn, 28));
        corrupt[^1] ^= 0xFF;
        Assert.That(Reason(corrupt), Is.EqualTo(FrameReason.IcmpChecksumInvalid));

        byte[] noDf = Syn(payload: 1200, dontFragment: false, port: 40001);
        lab.ProcessBuffer(noDf);
        Assert.That(Reason(IcmpError(Router, ServerLinkAddress, 3, 4, 1280, TunnelledQuote(noDf, 28))), Is.EqualTo(FrameReason.TunnelIcmpWithoutDf));

        FrameReason Reason(byte[] frame) => lab.ProcessBuffer(FromServerSide(frame), link: 1).Reason;
    }
}
