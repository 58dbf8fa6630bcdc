using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

using static UserspaceDr.Tests.Forwarding.Frames6;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// NAT over IPv6 (ip_vs_nat_xmit_v6, the SNAT handlers, ip_vs_nat_icmp_v6) and ICMPv6 errors about tracked connections:
/// every frame built and every emitted frame decoded by PacketDotNet, checksums verified over the IPv6 pseudo-header.
/// </summary>
public class Ipv6NatTests
{
    private const ushort ServerPort = 8080;
    private const string BalancerAddress = "2001:2::2";

    private static EngineHarness Lab(bool withLinkAddress = true, ForwardingMethod method = ForwardingMethod.Masquerade, int clientMtu = 1500,
        ServiceProtocol protocol = ServiceProtocol.Tcp)
    {
        var service = new VirtualServiceSpec(protocol, InetAddress.Parse(Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Rs1), method == ForwardingMethod.Masquerade ? ServerPort : (ushort)80, method, 1)],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links = [new EngineLink(Frames.UdrMac(Frames.BalancerMac), clientMtu, 0, withLinkAddress ? V6(BalancerAddress) : UInt128.Zero)],
        };
        var lab = new EngineHarness(new RuleSetSpec([service]), options: options);
        lab.Neighbors = new NeighborTable(lab.Neighbors.Hops, new Dictionary<UInt128, NextHop> { [V6(Rs1)] = new NextHop(Frames.UdrMac(Frames.Rs1Mac)) });
        return lab;
    }

    private static (EthernetPacket Ethernet, IPv6Packet Ip) Decode(ReadOnlySpan<byte> frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame.ToArray());
        return (ethernet, (IPv6Packet)ethernet.PayloadPacket);
    }

    private static byte[] ServerFrame(IPv6Packet ip) =>
        new EthernetPacket(Frames.Rs1Mac, Frames.BalancerMac, EthernetType.IPv6) { PayloadPacket = ip }.Bytes;

    /// <summary>The server's reply segment RIP:8080 → client:<paramref name="clientPort"/>.</summary>
    private static byte[] ReplyTcp(ushort clientPort, bool syn = true, byte hopLimit = 64, byte[]? payload = null)
    {
        var tcp = new TcpPacket(ServerPort, clientPort) { Synchronize = syn, Acknowledgment = true, WindowSize = 64240, SequenceNumber = 5000, AcknowledgmentNumber = 1001 };
        if (payload is not null)
        {
            tcp.PayloadData = payload;
        }
        IPv6Packet ip = Ip(Rs1, Client, tcp, hopLimit);
        tcp.UpdateTcpChecksum();
        return ServerFrame(ip);
    }

    /// <summary>An ICMPv6 error quoting <paramref name="quotedFrame"/>'s IPv6 packet, from a router (or the NAT server), its checksum right or <paramref name="corrupt"/>.</summary>
    private static byte[] Icmpv6Error(string source, string destination, byte[] quotedFrame, byte type = Icmpv6Type.PacketTooBig, byte code = 0,
        uint parameter = 1400, bool corrupt = false, bool fromServer = false)
    {
        byte[] frame = Frames6.Icmpv6Error(source, destination, type, code, parameter, quotedFrame.AsSpan(14), fromServer ? Frames.Rs1Mac : Frames.ClientMac);
        if (corrupt)
        {
            frame[54 + 2] ^= 0x40;
        }
        return frame;
    }

    private static void AssertIcmpv6ChecksumValid(byte[] frame)
    {
        (EthernetPacket _, IPv6Packet ip) = Decode(frame);
        byte[] icmp = frame.AsSpan(54, ip.PayloadLength).ToArray();
        Assert.That(Ipv6Checksum.Valid(InetAddress.FromIPAddress(ip.SourceAddress).IPv6, InetAddress.FromIPAddress(ip.DestinationAddress).IPv6,
            Ipv6NextHeader.Icmpv6, icmp), Is.True, "ICMPv6 checksum over the new pseudo-header");
    }

    [Test]
    public void A_SYN_is_sent_to_RIP_rport_and_its_reply_leaves_from_VIP_vport_with_valid_checksums()
    {
        EngineHarness lab = Lab();
        byte[] syn = Tcp(40000, payload: [1, 2, 3]);
        Assert.That(lab.Process(syn), Is.EqualTo(FrameReason.Forwarded));
        (EthernetPacket ethernet, IPv6Packet ip) = Decode(syn);
        var tcp = (TcpPacket)ip.PayloadPacket;
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Rs1)));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Client)));
            Assert.That(ip.HopLimit, Is.EqualTo(63));
            Assert.That(tcp.DestinationPort, Is.EqualTo(ServerPort));
            Assert.That(tcp.ValidChecksum, Is.True, "TCP checksum over the IPv6 pseudo-header");
        });

        byte[] synAck = ReplyTcp(40000);
        Assert.That(lab.Process(synAck), Is.EqualTo(FrameReason.ForwardedReply));
        (ethernet, ip) = Decode(synAck);
        tcp = (TcpPacket)ip.PayloadPacket;
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac), "to where the client's frames came from");
            Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Client)));
            Assert.That(ip.HopLimit, Is.EqualTo(63));
            Assert.That(tcp.SourcePort, Is.EqualTo(80));
            Assert.That(tcp.ValidChecksum, Is.True);
        });
        ref Connection<UInt128> entry = ref lab.Engine.Ipv6Connections!.At(lab.Engine.Ipv6Connections.Find(
            new ConnectionKey<UInt128>(IpProtocol.Tcp, V6(Client), 40000, V6(Vip), 80)));
        Assert.That(entry.State, Is.EqualTo(TcpState.SynRecv), "the reply moved the state as IPVS's output table does");
        Assert.That(lab.Engine.Counters.For(entry.Dest!).OutPackets, Is.EqualTo(1));
    }

    [Test]
    public void A_UDP_datagram_without_a_checksum_gets_one_both_ways_as_IPVS_computes_it()
    {
        EngineHarness lab = Lab(protocol: ServiceProtocol.Udp);
        byte[] query = Udp(40000, [1, 2, 3, 4, 5], port: 80);
        query[54 + 6] = 0;
        query[54 + 7] = 0; // no checksum: illegal in IPv6 (RFC 8200 §8.1), and IPVS's NAT computes one
        Assert.That(lab.Process(query), Is.EqualTo(FrameReason.Forwarded));
        var udp = (UdpPacket)Decode(query).Ip.PayloadPacket;
        Assert.That((udp.DestinationPort, udp.Checksum != 0, udp.ValidUdpChecksum), Is.EqualTo(((ushort)ServerPort, true, true)));

        var answer = new UdpPacket(ServerPort, 40000) { PayloadData = [9, 8, 7] };
        byte[] reply = ServerFrame(Ip(Rs1, Client, answer));
        Assert.That(lab.Process(reply), Is.EqualTo(FrameReason.ForwardedReply));
        udp = (UdpPacket)Decode(reply).Ip.PayloadPacket;
        Assert.That((udp.SourcePort, udp.Checksum != 0, udp.ValidUdpChecksum), Is.EqualTo(((ushort)80, true, true)));
    }

    [Test]
    public void A_partial_checksum_keeps_only_the_new_pseudo_header_seed()
    {
        EngineHarness lab = Lab();
        byte[] syn = Tcp(40000);
        ushort Seed(string source, string destination, int length) =>
            Checksum.Fold(Ipv6Checksum.PseudoHeader(V6(source), V6(destination), IpProtocol.Tcp, length));
        int tcpLength = syn.Length - 54;
        BinaryPrimitives.WriteUInt16BigEndian(syn.AsSpan(54 + TcpHeader.ChecksumOffset), Seed(Client, Vip, tcpLength));
        Assert.That(lab.Process(syn, flags: FrameFlags.ChecksumPartial), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(syn.AsSpan(54 + TcpHeader.ChecksumOffset)), Is.EqualTo(Seed(Client, Rs1, tcpLength)));
    }

    [Test]
    public void Replies_nobody_asked_for_are_not_udrs_and_expired_hop_limits_are_answered_from_the_balancer()
    {
        EngineHarness lab = Lab();
        Assert.That(lab.Process(ReplyTcp(40000)), Is.EqualTo(FrameReason.NotForVirtualAddress), "no connection");
        Assert.That(lab.Process(Tcp(40000)), Is.EqualTo(FrameReason.Forwarded));

        byte[] expiring = ReplyTcp(40000, hopLimit: 1);
        Assert.That(lab.Process(expiring), Is.EqualTo(FrameReason.IcmpTimeExceeded));
        byte[] answer = lab.Reply[..lab.ReplyLength];
        (EthernetPacket ethernet, IPv6Packet ip) = Decode(answer);
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(BalancerAddress)), "ip6_forward answers from the balancer's own address");
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Rs1)));
            Assert.That(answer[54], Is.EqualTo(Icmpv6Type.TimeExceeded));
        });
        AssertIcmpv6ChecksumValid(answer);

        EngineHarness noAddress = Lab(withLinkAddress: false);
        Assert.That(noAddress.Process(Tcp(40000)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(noAddress.Process(ReplyTcp(40000, hopLimit: 1)), Is.EqualTo(FrameReason.ReplyTtlExpired));
    }

    [Test]
    public void A_reply_too_big_for_the_client_link_gets_packet_too_big_from_the_balancer()
    {
        EngineHarness lab = Lab(clientMtu: 1280);
        Assert.That(lab.Process(Tcp(40000)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(ReplyTcp(40000, syn: false, payload: new byte[1300])), Is.EqualTo(FrameReason.Icmpv6PacketTooBig));
        byte[] answer = lab.Reply[..lab.ReplyLength];
        Assert.That(Decode(answer).Ip.SourceAddress, Is.EqualTo(IPAddress.Parse(BalancerAddress)));
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(answer.AsSpan(54 + 4)), Is.EqualTo(1280));
        AssertIcmpv6ChecksumValid(answer);
    }

    [Test]
    public void Reply_fragments_follow_the_first_and_only_the_source_changes_in_later_ones()
    {
        EngineHarness lab = Lab(protocol: ServiceProtocol.Udp);
        Assert.That(lab.Process(Udp(40000, [1], port: 80)), Is.EqualTo(FrameReason.Forwarded));
        var answer = new UdpPacket(ServerPort, 40000) { PayloadData = new byte[60] };
        IPv6Packet ip = Ip(Rs1, Client, answer);
        answer.UpdateUdpChecksum();
        byte[] whole = ServerFrame(ip);
        byte[] first = Fragment(whole, first: true, id: 7), later = Fragment(whole, first: false, id: 7);
        Assert.That(lab.Process(later), Is.EqualTo(FrameReason.NotForVirtualAddress), "a later fragment before its first is not known");
        Assert.That(lab.Process(first), Is.EqualTo(FrameReason.ForwardedReply));
        Assert.That(lab.Process(later), Is.EqualTo(FrameReason.ForwardedFragment));
        foreach (byte[] fragment in new[] { first, later })
        {
            (EthernetPacket ethernet, IPv6Packet decoded) = Decode(fragment);
            Assert.That((ethernet.DestinationHardwareAddress, decoded.SourceAddress, decoded.HopLimit),
                Is.EqualTo((Frames.ClientMac, IPAddress.Parse(Vip), 63)));
        }
        // Reassembled, the datagram is the one the server sent, from VIP:80, with a valid checksum.
        byte[] segment = [.. first.AsSpan(62).ToArray(), .. later.AsSpan(62).ToArray()];
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(segment), Is.EqualTo(80));
        Assert.That(Ipv6Checksum.Valid(V6(Vip), V6(Client), IpProtocol.Udp, segment), Is.True);
    }

    [Test]
    public void An_ICMPv6_error_about_a_reply_goes_to_the_NAT_server_translated()
    {
        EngineHarness lab = Lab();
        Assert.That(lab.Process(Tcp(40000)), Is.EqualTo(FrameReason.Forwarded));
        byte[] reply = ReplyTcp(40000, syn: false, payload: new byte[100]);
        Assert.That(lab.Process(reply), Is.EqualTo(FrameReason.ForwardedReply)); // now VIP:80 → client:40000 on the wire
        const string Router = "2001:2::fe";
        byte[] tooBig = Icmpv6Error(Router, Vip, reply);
        Assert.That(lab.Process(tooBig), Is.EqualTo(FrameReason.ForwardedIcmpError));
        (EthernetPacket ethernet, IPv6Packet ip) = Decode(tooBig);
        AssertIcmpv6ChecksumValid(tooBig);
        byte[] quote = tooBig[62..];
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Rs1)));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Router)));
            Assert.That(ip.HopLimit, Is.EqualTo(63));
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(tooBig.AsSpan(58)), Is.EqualTo(1400), "the MTU is left as it is");
            Assert.That(new Ipv6Header(quote).Source, Is.EqualTo(V6(Rs1)), "quoted as the server sent it");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(quote.AsSpan(40)), Is.EqualTo(ServerPort));
            Assert.That(Ipv6Checksum.Valid(V6(Rs1), V6(Client), IpProtocol.Tcp, quote.AsSpan(40)), Is.True, "the whole quoted segment is the server's again");
        });

        byte[] corrupt = Icmpv6Error(Router, Vip, reply, corrupt: true);
        Assert.That(lab.Process(corrupt), Is.EqualTo(FrameReason.IcmpChecksumInvalid));
        byte[] unknown = Icmpv6Error(Router, Vip, ReplyTcp(41000));
        Assert.That(lab.Process(unknown), Is.EqualTo(FrameReason.IcmpErrorNotTracked));
    }

    [Test]
    public void An_ICMPv6_error_about_a_direct_routing_reply_is_relayed_unchanged()
    {
        EngineHarness lab = Lab(method: ForwardingMethod.Route);
        Assert.That(lab.Process(Tcp(40000)), Is.EqualTo(FrameReason.Forwarded));
        var tcp = new TcpPacket(80, 40000) { Acknowledgment = true, PayloadData = new byte[100] };
        IPv6Packet sent = Ip(Vip, Client, tcp);
        tcp.UpdateTcpChecksum();
        byte[] tooBig = Icmpv6Error("2001:2::fe", Vip, Frame(sent));
        byte[] original = [.. tooBig];
        Assert.That(lab.Process(tooBig), Is.EqualTo(FrameReason.ForwardedIcmpError));
        Assert.That(Decode(tooBig).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
        original[14 + 7]--; // the hop limit, and nothing else
        Assert.That(tooBig[14..], Is.EqualTo(original[14..]));

        // Behind a Fragment header, IPVS drops it.
        byte[] fresh = Icmpv6Error("2001:2::fe", Vip, Frame(sent));
        byte[] fragmented = [.. fresh[..54], Ipv6NextHeader.Icmpv6, 0, 0, 0, 0, 0, 0, 9, .. fresh[54..]];
        fragmented[14 + 6] = Ipv6NextHeader.Fragment;
        BinaryPrimitives.WriteUInt16BigEndian(fragmented.AsSpan(18), (ushort)(fragmented.Length - 54));
        Assert.That(lab.Process(fragmented), Is.EqualTo(FrameReason.Icmpv6ErrorFragmented));
    }

    [Test]
    public void An_ICMPv6_error_from_the_NAT_server_reaches_the_client_from_the_VIP()
    {
        EngineHarness lab = Lab(protocol: ServiceProtocol.Udp);
        byte[] query = Udp(40000, [1, 2, 3], port: 80);
        Assert.That(lab.Process(query), Is.EqualTo(FrameReason.Forwarded)); // now client:40000 → RIP:8080
        byte[] unreachable = Icmpv6Error(Rs1, Client, query, Icmpv6Type.DestinationUnreachable, Icmpv6Type.CodePortUnreachable, 0, fromServer: true);
        Assert.That(lab.Process(unreachable), Is.EqualTo(FrameReason.ForwardedReplyIcmpError));
        (EthernetPacket ethernet, IPv6Packet ip) = Decode(unreachable);
        AssertIcmpv6ChecksumValid(unreachable);
        byte[] quote = unreachable[62..];
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That(ip.HopLimit, Is.EqualTo(63));
            Assert.That(new Ipv6Header(quote).Destination, Is.EqualTo(V6(Vip)), "about the packet the client sent");
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(quote.AsSpan(42)), Is.EqualTo(80));
            Assert.That(Ipv6Checksum.Valid(V6(Client), V6(Vip), IpProtocol.Udp, quote.AsSpan(40)), Is.True);
        });

        byte[] corrupt = Icmpv6Error(Rs1, Client, query, Icmpv6Type.DestinationUnreachable, 4, 0, corrupt: true, fromServer: true);
        Assert.That(lab.Process(corrupt), Is.EqualTo(FrameReason.IcmpChecksumInvalid));
        byte[] otherClient = Icmpv6Error(Rs1, "2001:2::77", query, Icmpv6Type.DestinationUnreachable, 4, 0, fromServer: true);
        Assert.That(lab.Process(otherClient), Is.EqualTo(FrameReason.NotForVirtualAddress), "not about a packet of the client it goes to");
    }
}
