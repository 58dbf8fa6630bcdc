using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

using static UserspaceDr.Tests.Forwarding.Frames6;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// Tunnelling over IPv6 (ip_vs_tunnel_xmit_v6) and across families: IPv6 in IPv6, IPv4 in IPv6 (an IPv4 service with an
/// IPv6 tunnel server) and IPv6 in IPv4 (the reverse), each outer and inner packet decoded by PacketDotNet.
/// </summary>
public class Ipv6TunnelTests
{
    private const string BalancerAddress6 = "2001:2::2";
    private const string BalancerAddress4 = "198.18.0.2";
    private const string TunnelServer6 = "2001:2::21";
    private const string TunnelServer4 = "198.18.0.21";

    private static EngineHarness Lab(string vip, string server, int mtu = 1500, bool linkAddress6 = true)
    {
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(server), 80, ForwardingMethod.Tunnel)],
        };
        var udp = new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse(vip), 53, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(server), 53, ForwardingMethod.Tunnel)],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links = [new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse(BalancerAddress4), linkAddress6 ? V6(BalancerAddress6) : UInt128.Zero)],
        };
        var lab = new EngineHarness(new RuleSetSpec([service, udp]), options: options);
        var hop = new NextHop(Frames.UdrMac(Frames.Rs1Mac), Mtu: mtu);
        lab.Neighbors = new NeighborTable(new Dictionary<uint, NextHop>(lab.Neighbors.Hops) { [Ipv4Address.Parse(TunnelServer4)] = hop },
            new Dictionary<UInt128, NextHop> { [V6(TunnelServer6)] = hop });
        return lab;
    }

    private static (EthernetPacket Ethernet, IPv6Packet Outer) DecodeIpv6Outer(byte[] frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);
        Assert.That(ethernet.Type, Is.EqualTo(EthernetType.IPv6));
        return (ethernet, (IPv6Packet)ethernet.PayloadPacket);
    }

    [Test]
    public void An_ipv6_packet_for_an_ipv6_tunnel_server_is_wrapped_in_ipv6_with_the_inner_traffic_class_and_hop_limit()
    {
        EngineHarness lab = Lab(Vip, TunnelServer6);
        byte[] syn = Tcp(40000, payload: [1, 2, 3]);
        syn[14] = 0x6B; // traffic class 0xB7: DSCP 45, ECN CE
        syn[15] = (byte)(0x70 | (syn[15] & 0x0F));
        syn[15] |= 0x0A; // and a flow label, which the outer header does not copy
        byte[] sent = [.. syn];
        EngineHarness.Outcome outcome = lab.ProcessBuffer(syn);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.Forwarded));
        (EthernetPacket ethernet, IPv6Packet outer) = DecodeIpv6Outer(outcome.Frame);
        byte[] inner = outcome.Frame[(14 + 40)..];
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
            Assert.That((int)outer.NextHeader, Is.EqualTo(Ipv6NextHeader.Ipv6));
            Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(BalancerAddress6)));
            Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer6)));
            Assert.That(outer.HopLimit, Is.EqualTo(63), "the inner hop limit after the decrement");
            Assert.That(outer.TrafficClass, Is.EqualTo(0xB6), "DSCP copied, CE encapsulated as ECT(0)");
            Assert.That(outer.FlowLabel, Is.Zero);
            Assert.That(outer.PayloadLength, Is.EqualTo(sent.Length - 14));
            Assert.That(inner[7], Is.EqualTo(63), "inner hop limit decremented");
            inner[7] = 64;
            Assert.That(inner, Is.EqualTo(sent[14..]), "the inner packet is otherwise the client's");
        });
    }

    [Test]
    public void An_ipv4_packet_for_an_ipv6_tunnel_server_is_wrapped_in_ipv6_with_next_header_4()
    {
        EngineHarness lab = Lab(Frames.Vip, TunnelServer6);
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: [1, 2, 3]);
        EngineHarness.Outcome outcome = lab.ProcessBuffer(syn);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.Forwarded));
        (EthernetPacket _, IPv6Packet outer) = DecodeIpv6Outer(outcome.Frame);
        var inner = new IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(outcome.Frame[(14 + 40)..]));
        Assert.Multiple(() =>
        {
            Assert.That((int)outer.NextHeader, Is.EqualTo(Ipv6NextHeader.Ipv4));
            Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer6)));
            Assert.That(outer.HopLimit, Is.EqualTo(63));
            Assert.That(inner.TimeToLive, Is.EqualTo(63));
            Assert.That(inner.ValidIPChecksum, Is.True);
            Assert.That(inner.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
            Assert.That(((TcpPacket)inner.PayloadPacket).ValidTcpChecksum, Is.True);
        });
    }

    [Test]
    public void An_ipv6_packet_for_an_ipv4_tunnel_server_is_wrapped_in_ipv4_protocol_41_without_DF()
    {
        EngineHarness lab = Lab(Vip, TunnelServer4);
        byte[] syn = Tcp(40000, payload: [1, 2, 3]);
        byte[] sent = [.. syn];
        EngineHarness.Outcome outcome = lab.ProcessBuffer(syn);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.Forwarded));
        (EthernetPacket ethernet, IPv4Packet outer) = Frames.Decode(outcome.Frame);
        byte[] inner = outcome.Frame[(14 + 20)..];
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.Type, Is.EqualTo(EthernetType.IPv4));
            Assert.That((int)outer.Protocol, Is.EqualTo(41));
            Assert.That(outer.ValidIPChecksum, Is.True);
            Assert.That(outer.FragmentFlags & 0x2, Is.Zero, "DF is never set over IPv6 (ip_vs_prepare_tunneled_skb)");
            Assert.That(outer.TimeToLive, Is.EqualTo(63));
            Assert.That(outer.SourceAddress, Is.EqualTo(IPAddress.Parse(BalancerAddress4)));
            Assert.That(outer.DestinationAddress, Is.EqualTo(IPAddress.Parse(TunnelServer4)));
            inner[7] = 64;
            Assert.That(inner, Is.EqualTo(sent[14..]));
        });
    }

    [Test]
    public void An_ipv6_packet_too_big_for_the_tunnel_gets_packet_too_big_with_the_mtu_left_inside()
    {
        EngineHarness lab = Lab(Vip, TunnelServer6, mtu: 1400);
        EngineHarness.Outcome outcome = lab.ProcessBuffer(Tcp(40000, payload: new byte[1340]));
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.Icmpv6PacketTooBig));
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(outcome.Reply.AsSpan(14 + 40 + 4)), Is.EqualTo(1360));
        Assert.That(Lab(Vip, TunnelServer6, mtu: 1300).ProcessBuffer(Tcp(40000)).Reason, Is.EqualTo(FrameReason.TunnelPathMtuTooSmall),
            "IPv6's 1280 must fit inside");
        Assert.That(Lab(Vip, TunnelServer6, linkAddress6: false).ProcessBuffer(Tcp(40000)).Reason, Is.EqualTo(FrameReason.TunnelSourceAddressMissing));
        Assert.That(Lab(Vip, TunnelServer6).ProcessBuffer(Tcp(40000), headroom: 40).Reason, Is.EqualTo(FrameReason.TunnelHeadroomMissing));
    }

    [Test]
    public void An_ipv4_packet_too_big_for_an_ipv6_tunnel_is_refused_with_DF_and_sent_as_two_outer_fragments_without()
    {
        EngineHarness lab = Lab(Frames.Vip, TunnelServer6, mtu: 1400);
        byte[] big = Frames.WithIpHeader(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: new byte[1400]), 0, dontFragment: true);
        EngineHarness.Outcome refused = lab.ProcessBuffer(big);
        Assert.That(refused.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(refused.Reply.AsSpan(14 + 20 + 6)), Is.EqualTo(1360));

        byte[] datagram = Frames.WithIpHeader(Frames.Udp(Frames.Client, 5000, Frames.Vip, 53, new byte[1400]), 0, dontFragment: false);
        byte[] sent = [.. datagram];
        EngineHarness.Outcome split = lab.ProcessBuffer(datagram);
        Assert.That(split.Reason, Is.EqualTo(FrameReason.ForwardedAsFragments));
        byte[][] fragments = [split.Frame, split.Overflow];
        Assert.That(fragments.Select(f => f.Length - 14), Has.All.LessThanOrEqualTo(1400), "each outer fragment fits the path");
        uint id = BinaryPrimitives.ReadUInt32BigEndian(fragments[0].AsSpan(14 + 40 + 4));
        var inner = new List<byte>();
        int expectedOffset = 0;
        foreach (byte[] fragment in fragments)
        {
            Assert.That(fragment[14 + 6], Is.EqualTo(Ipv6NextHeader.Fragment));
            Span<byte> header = fragment.AsSpan(14 + 40, 8);
            Assert.That(header[0], Is.EqualTo(Ipv6NextHeader.Ipv4));
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(header[4..]), Is.EqualTo(id), "one identification");
            ushort offsetAndFlag = BinaryPrimitives.ReadUInt16BigEndian(header[2..]);
            Assert.That(offsetAndFlag & 0xFFF8, Is.EqualTo(expectedOffset));
            Assert.That((offsetAndFlag & 1) == 1, Is.EqualTo(fragment == fragments[0]), "M on the first only");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(fragment.AsSpan(14 + 4)), Is.EqualTo(fragment.Length - 14 - 40), "payload length");
            byte[] part = fragment[(14 + 48)..];
            inner.AddRange(part);
            expectedOffset += part.Length;
        }
        byte[] reassembled = [.. inner];
        Assert.That(reassembled[8], Is.EqualTo(63), "TTL decremented");
        reassembled[8] = 64;
        var ip = new IPv4Packet(new PacketDotNet.Utils.ByteArraySegment(reassembled));
        Assert.That(reassembled.AsSpan(12).ToArray(), Is.EqualTo(sent.AsSpan(14 + 12).ToArray()), "the inner packet, whole, after reassembly");
        Assert.That(ip.TotalLength, Is.EqualTo(sent.Length - 14));
    }

    [Test]
    public void A_partial_checksum_is_finished_before_the_packet_is_tunnelled()
    {
        EngineHarness lab = Lab(Vip, TunnelServer6);
        byte[] syn = Tcp(40000, payload: [1, 2, 3]);
        int tcpLength = syn.Length - 54;
        BinaryPrimitives.WriteUInt16BigEndian(syn.AsSpan(54 + TcpHeader.ChecksumOffset),
            Checksum.Fold(Ipv6Checksum.PseudoHeader(V6(Client), V6(Vip), IpProtocol.Tcp, tcpLength)));
        EngineHarness.Outcome outcome = lab.ProcessBuffer(syn, flags: FrameFlags.ChecksumPartial);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.Forwarded));
        Assert.That(outcome.Flags & FrameFlags.ChecksumPartial, Is.EqualTo(FrameFlags.None));
        Assert.That(Ipv6Checksum.Valid(V6(Client), V6(Vip), IpProtocol.Tcp, outcome.Frame.AsSpan(14 + 40 + 40)), Is.True);
    }

    [Test]
    public void The_prefetch_tells_the_receive_path_that_an_ipv6_flow_may_be_tunnelled()
    {
        // A super-frame for a tunnel server must be cut before the engine (an encapsulated one cannot be handed to the
        // kernel to segment): the receive path learns it from the prefetch's hint, for IPv6 as for IPv4.
        Assert.That(Lab(Vip, TunnelServer6).Engine.Prefetch(Tcp(40000)).MayBeTunnelled, Is.True, "IPv6 in IPv6");
        Assert.That(Lab(Vip, TunnelServer4).Engine.Prefetch(Tcp(40000)).MayBeTunnelled, Is.True, "IPv6 in IPv4");
        Assert.That(Lab(Frames.Vip, TunnelServer6).Engine.Prefetch(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true)).MayBeTunnelled, Is.True,
            "IPv4 in IPv6");
        var direct = new EngineHarness(new RuleSetSpec([new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Rs1), 80, ForwardingMethod.Route, 1)],
        }]));
        Assert.That(direct.Engine.Prefetch(Tcp(40000)).MayBeTunnelled, Is.False, "direct routing only");
        Assert.That(Lab(Vip, TunnelServer6).Engine.Prefetch(Tcp(40000, destination: "2001:2::200")).MayBeTunnelled, Is.False, "no such service");
    }

    [Test]
    public void A_receive_path_without_segment_sizes_cuts_for_the_outer_header_of_the_servers_family()
    {
        // libpcap does not know a super-frame's segment size: it cuts to what every tunnel server's path takes inside.
        Assert.That(Lab(Vip, TunnelServer6, mtu: 1400).Engine.Snapshot.SmallestTunnelPayloadMtu, Is.EqualTo(1360), "1400 less 40 of IPv6");
        Assert.That(Lab(Vip, TunnelServer4, mtu: 1400).Engine.Snapshot.SmallestTunnelPayloadMtu, Is.EqualTo(1380), "1400 less 20 of IPv4");
    }
}
