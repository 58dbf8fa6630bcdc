using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

using static UserspaceDr.Tests.Forwarding.Frames6;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// Direct routing over IPv6 (ip_vs_dr_xmit_v6) and the IPv6 side of the engine: every frame built and every emitted frame
/// decoded by PacketDotNet, so that what udr writes is checked by a decoder that is not udr's.
/// </summary>
public class Ipv6DirectRoutingTests
{
    private static RealServerSpec Server(string address, int weight = 1, ForwardingMethod method = ForwardingMethod.Route) =>
        new(InetAddress.Parse(address), 80, method, weight);

    private static VirtualServiceSpec Service(string scheduler = "rr", ServiceProtocol protocol = ServiceProtocol.Tcp, ushort port = 80,
        int persistence = 0, uint prefix = 128, params RealServerSpec[] servers) =>
        new(protocol, InetAddress.Parse(Vip), port, scheduler, PersistenceTimeout: persistence, PersistenceNetmask: prefix)
        {
            RealServers = [.. servers.Select(s => s with { Port = port })],
        };

    /// <summary>An engine with <paramref name="services"/>, the two IPv6 servers resolved (RS2's path MTU <paramref name="rs2Mtu"/>) and the IPv4 lab's.</summary>
    private static EngineHarness Lab(EngineOptions? options = null, int rs2Mtu = 1500, params VirtualServiceSpec[] services)
    {
        var lab = new EngineHarness(new RuleSetSpec([.. services]), options: options);
        lab.Neighbors = new NeighborTable(lab.Neighbors.Hops, new Dictionary<UInt128, NextHop>
        {
            [V6(Rs1)] = new NextHop(Frames.UdrMac(Frames.Rs1Mac)),
            [V6(Rs2)] = new NextHop(Frames.UdrMac(Frames.Rs2Mac), Mtu: rs2Mtu),
        });
        return lab;
    }


