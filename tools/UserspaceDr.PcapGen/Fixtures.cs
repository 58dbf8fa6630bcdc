using System.Buffers.Binary;
using System.Net;
using System.Text;
using PacketDotNet;
using PacketDotNet.Utils;

namespace UserspaceDr.PcapGen;

/// <summary>The fixture scripts. Each one is a small, fixed scenario; see pcaps/README.md for the list.</summary>
internal static partial class Fixtures
{
    public static IReadOnlyList<Fixture> All() =>
    [
        DrTcp(), DrUdp(), DrUdpTimeout(), DrWrrDistribution(), DrVlan(), DrIpOptions(), DrFragments(), DrTtl(), DrNoServer(),
        DrChecksumPartial(), DrMalformed(), NotForUs(), Arp(), Dr6(), Ndp6(),
    ];

    private static ServiceModel TwoServers(Fixture fixture, Protocol protocol, int port) =>
        fixture.Director.Service(protocol, port, new RoundRobinModel()).Add(Lab.Rs1, 1).Add(Lab.Rs2, 1);

    private static byte[] Http(string path) => Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: 198.18.0.100\r\nUser-Agent: udr-fixture\r\n\r\n");

    private static Fixture DrTcp()
    {
        var f = new Fixture("dr-tcp", "TCP connections through direct routing",
            "Three interleaved TCP connections to an rr service (handshake, request, a 1400-byte segment, FIN, RST), " +
            "then port reuse. Every segment of a connection goes to the server its SYN was scheduled to; each output frame differs " +
            "from its input only in the MACs, TTL - 1 and the IP checksum.");
        f.Notes.Add("rr over [rs2, rs1] (newest first): the SYNs go rs2, rs1, rs2.");
        f.Notes.Add("An ACK with no connection is not scheduled (IPVS schedules only on SYN): no output, `tcp-not-syn`.");
        f.Notes.Add("An ICMP fragmentation-needed about the VIP's reply to a tracked client goes to that connection's server (ip_vs_in_icmp); one about an unknown flow is left to the kernel.");
        f.Notes.Add("conn_reuse_mode 1: a SYN on a port whose connection is in TIME_WAIT (here: FIN in SYN_RECV) or CLOSE (RST) is scheduled afresh (rr moves both to the other server); one on a FIN_WAIT connection (DR's usual end: INPUT_ONLY never reaches TIME_WAIT from ESTABLISHED) keeps its server.");
        TwoServers(f, Protocol.Tcp, 80);
        var rng = new SplitMix64(0x7C9);
        var c1 = new TcpFlow(Lab.Client, 40001, 80, rng.NextUInt32(), rng.NextUInt32());
        var c2 = new TcpFlow(Lab.Client, 40002, 80, rng.NextUInt32(), rng.NextUInt32());
        var c3 = new TcpFlow(Lab.Client, 40003, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(c1.Frame(TcpFlagSet.SynOnly), $"c1 SYN {c1.Name}");
        f.Service(c2.Frame(TcpFlagSet.SynOnly), $"c2 SYN {c2.Name}");
        f.Service(c1.Frame(TcpFlagSet.AckOnly), "c1 ACK");
        f.Service(c2.Frame(TcpFlagSet.AckOnly), "c2 ACK");
        f.Service(c3.Frame(TcpFlagSet.SynOnly), $"c3 SYN {c3.Name}");
        f.Service(c1.Frame(TcpFlagSet.PshAck, Http("/one")), "c1 PSH/ACK request");
        f.Service(c2.Frame(TcpFlagSet.PshAck, Http("/two")), "c2 PSH/ACK request");
        f.Service(c1.Frame(TcpFlagSet.AckOnly, rng.Bytes(1400)), "c1 ACK, 1400 bytes of data");
        f.Service(c3.Frame(TcpFlagSet.FinAck), "c3 FIN/ACK before completing the handshake (SYN_RECV → TIME_WAIT)");

        // A router on the way back to the client tells the VIP that the server's reply to c2 was too big.
        f.IcmpErrorAbout(FragmentationNeeded(Lab.Client, 40002, rng), Protocol.Tcp, Lab.Client, 40002, 80,
            "ICMP frag-needed from 198.18.0.254 quoting VIP:80 → 198.18.0.1:40002 (c2's reply)");
        f.IcmpErrorAbout(FragmentationNeeded(Lab.Client, 40999, rng), Protocol.Tcp, Lab.Client, 40999, 80,
            "ICMP frag-needed quoting VIP:80 → 198.18.0.1:40999 (no such connection)");
        var stray = new TcpFlow(Lab.Client, 40999, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(stray.Frame(TcpFlagSet.AckOnly), $"ACK {stray.Name}, no connection");

        f.Service(c1.Frame(TcpFlagSet.FinAck), "c1 FIN/ACK (ESTABLISHED → FIN_WAIT)");
        f.Service(c1.Frame(TcpFlagSet.AckOnly), "c1 ACK of the server's FIN (stays FIN_WAIT)");
        f.Service(c2.Frame(TcpFlagSet.RstAck), "c2 RST/ACK (ESTABLISHED → CLOSE)");
        f.Wait(TimeSpan.FromSeconds(1));
        var c1b = new TcpFlow(Lab.Client, 40001, 80, rng.NextUInt32(), rng.NextUInt32());
        var c2b = new TcpFlow(Lab.Client, 40002, 80, rng.NextUInt32(), rng.NextUInt32());
        var c3b = new TcpFlow(Lab.Client, 40003, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(c3b.Frame(TcpFlagSet.SynOnly), "c3' SYN, port 40003 reused (TIME_WAIT: scheduled afresh)");
        f.Service(c2b.Frame(TcpFlagSet.SynOnly), "c2' SYN, port 40002 reused (CLOSE: scheduled afresh)");
        f.Service(c1b.Frame(TcpFlagSet.SynOnly), "c1' SYN, port 40001 reused (FIN_WAIT: same connection, same server)");
        f.Service(c3b.Frame(TcpFlagSet.AckOnly), "c3' ACK");
        f.Service(c2b.Frame(TcpFlagSet.AckOnly), "c2' ACK");
        return f;
    }

    /// <summary>ICMP type 3 code 4 (next-hop MTU 1400) from a router to the VIP, quoting a reply VIP:80 → client:port.</summary>
    private static byte[] FragmentationNeeded(IPAddress client, int clientPort, SplitMix64 rng)
    {
        IPv4Packet reply = Build.TcpPacket(Lab.Vip, 80, client, clientPort, TcpFlagSet.AckOnly, rng.NextUInt32(), rng.NextUInt32(), rng.Bytes(1448), id: 0x4242);
        byte[] quoted = reply.Bytes[..28];
        byte[] body = new byte[8 + quoted.Length];
        body[0] = 3;
        body[1] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(body.AsSpan(6), 1400);
        quoted.CopyTo(body, 8);
        var icmp = new IcmpV4Packet(new ByteArraySegment(body));
        var ip = new IPv4Packet(Lab.Router, Lab.Vip) { TimeToLive = 64, TypeOfService = 0xC0, Protocol = PacketDotNet.ProtocolType.Icmp, PayloadPacket = icmp };
        icmp.UpdateIcmpChecksum();
        ip.UpdateIPChecksum();
        return Build.Frame(ip, Lab.RouterMac);
    }

    private static Fixture DrUdp()
    {
        var f = new Fixture("dr-udp", "UDP flows through direct routing",
            "Six UDP flows to an rr service (one of them from a second client that reuses another client's source port), " +
            "four datagrams each, interleaved, 10 s between rounds. Each flow sticks to the server its first datagram was " +
            "scheduled to (the UDP connection lives 300 s after its last datagram).");
        f.Notes.Add("rr over [rs2, rs1]: the flows' first datagrams go rs2, rs1, rs2, rs1, rs2, rs1.");
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0x0D5);
        (IPAddress Client, int Port)[] flows =
        [
            (Lab.Client, 50001), (Lab.Client, 50002), (Lab.Client, 50003), (Lab.Client, 50004), (Lab.Client, 50005), (Lab.Client2, 50001),
        ];
        int id = 0x3000;
        for (int round = 0; round < 4; round++)
        {
            foreach ((IPAddress client, int port) in flows)
            {
                int size = 20 + (int)(rng.Next() % 580);
                IPv4Packet datagram = Build.UdpPacket(client, port, Lab.Vip, 53, rng.Bytes(size), id: id++);
                byte[] frame = Build.Frame(datagram, client.Equals(Lab.Client2) ? Lab.Client2Mac : Lab.ClientMac);
                f.Service(frame, $"round {round + 1}: {client}:{port} → VIP:53, {size} bytes");
            }
            f.Wait(TimeSpan.FromSeconds(10));
        }
        return f;
    }

    private static Fixture DrUdpTimeout()
    {
        var f = new Fixture("dr-udp-timeout", "a UDP connection ends 300 s after its last datagram",
            "IPVS's UDP timeout is 300 s from the last datagram. Flow A is refreshed at 100 s and so lives to 400 s; " +
            "flow B, silent since 0 s, expired at 300 s, so its datagram at 350 s is a new connection and rr schedules " +
            "it afresh (to rs2, where it was on rs1). The replay takes time from the capture's timestamps.");
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0x300);
        byte[] Datagram(int port) => Build.Frame(Build.UdpPacket(Lab.Client, port, Lab.Vip, 53, rng.Bytes(48), id: port));
        f.Service(Datagram(50001), "A 198.18.0.1:50001 → VIP:53");
        f.Service(Datagram(50002), "B 198.18.0.1:50002 → VIP:53");
        f.Wait(TimeSpan.FromSeconds(100) - TimeSpan.FromMilliseconds(2));
        f.Service(Datagram(50001), "A again at 100 s (connection refreshed to 400 s)");
        f.Wait(TimeSpan.FromSeconds(250) - TimeSpan.FromMilliseconds(1));
        f.Service(Datagram(50002), "B again at 350 s: its connection expired at 300 s");
        f.Wait(TimeSpan.FromSeconds(10) - TimeSpan.FromMilliseconds(1));
        f.Service(Datagram(50001), "A again at 360 s (still within 300 s of 100 s)");
        f.Service(Datagram(50002), "B again: sticks to its new server");
        return f;
    }

    private static Fixture DrWrrDistribution()
    {
        var f = new Fixture("dr-wrr-distribution", "4000 connections under wrr 3:1",
            "4000 SYNs (198.18.0.1, source ports 20000-23999, 250 µs apart) to a wrr service with rs1 weight 3 and rs2 " +
            "weight 1. Exactly 3000 go to rs1 and 1000 to rs2, in the kernel's order.");
        f.Notes.Add("The rules add rs1 (-w 3) then rs2 (-w 1); the kernel's list is newest-first, [rs2, rs1].");
        f.Notes.Add("ipvsadm -R applies the lines one by one: -A runs ip_vs_wrr_init_svc on an empty list (mw = cw = 0); each -a runs ip_vs_wrr_dest_changed, which recomputes di and mw but keeps cw unless it is 0 or above mw. After both lines di = 1, mw = 3 and cw = 1.");
        f.Notes.Add("So the first pass asks for weight >= 1 from the head: the picks run rs2 rs1 rs1 rs1, rs2 rs1 rs1 rs1, ... (every group of four: one rs2 then three rs1).");
        f.Director.Service(Protocol.Tcp, 80, new WeightedRoundRobinModel()).Add(Lab.Rs1, 3).Add(Lab.Rs2, 1);
        f.GapMicroseconds = 250;
        var rng = new SplitMix64(0x4000);
        for (int port = 20000; port < 24000; port++)
        {
            var flow = new TcpFlow(Lab.Client, port, 80, rng.NextUInt32(), 0);
            RealServer? server = f.Service(flow.Frame(TcpFlagSet.SynOnly), port < 20008 ? $"SYN {flow.Name}" : "");
            _ = server ?? throw new InvalidOperationException("wrr found no server");
        }
        return f;
    }

    private const ushort VlanPriority5Id100 = 0xA064;
    private const ushort PriorityTagOnly = 0x6000;

    private static Fixture DrVlan()
    {
        var f = new Fixture("dr-vlan", "802.1Q-tagged traffic keeps its tag",
            "TCP to an rr service in VLAN 100 with priority 5 (TCI 0xa064), and one priority-tagged frame (VID 0, PCP 3). " +
            "The tag is forwarded unchanged, only the MACs, TTL and IP checksum change; the ICMP time-exceeded for a " +
            "TTL-1 SYN goes back in the same VLAN.");
        TwoServers(f, Protocol.Tcp, 80);
        var rng = new SplitMix64(0x8100);
        var c1 = new TcpFlow(Lab.Client, 44001, 80, rng.NextUInt32(), rng.NextUInt32());
        var c2 = new TcpFlow(Lab.Client, 44002, 80, rng.NextUInt32(), rng.NextUInt32());
        var expiring = new TcpFlow(Lab.Client, 44003, 80, rng.NextUInt32(), rng.NextUInt32());
        var c4 = new TcpFlow(Lab.Client, 44004, 80, rng.NextUInt32(), rng.NextUInt32());
        var c5 = new TcpFlow(Lab.Client, 44005, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(c1.Frame(TcpFlagSet.SynOnly, vlanTci: VlanPriority5Id100), $"VLAN 100: c1 SYN {c1.Name}");
        f.Service(c2.Frame(TcpFlagSet.SynOnly, vlanTci: VlanPriority5Id100), $"VLAN 100: c2 SYN {c2.Name}");
        f.Service(c1.Frame(TcpFlagSet.AckOnly, vlanTci: VlanPriority5Id100), "VLAN 100: c1 ACK");
        f.Service(c1.Frame(TcpFlagSet.PshAck, Http("/vlan"), vlanTci: VlanPriority5Id100), "VLAN 100: c1 PSH/ACK request");
        f.Service(c2.Frame(TcpFlagSet.AckOnly, vlanTci: VlanPriority5Id100), "VLAN 100: c2 ACK");
        f.Service(expiring.Frame(TcpFlagSet.SynOnly, ttl: 1, vlanTci: VlanPriority5Id100), $"VLAN 100: SYN {expiring.Name} with TTL 1");
        f.Service(c4.Frame(TcpFlagSet.SynOnly, vlanTci: VlanPriority5Id100), $"VLAN 100: c4 SYN {c4.Name}");
        f.Service(c5.Frame(TcpFlagSet.SynOnly, vlanTci: PriorityTagOnly), $"priority tag (VID 0, PCP 3): c5 SYN {c5.Name}");
        return f;
    }

    private static Fixture DrIpOptions()
    {
        var f = new Fixture("dr-ip-options", "IPv4 options are forwarded intact",
            "Datagrams with IPv4 options (IHL 6, 8 and 15): Router Alert, NOPs, End of Options. Direct routing forwards " +
            "the header as it is (options preserved byte for byte), with TTL - 1 and the checksum over the whole header.");
        TwoServers(f, Protocol.Tcp, 80);
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0x0F);
        byte[] routerAlert = [0x94, 0x04, 0x00, 0x00];
        byte[] nopsThenRouterAlert = [0x01, 0x01, 0x01, 0x01, 0x94, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00];
        byte[] fullOfNops = [.. Enumerable.Repeat((byte)0x01, 39), 0x00];
        var c1 = new TcpFlow(Lab.Client, 45001, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(Build.WithIpOptions(c1.Frame(TcpFlagSet.SynOnly), routerAlert), $"IHL 6 (Router Alert): SYN {c1.Name}");
        f.Service(Build.WithIpOptions(c1.Frame(TcpFlagSet.AckOnly), routerAlert), "IHL 6 (Router Alert): ACK");
        f.Service(Build.WithIpOptions(c1.Frame(TcpFlagSet.PshAck, Http("/options")), routerAlert), "IHL 6 (Router Alert): PSH/ACK request");
        f.Service(Build.WithIpOptions(Build.Frame(Build.UdpPacket(Lab.Client, 45002, Lab.Vip, 53, rng.Bytes(64), id: 1)), fullOfNops),
            "IHL 15 (39 NOPs, EOL): UDP 198.18.0.1:45002 → VIP:53");
        f.Service(Build.WithIpOptions(Build.Frame(Build.UdpPacket(Lab.Client, 45003, Lab.Vip, 53, rng.Bytes(200), id: 2)), nopsThenRouterAlert),
            "IHL 8 (4 NOPs, Router Alert, EOL, padding): UDP 198.18.0.1:45003 → VIP:53");
        return f;
    }

    private static Fixture DrFragments()
    {
        var f = new Fixture("dr-fragments", "fragments follow their first fragment",
            "Two fragmented UDP datagrams from two flows, their fragments interleaved, then a later fragment whose first " +
            "fragment never came, then a second fragmented datagram of the first flow and an unfragmented one of the " +
            "second. Every fragment goes where its datagram's first fragment (the one with the ports) went; the orphan " +
            "is dropped (IPVS reassembles first; udr, which does not buffer, must at least never guess).");
        f.Notes.Add("Fragments are forwarded as they are (MACs, TTL - 1, IP checksum); the reassembled datagrams' UDP checksums stay valid.");
        TwoServers(f, Protocol.Udp, 5000);
        var rng = new SplitMix64(0xF4A9);
        List<byte[]> x = Build.Fragment(Build.UdpPacket(Lab.Client, 41000, Lab.Vip, 5000, rng.Bytes(3000), id: 0x1001, dontFragment: false), 1480);
        List<byte[]> y = Build.Fragment(Build.UdpPacket(Lab.Client, 41001, Lab.Vip, 5000, rng.Bytes(2000), id: 0x2001, dontFragment: false), 1480);
        f.Service(x[0], "X first fragment (ID 0x1001, offset 0, MF) 198.18.0.1:41000 → VIP:5000");
        f.Service(y[0], "Y first fragment (ID 0x2001, offset 0, MF) 198.18.0.1:41001 → VIP:5000");
        f.LaterFragment(x[1], "X fragment 2 (offset 1480, MF)");
        f.LaterFragment(y[1], "Y fragment 2 (offset 1480, last)");
        f.LaterFragment(x[2], "X fragment 3 (offset 2960, last)");
        List<byte[]> orphan = Build.Fragment(Build.UdpPacket(Lab.Client, 41002, Lab.Vip, 5000, rng.Bytes(1500), id: 0x7777, dontFragment: false), 1480);
        f.LaterFragment(orphan[1], "fragment (ID 0x7777, offset 1480, last) whose first fragment never came");
        List<byte[]> x2 = Build.Fragment(Build.UdpPacket(Lab.Client, 41000, Lab.Vip, 5000, rng.Bytes(2000), id: 0x1002, dontFragment: false), 1480);
        f.Service(x2[0], "X second datagram, first fragment (ID 0x1002): the flow's connection");
        f.LaterFragment(x2[1], "X second datagram, fragment 2 (last)");
        f.Service(Build.Frame(Build.UdpPacket(Lab.Client, 41001, Lab.Vip, 5000, rng.Bytes(100), id: 0x2002)), "Y unfragmented datagram");
        return f;
    }

    private static Fixture DrTtl()
    {
        var f = new Fixture("dr-ttl", "TTL 1 and 0 are answered with ICMP time exceeded",
            "Direct routing decrements TTL (the real server is not local), so a datagram with TTL <= 1 is answered with ICMP " +
            "time exceeded (type 11 code 0) from the VIP, quoting the datagram as received (at most 548 bytes), and not " +
            "forwarded. As in IPVS the connection is scheduled before the transmit fails: a retransmitted SYN with a good TTL " +
            "goes to the server already chosen.");
        f.Notes.Add("ICMP errors are 1 s apart, within Linux's default ICMP rate limit (burst 6, then 1/s per destination).");
        TwoServers(f, Protocol.Tcp, 80);
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0x77);
        var c1 = new TcpFlow(Lab.Client, 46001, 80, rng.NextUInt32(), rng.NextUInt32());
        var c2 = new TcpFlow(Lab.Client, 46002, 80, rng.NextUInt32(), rng.NextUInt32());
        var c4 = new TcpFlow(Lab.Client, 46004, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(c1.Frame(TcpFlagSet.SynOnly, ttl: 1), $"SYN {c1.Name}, TTL 1");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(c2.Frame(TcpFlagSet.SynOnly, ttl: 2), $"SYN {c2.Name}, TTL 2: rr's second pick, so the TTL-1 SYN took the first (leaves with TTL 1)");
        var retransmit = new TcpFlow(Lab.Client, 46001, 80, 0, 0);
        f.Service(retransmit.Frame(TcpFlagSet.SynOnly, ttl: 64), "a SYN on the TTL-1 SYN's port, TTL 64: its connection's server");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(c2.Frame(TcpFlagSet.AckOnly, ttl: 1), "ACK of 198.18.0.1:46002 with TTL 1 (an established connection's segment)");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(Build.Frame(Build.UdpPacket(Lab.Client, 46003, Lab.Vip, 53, rng.Bytes(1000), ttl: 1, id: 0x46)),
            "UDP 198.18.0.1:46003 → VIP:53, 1028-byte datagram, TTL 1 (quote cut at 548 bytes)");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(c4.Frame(TcpFlagSet.SynOnly, ttl: 0), $"SYN {c4.Name}, TTL 0");
        return f;
    }

    private static Fixture DrNoServer()
    {
        var f = new Fixture("dr-no-server", "a service with no usable server answers ICMP port unreachable",
            "A TCP service whose only server has weight 0 (quiesced) and a UDP service with no server at all. The " +
            "scheduler finds nothing, so IPVS answers ICMP port unreachable (type 3 code 3) from the VIP and drops the " +
            "packet; never a TCP RST. A retransmitted SYN is answered again (no connection was made). A non-SYN " +
            "segment is not scheduled at all (no answer).");
        f.Notes.Add("ICMP errors are 1 s apart, within Linux's default ICMP rate limit.");
        f.Director.Service(Protocol.Tcp, 80, new NoPositiveWeightModel("wlc")).Add(Lab.Rs1, 0);
        f.Director.Service(Protocol.Udp, 53, new NoPositiveWeightModel("wlc"));
        var rng = new SplitMix64(0x0);
        var c1 = new TcpFlow(Lab.Client, 47001, 80, rng.NextUInt32(), rng.NextUInt32());
        var c2 = new TcpFlow(Lab.Client, 47002, 80, rng.NextUInt32(), rng.NextUInt32());
        byte[] syn = c1.Frame(TcpFlagSet.SynOnly);
        f.Service(syn, $"SYN {c1.Name}");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(syn, "the same SYN, retransmitted");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(c2.Frame(TcpFlagSet.AckOnly), $"ACK {c2.Name}");
        f.Wait(TimeSpan.FromSeconds(1));
        f.Service(Build.Frame(Build.UdpPacket(Lab.Client, 47003, Lab.Vip, 53, rng.Bytes(40), id: 0x47)), "UDP 198.18.0.1:47003 → VIP:53");
        return f;
    }

    private static Fixture DrChecksumPartial()
    {
        var f = new Fixture("dr-checksum-partial", "unfinished L4 checksums are finished before forwarding",
            "Frames as a sender with checksum offload hands them over (CHECKSUM_PARTIAL, TP_STATUS_CSUMNOTREADY in the " +
            "ring): the TCP/UDP checksum field holds only the pseudo-header sum. Replayed with --checksum-not-ready, udr " +
            "must send each with the full, correct checksum (a real server drops it otherwise); one is VLAN-tagged.")
        {
            ChecksumNotReady = true,
        };
        TwoServers(f, Protocol.Tcp, 80);
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0xC5);
        var c1 = new TcpFlow(Lab.Client, 48001, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(Build.WithPartialChecksum(c1.Frame(TcpFlagSet.SynOnly)), $"SYN {c1.Name}, partial checksum");
        f.Service(Build.WithPartialChecksum(c1.Frame(TcpFlagSet.AckOnly)), "ACK, partial checksum");
        f.Service(Build.WithPartialChecksum(c1.Frame(TcpFlagSet.PshAck, rng.Bytes(600))), "PSH/ACK with 600 bytes, partial checksum");
        f.Service(Build.WithPartialChecksum(Build.Frame(Build.UdpPacket(Lab.Client, 48002, Lab.Vip, 53, rng.Bytes(300), id: 1))),
            "UDP 198.18.0.1:48002 → VIP:53, 300 bytes, partial checksum");
        f.Service(Build.WithPartialChecksum(Build.Frame(Build.UdpPacket(Lab.Client, 48003, Lab.Vip, 53, rng.Bytes(100), id: 2), vlanTci: VlanPriority5Id100)),
            "VLAN 100: UDP 198.18.0.1:48003 → VIP:53, 100 bytes, partial checksum");
        f.Service(Build.WithPartialChecksum(Build.Frame(Build.UdpPacket(Lab.Client, 48002, Lab.Vip, 53, rng.Bytes(1200), id: 3))),
            "UDP 198.18.0.1:48002 again, 1200 bytes, partial checksum");
        return f;
    }
}
