using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

public class NatTests
{
    private const string NatServer = "198.18.1.13";
    private static readonly System.Net.NetworkInformation.PhysicalAddress NatServerMac = Frames.Mac("02:00:00:00:01:13");

    private static EngineHarness Lab(params RealServerSpec[] servers)
    {
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 80, "rr") { RealServers = [.. servers] };
        var udp = new VirtualServiceSpec(ServiceProtocol.Udp, InetAddress.Parse(Frames.Vip), 53, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(NatServer), 5353, ForwardingMethod.Masquerade)],
        };
        var lab = new EngineHarness(new RuleSetSpec([service, udp]));
        lab.Neighbors = lab.Neighbors.With(Ipv4Address.Parse(NatServer), Frames.UdrMac(NatServerMac));
        return lab;
    }

    private static RealServerSpec Nat => new(InetAddress.Parse(NatServer), 8080, ForwardingMethod.Masquerade);

    private static byte[] ReplyFromServer(bool syn = false, bool ack = true, bool fin = false, byte[]? payload = null)
    {
        byte[] frame = Frames.Tcp(NatServer, 8080, Frames.Client, 40000, syn: syn, ack: ack, fin: fin, payload: payload);
        NatServerMac.GetAddressBytes().CopyTo(frame, 6);
        Frames.BalancerMac.GetAddressBytes().CopyTo(frame, 0);
        return frame;
    }

    [Test]
    public void Inbound_is_rewritten_to_the_real_server_with_valid_checksums()
    {
        var lab = Lab(Nat);
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: [1, 2, 3]);
        Assert.That(lab.Process(syn), Is.EqualTo(FrameReason.Forwarded));
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(syn);
        var tcp = ip.Extract<TcpPacket>();
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(NatServerMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(NatServer)));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(tcp.DestinationPort, Is.EqualTo(8080));
        Assert.That(tcp.SourcePort, Is.EqualTo(40000));
        Assert.That(ip.TimeToLive, Is.EqualTo(63));
        Assert.That(ip.ValidIPChecksum, Is.True);
        Assert.That(tcp.ValidTcpChecksum, Is.True);
        Assert.That(tcp.PayloadData, Is.EqualTo(new byte[] { 1, 2, 3 }));
    }

    [Test]
    public void Replies_are_rewritten_to_the_vip_and_sent_to_the_client_mac()
    {
        var lab = Lab(Nat);
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true));
        byte[] synAck = ReplyFromServer(syn: true, ack: true, payload: [9, 8, 7]);
        Assert.That(lab.Process(synAck), Is.EqualTo(FrameReason.ForwardedReply));
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(synAck);
        var tcp = ip.Extract<TcpPacket>();
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
        Assert.That((ip.SourceAddress, (int)tcp.SourcePort), Is.EqualTo((IPAddress.Parse(Frames.Vip), 80)), "the client only ever sees VIP:vport");
        Assert.That((ip.DestinationAddress, (int)tcp.DestinationPort), Is.EqualTo((IPAddress.Parse(Frames.Client), 40000)));
        Assert.That(ip.ValidIPChecksum && tcp.ValidTcpChecksum, Is.True);
        Assert.That(tcp.PayloadData, Is.EqualTo(new byte[] { 9, 8, 7 }));

        RealServer server = lab.Server(NatServer);
        Assert.That(lab.Engine.Counters.Read(server).OutPackets, Is.EqualTo(1), "OutPkts count NAT replies");
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true));
        Assert.That(lab.Engine.Connections.Snapshot().Single().State, Is.EqualTo(Core.Connections.TcpState.Established),
            "INPUT syn: SR; OUTPUT syn+ack: SR; INPUT ack: ES");
        Assert.That(server.ActiveConnections, Is.EqualTo(1));
    }

    [Test]
    public void Replies_without_a_connection_are_not_udrs()
    {
        var lab = Lab(Nat);
        Assert.That(lab.Process(ReplyFromServer()), Is.EqualTo(FrameReason.NotForVirtualAddress));
    }

    [Test]
    public void The_reply_link_goes_with_its_connection()
    {
        var lab = Lab(Nat);
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true), nowMs: 0);
        Assert.That(lab.Engine.Connections.Count, Is.EqualTo(2), "the connection and its reply link");
        Assert.That(lab.Engine.ExpireConnections(61_000, budget: 1 << 20), Is.EqualTo(1), "SYN_RECV times out after 60 s");
        Assert.That(lab.Engine.Connections.Count, Is.Zero);
        Assert.That(lab.Process(ReplyFromServer(), nowMs: 61_001), Is.EqualTo(FrameReason.NotForVirtualAddress));
    }

    [Test]
    public void A_partial_checksum_keeps_its_pseudo_header_seed_in_step()
    {
        var lab = Lab(Nat);
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: new byte[50]);
        // What an offloading sender leaves: the folded pseudo-header sum, to be completed by the kernel on transmit.
        SetSeed(syn);
        Assert.That(lab.Process(syn, flags: FrameFlags.ChecksumPartial), Is.EqualTo(FrameReason.Forwarded));
        var ip = new Ipv4Header(syn.AsSpan(14));
        Assert.That(TransportChecksum.HoldsOnlyPseudoHeaderSeed(ip, syn.AsSpan(34, ip.TotalLength - 20)), Is.True,
            "the seed now covers RIP, so the kernel's completion gives a valid checksum");
        TransportChecksum.Finish(ip, syn.AsSpan(34, ip.TotalLength - 20));
        Assert.That(Frames.Decode(syn).Ip.Extract<TcpPacket>().ValidTcpChecksum, Is.True);
    }

    private static void SetSeed(byte[] frame)
    {
        var ip = new Ipv4Header(frame.AsSpan(14));
        ushort seed = Checksum.Fold(Checksum.PseudoHeader(ip.Source, ip.Destination, ip.Protocol, ip.TotalLength - 20));
        frame[34 + 16] = (byte)(seed >> 8);
        frame[34 + 17] = (byte)seed;
    }

    [Test]
    public void Udp_without_a_checksum_stays_without_one_and_ports_map()
    {
        var lab = Lab(Nat);
        byte[] query = Frames.Udp(Frames.Client, 5000, Frames.Vip, 53, [1, 2, 3, 4]);
        query[34 + 6] = 0;
        query[34 + 7] = 0;
        Assert.That(lab.Process(query), Is.EqualTo(FrameReason.Forwarded));
        var udp = Frames.Decode(query).Ip.Extract<UdpPacket>();
        Assert.That((int)udp.DestinationPort, Is.EqualTo(5353));
        Assert.That(udp.Checksum, Is.Zero);
    }

    [Test]
    public void One_service_mixes_direct_routing_and_nat_servers()
    {
        var lab = Lab(Nat, new RealServerSpec(InetAddress.Parse(Frames.Rs1), 80, ForwardingMethod.Route));
        var destinations = new List<IPAddress>();
        for (ushort port = 41000; port < 41004; port++)
        {
            byte[] syn = Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true);
            Assert.That(lab.Process(syn), Is.EqualTo(FrameReason.Forwarded));
            destinations.Add(Frames.Decode(syn).Ip.DestinationAddress);
        }
        // rr over [rs1 (newest), nat]: DR keeps the VIP as destination, NAT rewrites it.
        Assert.That(destinations.Select(d => d.ToString()), Is.EqualTo(new[] { Frames.Vip, NatServer, Frames.Vip, NatServer }));
    }

    [Test]
    public void A_fragmented_reply_follows_its_first_fragment_to_the_client_from_the_vip()
    {
        var lab = Lab(Nat);
        Assert.That(lab.Process(Frames.Udp(Frames.Client, 40000, Frames.Vip, 53, [1])), Is.EqualTo(FrameReason.Forwarded));

        // A 3000-byte UDP answer from the server, fragmented as its kernel would: 1480 + 1480 + 48 bytes of IP payload.
        byte[] payload = [.. Enumerable.Range(0, 3000).Select(i => (byte)i)];
        byte[] whole = Frames.Udp(NatServer, 5353, Frames.Client, 40000, payload);
        byte[] datagram = whole[14..];
        const ushort Id = 0x4242;
        var fragments = new List<byte[]>();
        for (int offset = 0; offset < datagram.Length - 20; offset += 1480)
        {
            int length = Math.Min(1480, datagram.Length - 20 - offset);
            bool more = offset + length < datagram.Length - 20;
            var ip = new IPv4Packet(IPAddress.Parse(NatServer), IPAddress.Parse(Frames.Client))
            {
                Protocol = PacketDotNet.ProtocolType.Udp, TimeToLive = 64, Id = Id,
                FragmentOffset = offset / 8, FragmentFlags = (byte)(more ? 1 : 0),
                PayloadData = datagram.AsSpan(20 + offset, length).ToArray(),
            };
            var ethernet = new EthernetPacket(NatServerMac, Frames.BalancerMac, EthernetType.IPv4) { PayloadPacket = ip };
            fragments.Add(WithHeaderChecksum(ethernet.Bytes));
        }
        Assert.That(fragments, Has.Count.EqualTo(3));
        byte[] stray = fragments[1].ToArray();
        stray[14 + 5] ^= 0x01; // another datagram's ID; its header checksum no longer matters, the ID is looked up first
        Assert.That(lab.Process(fragments[0]), Is.EqualTo(FrameReason.ForwardedReply));
        Assert.That(lab.Process(fragments[1]), Is.EqualTo(FrameReason.ForwardedFragment));
        Assert.That(lab.Process(fragments[2]), Is.EqualTo(FrameReason.ForwardedFragment));

        // Reassembled at the client: VIP:53 → client:40000, the whole payload, a valid UDP checksum.
        byte[] reassembled = [.. fragments.SelectMany(f => f[(14 + 20)..])];
        Assert.That(fragments.Select(f => Frames.Decode(f).Ip.SourceAddress.ToString()), Has.All.EqualTo(Frames.Vip));
        Assert.That(fragments.Select(f => Frames.Decode(f).Ip.ValidIPChecksum), Has.All.True);
        Assert.That(fragments.Select(f => Frames.Decode(f).Ethernet.DestinationHardwareAddress), Has.All.EqualTo(Frames.ClientMac));
        byte[] header = fragments[0][14..34];
        header[2] = (byte)((20 + reassembled.Length) >> 8);
        header[3] = (byte)(20 + reassembled.Length);
        header[6] = header[7] = 0; // no longer a fragment
        var whole2 = new IPv4Packet(new PacketDotNet.Utils.ByteArraySegment([.. header, .. reassembled]));
        var udp = whole2.Extract<UdpPacket>();
        Assert.That((int)udp.SourcePort, Is.EqualTo(53));
        Assert.That(udp.PayloadData, Is.EqualTo(payload));
        Assert.That(udp.ValidUdpChecksum, Is.True, "the first fragment's checksum covers the VIP:vport rewrite of the whole datagram");

        // A later fragment of a datagram whose first fragment udr never saw is not udr's.
        Assert.That(lab.Process(stray), Is.EqualTo(FrameReason.NotForVirtualAddress));
    }

    /// <summary>Writes the IPv4 header checksum (RFC 1071, computed here, not by udr) of an untagged frame.</summary>
    private static byte[] WithHeaderChecksum(byte[] frame)
    {
        frame[24] = frame[25] = 0;
        uint sum = 0;
        for (int i = 14; i < 34; i += 2)
        {
            sum += (uint)((frame[i] << 8) | frame[i + 1]);
        }
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        ushort checksum = (ushort)~sum;
        frame[24] = (byte)(checksum >> 8);
        frame[25] = (byte)checksum;
        return frame;
    }
}