    private static (EthernetPacket Ethernet, IPv6Packet Ip) Decode(ReadOnlySpan<byte> frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame.ToArray());
        return (ethernet, (IPv6Packet)ethernet.PayloadPacket);
    }

    /// <summary>The ICMPv6 message of a reply, its checksum verified over the IPv6 pseudo-header.</summary>
    private static (IPv6Packet Ip, byte[] Icmp) DecodeIcmpv6(byte[] reply)
    {
        (EthernetPacket _, IPv6Packet ip) = Decode(reply);
        Assert.That(ip.Protocol, Is.EqualTo(PacketDotNet.ProtocolType.IcmpV6));
        byte[] icmp = reply.AsSpan(EthernetFrame.HeaderLength + Ipv6Header.Length, ip.PayloadLength).ToArray();
        Assert.That(Ipv6Checksum.Valid(InetAddress.FromIPAddress(ip.SourceAddress).IPv6, InetAddress.FromIPAddress(ip.DestinationAddress).IPv6,
            Ipv6NextHeader.Icmpv6, icmp), Is.True, "ICMPv6 checksum");
        return (ip, icmp);
    }

    [Test]
    public void A_SYN_goes_to_the_server_MAC_with_the_hop_limit_decremented_and_nothing_else_changed()
    {
        EngineHarness lab = Lab(services: Service(servers: [Server(Rs1)]));
        byte[] frame = Tcp(40000, payload: [1, 2, 3]);
        byte[] original = [.. frame];
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));

        (EthernetPacket ethernet, IPv6Packet ip) = Decode(frame);
        var tcp = (TcpPacket)ip.PayloadPacket;
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
            Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
            Assert.That(ip.HopLimit, Is.EqualTo(63));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Client)));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Vip)), "DR never rewrites addresses");
            Assert.That(tcp.ValidChecksum, Is.True);
            Assert.That(frame.AsSpan(14, 7).ToArray(), Is.EqualTo(original.AsSpan(14, 7).ToArray()), "version, class, flow label, length, next header");
            Assert.That(frame.AsSpan(22).ToArray(), Is.EqualTo(original.AsSpan(22).ToArray()), "addresses and payload");
            Assert.That(lab.Engine.Ipv6Connections!.Count, Is.EqualTo(1));
            Assert.That(lab.Engine.Connections.Count, Is.Zero, "the IPv4 table is another table");
        });
        // The rest of the flow follows its entry.
        byte[] next = Tcp(40000, syn: false, ack: true);
        Assert.That(lab.Process(next), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Decode(next).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
    }

    [Test]
    public void Weights_split_new_IPv6_connections_as_for_IPv4()
    {
        EngineHarness lab = Lab(services: Service("wrr", servers: [Server(Rs1, 3), Server(Rs2, 1)]));
        int rs1 = 0, rs2 = 0;
        for (ushort port = 1000; port < 1400; port++)
        {
            byte[] frame = Tcp(port);
            Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));
            if (Decode(frame).Ethernet.DestinationHardwareAddress.Equals(Frames.Rs1Mac)) { rs1++; } else { rs2++; }
        }
        Assert.That((rs1, rs2), Is.EqualTo((300, 100)));
    }

    [Test]
    public void Source_hashing_folds_the_client_address_as_IPVS_does()
    {
        // ip_vs_sh_hashkey hashes ntohl(a[0]^a[1]^a[2]^a[3]) for IPv6: a client whose fold equals an IPv4 client's address
        // lands where that IPv4 client lands, in a service with the same servers in the same order.
        var servers = Enumerable.Range(1, 8).Select(i => $"2001:2::{i:x}").ToArray();
        var v6 = new RealServer[8];
        var v4 = new RealServer[8];
        for (int i = 0; i < 8; i++)
        {
            v6[i] = new RealServer(InetAddress.Parse(servers[i]), 80, ForwardingMethod.Route, 1);
            v4[i] = new RealServer(InetAddress.Parse($"198.18.0.{i + 1}"), 80, ForwardingMethod.Route, 1);
        }
        var sh6 = new Core.Scheduling.SourceHashingScheduler([.. v6], SchedulerFlags.None);
        var sh4 = new Core.Scheduling.SourceHashingScheduler([.. v4], SchedulerFlags.None);
        for (uint i = 0; i < 200; i++)
        {
            InetAddress client = InetAddress.FromIPv6(new UInt128(0x2001_0002_0000_0000, 0xC612_0000_0000_0000 | i * 7919));
            uint fold = client.Fold();
            RealServer? picked6 = sh6.Pick(new Core.Scheduling.SchedulingKey(AddressBits.Fold(client.IPv6), 40000, 0, 80));
            RealServer? picked4 = sh4.Pick(new Core.Scheduling.SchedulingKey(fold, 40000, 0, 80));
            Assert.That(Array.IndexOf(v6, picked6), Is.EqualTo(Array.IndexOf(v4, picked4)));
        }
    }

    [Test]
    public void Persistence_keys_the_template_on_the_client_prefix()
    {
        EngineHarness lab = Lab(services: Service("rr", persistence: 300, prefix: 64, servers: [Server(Rs1), Server(Rs2)]));
        Assert.That(lab.Process(Tcp(1000)), Is.EqualTo(FrameReason.Forwarded));
        List<Connection<UInt128>> entries = lab.Engine.Ipv6Connections!.Snapshot();
        Connection<UInt128> template = entries.Single(e => e.IsTemplate);
        Assert.That(template.ClientAddress, Is.EqualTo(V6("2001:2::")), "2001:2::1 cut to /64");
        // Every later connection from the /64 goes to the same server.
        for (ushort port = 1001; port < 1010; port++)
            Assert.That(lab.Process(Tcp(port)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Engine.Ipv6Connections.Snapshot().Where(e => !e.IsTemplate).Select(e => e.Dest).Distinct().Count(), Is.EqualTo(1));
    }

    [Test]
    public void Hop_limit_1_is_answered_with_time_exceeded_from_the_VIP()
    {
        EngineHarness lab = Lab(services: Service(servers: [Server(Rs1)]));
        byte[] frame = Tcp(40000, hopLimit: 1);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.IcmpTimeExceeded));
        (IPv6Packet ip, byte[] icmp) = DecodeIcmpv6(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        Assert.Multiple(() =>
        {
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Client)));
            Assert.That((icmp[0], icmp[1]), Is.EqualTo((Icmpv6Type.TimeExceeded, (byte)0)));
            Assert.That(icmp.AsSpan(8).ToArray(), Is.EqualTo(frame.AsSpan(14).ToArray()), "the whole offending packet quoted");
        });
    }

    [Test]
    public void A_packet_too_big_for_the_server_link_gets_packet_too_big_with_the_MTU()
    {
        EngineHarness lab = Lab(rs2Mtu: 1280, services: Service(servers: [Server(Rs2)]));
        byte[] frame = Tcp(40000, payload: new byte[1400]);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Icmpv6PacketTooBig));
        (IPv6Packet ip, byte[] icmp) = DecodeIcmpv6(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        Assert.Multiple(() =>
        {
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That((icmp[0], icmp[1]), Is.EqualTo((Icmpv6Type.PacketTooBig, (byte)0)));
            Assert.That(BinaryPrimitives.ReadUInt32BigEndian(icmp.AsSpan(4)), Is.EqualTo(1280u));
            Assert.That(40 + icmp.Length, Is.EqualTo(1280), "as much of the packet as fits in the minimum MTU");
        });
        // A GSO super-frame is the kernel's to segment: it goes out whole.
        Assert.That(lab.Process(Tcp(40000, payload: new byte[1400]), flags: FrameFlags.Gso), Is.EqualTo(FrameReason.Forwarded));
    }

    [Test]
    public void No_server_is_port_unreachable_from_the_VIP_even_for_TCP()
    {
        EngineHarness lab = Lab(services: Service(servers: [Server(Rs1, weight: 0)]));
        Assert.That(lab.Process(Tcp(40000)), Is.EqualTo(FrameReason.IcmpPortUnreachable));
        (IPv6Packet ip, byte[] icmp) = DecodeIcmpv6(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
        Assert.That((icmp[0], icmp[1]), Is.EqualTo((Icmpv6Type.DestinationUnreachable, Icmpv6Type.CodePortUnreachable)));
    }

    [Test]
    public void Extension_headers_are_walked_to_the_transport_header()
    {
        EngineHarness lab = Lab(services: Service(servers: [Server(Rs1)]));
        byte[] plain = Tcp(40000);
        // Insert an 8-byte Destination Options header (PadN) between the fixed header and TCP.
        byte[] options = [Ipv6NextHeader.Tcp, 0, 1, 4, 0, 0, 0, 0];
        byte[] frame = [.. plain[..54], .. options, .. plain[54..]];
        frame[14 + 6] = Ipv6NextHeader.DestinationOptions;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(18)) + 8));
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(frame[14 + 7], Is.EqualTo(63));

        frame = [.. plain[..54], .. options, .. plain[54..]]; // the forwarded copy carries the server's MAC now
        frame[14 + 6] = Ipv6NextHeader.DestinationOptions;
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(18)) + 8));
        byte[] truncated = [.. frame[..58]];
        BinaryPrimitives.WriteUInt16BigEndian(truncated.AsSpan(18), 4);
        Assert.That(lab.Process(truncated), Is.EqualTo(FrameReason.Ipv6ExtensionHeadersTruncated));
        byte[] lying = [.. frame];
        BinaryPrimitives.WriteUInt16BigEndian(lying.AsSpan(18), 2000);
        Assert.That(lab.Process(lying), Is.EqualTo(FrameReason.Ipv6PayloadLengthInvalid));
    }

    [Test]
    public void Later_fragments_follow_their_first_fragment_and_are_never_scheduled_alone()
    {
        EngineHarness lab = Lab(services: Service("rr", ServiceProtocol.Udp, 53, servers: [Server(Rs1), Server(Rs2)]));
        byte[] datagram = Udp(5000, [.. Enumerable.Range(0, 64).Select(i => (byte)i)]);
        byte[] first = Fragment(datagram, first: true, id: 77);
        byte[] later = Fragment(datagram, first: false, id: 77);
        Assert.That(lab.Process(later), Is.EqualTo(FrameReason.FragmentWithoutFirst), "no first fragment seen yet");
        Assert.That(lab.Process(first), Is.EqualTo(FrameReason.Forwarded));
        PhysicalAddressOf(first, out var firstMac);
        Assert.That(lab.Process(later), Is.EqualTo(FrameReason.ForwardedFragment));
        PhysicalAddressOf(later, out var laterMac);
        Assert.That(laterMac, Is.EqualTo(firstMac));
        Assert.That(lab.Process(Fragment(datagram, first: false, id: 78)), Is.EqualTo(FrameReason.FragmentWithoutFirst), "another datagram");
    }

    private static void PhysicalAddressOf(byte[] frame, out string mac) => mac = Convert.ToHexString(frame.AsSpan(0, 6));

    [Test]
    public void A_neighbor_solicitation_for_a_VIP_is_answered_with_a_solicited_override_advertisement()
    {
        EngineHarness lab = Lab(new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), AnswerArpForVirtualAddresses = true },
            services: Service(servers: [Server(Rs1)]));
        Assert.That(lab.Process(NeighborSolicitation(Vip)), Is.EqualTo(FrameReason.NeighborAdvertisement));
        (EthernetPacket ethernet, IPv6Packet _) = Decode(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        (IPv6Packet ip, byte[] icmp) = DecodeIcmpv6(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Client)));
            Assert.That(ip.HopLimit, Is.EqualTo(255));
            Assert.That(icmp[0], Is.EqualTo(Icmpv6Type.NeighborAdvertisement));
            Assert.That(icmp[4], Is.EqualTo(0x60), "solicited and override, not router");
            Assert.That(new IPAddress(icmp.AsSpan(8, 16)), Is.EqualTo(IPAddress.Parse(Vip)));
            Assert.That((icmp[24], icmp[25]), Is.EqualTo((Ndp.TargetLinkLayerOption, (byte)1)));
            Assert.That(Convert.ToHexString(icmp.AsSpan(26, 6)), Is.EqualTo("020000000002"));
        });

        // A duplicate-address probe (from ::) is answered to all nodes, without the solicited flag.
        Assert.That(lab.Process(NeighborSolicitation(Vip, source: "::")), Is.EqualTo(FrameReason.NeighborAdvertisement));
        (IPv6Packet dadIp, byte[] dadIcmp) = DecodeIcmpv6(lab.Reply.AsSpan(0, lab.ReplyLength).ToArray());
        Assert.That(dadIp.DestinationAddress, Is.EqualTo(IPAddress.Parse("ff02::1")));
        Assert.That(dadIcmp[4], Is.EqualTo(0x20));
    }

    [Test]
    public void Neighbor_solicitations_that_fail_RFC_4861_checks_are_dropped_and_others_are_the_kernels()
    {
        EngineHarness lab = Lab(new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), AnswerArpForVirtualAddresses = true },
            services: Service(servers: [Server(Rs1)]));
        Assert.Multiple(() =>
        {
            Assert.That(lab.Process(NeighborSolicitation(Vip, hopLimit: 254)), Is.EqualTo(FrameReason.NdpHopLimitInvalid));
            Assert.That(lab.Process(NeighborSolicitation(Vip, corrupt: true)), Is.EqualTo(FrameReason.NdpMalformed));
            // Found by the fuzz test: a solicitation cut to its type byte once read past its end.
            byte[] stub = NeighborSolicitation(Vip)[..(14 + 40 + 1)];
            BinaryPrimitives.WriteUInt16BigEndian(stub.AsSpan(18), 1);
            Assert.That(lab.Process(stub), Is.EqualTo(FrameReason.NdpMalformed));
            Assert.That(lab.Process(NeighborSolicitation("2001:2::2")), Is.EqualTo(FrameReason.NeighborSolicitationNotForVirtualAddress));
        });
        EngineHarness quiet = Lab(services: Service(servers: [Server(Rs1)]));
        Assert.That(quiet.Process(NeighborSolicitation(Vip)), Is.EqualTo(FrameReason.NeighborSolicitationNotForVirtualAddress),
            "without --answer-arp the kernel answers for the VIP");
    }

    [Test]
    public void One_engine_serves_an_IPv4_VIP_and_an_IPv6_VIP_at_once()
    {
        VirtualServiceSpec v4 = EngineHarness.Service(servers: (Frames.Rs1, 1));
        EngineHarness lab = Lab(services: [v4, Service(servers: [Server(Rs2)])]);
        byte[] frame4 = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        byte[] frame6 = Tcp(40000);
        Assert.That(lab.Process(frame4), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(frame6), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(Frames.Decode(frame4).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs1Mac));
        Assert.That(Decode(frame6).Ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs2Mac));
        Assert.That((lab.Engine.Connections.Count, lab.Engine.Ipv6Connections!.Count), Is.EqualTo((1, 1)));
    }

    [Test]
    public void A_server_without_a_resolved_neighbour_is_not_sent_to()
    {
        EngineHarness unresolved = Lab(services: Service(servers: [Server("2001:2::99")]));
        Assert.That(unresolved.Process(Tcp(40000)), Is.EqualTo(FrameReason.NeighborUnresolved));
    }

    [Test]
    public void Traffic_for_other_addresses_and_spoofed_VIP_sources_is_not_scheduled()
    {
        EngineHarness lab = Lab(services: Service(servers: [Server(Rs1)]));
        Assert.That(lab.Process(Tcp(40000, destination: "2001:2::200")), Is.EqualTo(FrameReason.NotForVirtualAddress));
        var tcp = new TcpPacket(40000, 80) { Synchronize = true };
        IPv6Packet ip = Ip(Vip, Vip, tcp);
        tcp.UpdateTcpChecksum();
        Assert.That(lab.Process(Frame(ip)), Is.EqualTo(FrameReason.SourceIsVirtualAddress));
        Assert.That(lab.Engine.Ipv6Connections!.Count, Is.Zero, "nothing scheduled");
        var ipv4Only = new EngineHarness(EngineHarness.Service("rr", servers: [(Frames.Rs1, 1)]));
        Assert.That(ipv4Only.Process(Tcp(40000)), Is.EqualTo(FrameReason.NotForVirtualAddress));
        Assert.That(ipv4Only.Engine.Ipv6Connections, Is.Null, "no IPv6 table without an IPv6 service");
    }
}
