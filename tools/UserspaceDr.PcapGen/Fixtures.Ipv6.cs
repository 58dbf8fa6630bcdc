using System.Buffers.Binary;
using System.Net;

namespace UserspaceDr.PcapGen;

/// <summary>The IPv6 fixtures: direct routing over IPv6 (ip_vs_dr_xmit_v6) and neighbour discovery for the VIP.</summary>
internal static partial class Fixtures
{
    private static Fixture Dr6()
    {
        var f = new Fixture("dr6", "IPv6 through direct routing",
            "TCP and UDP to an IPv6 VIP (2001:2::100) through direct routing: every forwarded frame differs from its input only " +
            "in the MACs and the hop limit (− 1). Extension headers are walked to the transport header and kept; fragments follow " +
            "their first fragment; hop limit 1 and a packet wider than the link are answered from the VIP (time exceeded, Packet Too " +
            "Big); an ICMPv6 error about a reply goes to the connection's server; malformed headers are dropped under their names.")
        {
            Neighbors = Lab.Neighbors6,
        };
        f.Notes.Add("rr over [rs2, rs1] (newest first) in each service.");
        f.Notes.Add("The link MTU is udr replay's, 1500: a 1501-byte packet gets Packet Too Big with MTU 1500 (IPv6 is never fragmented on the way).");
        f.Notes.Add("ICMPv6 errors from udr quote as much of the packet as fits in 1280 bytes (RFC 4443 §2.4), hop limit 64.");
        f.Director.Service(Protocol.Tcp, 80, new RoundRobinModel(), Lab.Vip6).Add(Lab.Rs1v6, 1).Add(Lab.Rs2v6, 1);
        f.Director.Service(Protocol.Udp, 53, new RoundRobinModel(), Lab.Vip6).Add(Lab.Rs1v6, 1).Add(Lab.Rs2v6, 1);
        var rng = new SplitMix64(0x1D6);
        IPAddress client = Lab.Client6, vip = Lab.Vip6;

        byte[] Tcp(int port, TcpFlagSet flags, int data = 0, byte hopLimit = 64, byte[]? extensions = null)
        {
            byte[] segment = Build6.TcpSegment(client, port, vip, 80, flags, rng.NextUInt32(), rng.NextUInt32(), rng.Bytes(data));
            return extensions is null
                ? Build6.Frame(client, vip, Build6.Tcp, segment, hopLimit)
                : Build6.Frame(client, vip, Build6.HopByHop, [.. extensions, .. segment], hopLimit);
        }
        Packet6 Segment(int port, TcpFlagSet flags) => new(Protocol.Tcp, client, port, 80, flags);

        f.ServiceIpv6(Tcp(40001, TcpFlagSet.SynOnly), Segment(40001, TcpFlagSet.SynOnly), "c1 SYN [2001:2::1]:40001 → VIP:80");
        f.ServiceIpv6(Tcp(40001, TcpFlagSet.AckOnly), Segment(40001, TcpFlagSet.AckOnly), "c1 ACK");
        f.ServiceIpv6(Tcp(40002, TcpFlagSet.SynOnly, extensions: [.. Build6.OptionsHeader(Build6.DestinationOptions), .. Build6.OptionsHeader(Build6.Tcp)]),
            Segment(40002, TcpFlagSet.SynOnly), "c2 SYN behind a Hop-by-Hop and a Destination Options header (kept as they are)");
        f.ServiceIpv6(Tcp(40001, TcpFlagSet.PshAck, 1400), Segment(40001, TcpFlagSet.PshAck), "c1 PSH/ACK, 1400 bytes (1460-byte packet)");
        f.ServiceIpv6(Tcp(40001, TcpFlagSet.AckOnly, 1441), Segment(40001, TcpFlagSet.AckOnly), "c1 ACK, 1441 bytes: a 1501-byte packet for a 1500-byte link");
        f.ServiceIpv6(Tcp(40003, TcpFlagSet.SynOnly, hopLimit: 1), Segment(40003, TcpFlagSet.SynOnly), "c3 SYN with hop limit 1");
        f.ServiceIpv6(Tcp(40999, TcpFlagSet.AckOnly), Segment(40999, TcpFlagSet.AckOnly), "ACK [2001:2::1]:40999, no connection");

        // UDP: a whole datagram, then one in two fragments, then a later fragment whose first was never seen.
        byte[] query = Build6.UdpDatagram(client, 50001, vip, 53, rng.Bytes(40));
        f.ServiceIpv6(Build6.Frame(client, vip, Build6.Udp, query), new Packet6(Protocol.Udp, client, 50001, 53), "[2001:2::1]:50001 → VIP:53, 40 bytes");
        byte[] big = Build6.UdpDatagram(client, 50002, vip, 53, rng.Bytes(200));
        const uint Id = 0x6001;
        f.ServiceIpv6(Build6.Frame(client, vip, Build6.Fragment, [.. Build6.FragmentHeader(Build6.Udp, 0, true, Id), .. big.AsSpan(0, 104)]),
            new Packet6(Protocol.Udp, client, 50002, 53, FragmentId: Id), "[2001:2::1]:50002 → VIP:53, first fragment (UDP header + 96 bytes)");
        f.LaterFragmentIpv6(Build6.Frame(client, vip, Build6.Fragment, [.. Build6.FragmentHeader(Build6.Udp, 104, false, Id), .. big.AsSpan(104)]),
            client, Id, Protocol.Udp, "its later fragment (offset 104)");
        f.LaterFragmentIpv6(Build6.Frame(client, vip, Build6.Fragment, [.. Build6.FragmentHeader(Build6.Udp, 104, false, 0x6999), .. rng.Bytes(40)]),
            client, 0x6999, Protocol.Udp, "a later fragment of a datagram never seen");

        // A router tells the VIP that the server's reply to c1 (and to an unknown flow) was too big.
        f.IcmpErrorAbout(PacketTooBigAboutReply(40001, rng), Protocol.Tcp, client, 40001, 80, "Packet Too Big from 2001:2::fe quoting VIP:80 → [2001:2::1]:40001 (c1's reply)");
        f.IcmpErrorAbout(PacketTooBigAboutReply(40998, rng), Protocol.Tcp, client, 40998, 80, "Packet Too Big quoting VIP:80 → [2001:2::1]:40998 (no such connection)");

        // Not udr's, or not well formed.
        f.NoOutput(Build6.Frame(client, vip, Build6.Udp, Build6.UdpDatagram(client, 50003, vip, 54, rng.Bytes(8))), "no-virtual-service", "UDP to VIP:54, no such service");
        f.NoOutput(Build6.Frame(client, Lab.NotVip6, Build6.Tcp, Build6.TcpSegment(client, 40004, Lab.NotVip6, 80, TcpFlagSet.SynOnly, 1, 0, [])),
            "not-for-virtual-address", "SYN to 2001:2::200, not a VIP");
        byte[] echo = [128, 0, 0, 0, 0, 1, 0, 1, .. rng.Bytes(8)];
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(2), Build6.Checksum(client, vip, Build6.Icmpv6, echo));
        f.NoOutput(Build6.Frame(client, vip, Build6.Icmpv6, echo), "icmp-for-virtual-address", "echo request to the VIP (the kernel's, which owns the VIP)");
        f.NoOutput(Build6.Frame(client, vip, Build6.Tcp, Build6.TcpSegment(client, 40005, vip, 80, TcpFlagSet.SynOnly, 1, 0, []), payloadLengthField: 200),
            "ipv6-payload-length-invalid", "payload length 200 in a 20-byte packet");
        f.NoOutput(Build6.Frame(client, vip, Build6.HopByHop, [Build6.Tcp, 2, 1, 4, 0, 0, 0, 0]),
            "ipv6-extension-headers-truncated", "a Hop-by-Hop header claiming 24 bytes in 8");
        f.NoOutput(Build6.Frame(client, vip, Build6.Tcp, [0x9C, 0x45, 0, 80, 0, 0]), "transport-truncated", "6 bytes of a TCP header");
        return f;
    }

    /// <summary>ICMPv6 Packet Too Big (MTU 1400) from a router to the VIP, quoting a reply VIP:80 → client:port of 1448 bytes.</summary>
    private static byte[] PacketTooBigAboutReply(int clientPort, SplitMix64 rng)
    {
        byte[] reply = Build6.TcpSegment(Lab.Vip6, 80, Lab.Client6, clientPort, TcpFlagSet.AckOnly, rng.NextUInt32(), rng.NextUInt32(), rng.Bytes(1388));
        byte[] quoted = Build6.Frame(Lab.Vip6, Lab.Client6, Build6.Tcp, reply).AsSpan(Build.EthernetHeader, 1280 - 48).ToArray();
        byte[] message = new byte[8 + quoted.Length];
        message[0] = 2;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), 1400);
        quoted.CopyTo(message, 8);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), Build6.Checksum(Lab.Router6, Lab.Vip6, Build6.Icmpv6, message));
        return Build6.Frame(Lab.Router6, Lab.Vip6, Build6.Icmpv6, message, 64, Lab.RouterMac);
    }

    private static Fixture Ndp6()
    {
        var f = new Fixture("ndp6", "Neighbor Solicitations for the IPv6 VIP with --answer-arp",
            "With --answer-arp udr answers Neighbor Solicitations for an IPv6 VIP (the IPv6 form of ARP) with a solicited, " +
            "override advertisement carrying the balancer's MAC, after RFC 4861 §7.1.1's checks; a duplicate-address probe " +
            "from :: is answered to all nodes. Solicitations that fail the checks are dropped under their names; one for " +
            "another address is the kernel's.")
        {
            AnswerArp = true,
            Neighbors = Lab.Neighbors6,
        };
        f.Director.Service(Protocol.Tcp, 80, new RoundRobinModel(), Lab.Vip6).Add(Lab.Rs1v6, 1);
        f.Record(Solicitation(Lab.Client6, Lab.Vip6), "neighbor-advertisement", Expect6.NeighborAdvertisement(Solicitation(Lab.Client6, Lab.Vip6), Lab.Vip6),
            "NS from 2001:2::1 for the VIP", "→ NA: solicited, override, the balancer's MAC");
        f.Record(Solicitation(IPAddress.IPv6Any, Lab.Vip6), "neighbor-advertisement",
            Expect6.NeighborAdvertisement(Solicitation(IPAddress.IPv6Any, Lab.Vip6), Lab.Vip6), "duplicate-address probe from :: for the VIP",
            "→ NA to all nodes (ff02::1), not solicited");
        f.NoOutput(Solicitation(Lab.Client6, Lab.Vip6, hopLimit: 254), "ndp-hop-limit-invalid", "NS for the VIP with hop limit 254 (crossed a router)");
        f.NoOutput(Solicitation(Lab.Client6, Lab.NotVip6), "neighbor-solicitation-not-for-virtual-address", "NS for 2001:2::200, not a VIP");
        f.NoOutput(Solicitation(Lab.Client6, Lab.Vip6, corruptChecksum: true), "ndp-malformed", "NS for the VIP with a wrong checksum");
        f.NoOutput(Solicitation(Lab.Client6, IPAddress.Parse("ff02::1")), "ndp-malformed", "NS for a multicast target");
        return f;
    }

    /// <summary>
    /// A Neighbor Solicitation from <paramref name="source"/> for <paramref name="target"/>, to the target's solicited-node
    /// group and its MAC, with the Source Link-Layer option (none from ::, as RFC 4861 §4.3 requires).
    /// </summary>
    private static byte[] Solicitation(IPAddress source, IPAddress target, byte hopLimit = 255, bool corruptChecksum = false)
    {
        bool probe = source.Equals(IPAddress.IPv6Any);
        byte[] message = new byte[probe ? 24 : 32];
        message[0] = 135;
        target.GetAddressBytes().CopyTo(message, 8);
        if (!probe)
        {
            message[24] = 1;
            message[25] = 1;
            Lab.ClientMac.GetAddressBytes().CopyTo(message, 26);
        }
        byte[] targetBytes = target.GetAddressBytes();
        var group = new IPAddress([0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, targetBytes[13], targetBytes[14], targetBytes[15]]);
        ushort sum = Build6.Checksum(source, group, Build6.Icmpv6, message);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), corruptChecksum ? (ushort)(sum ^ 0x0100) : sum);
        var groupMac = new System.Net.NetworkInformation.PhysicalAddress([0x33, 0x33, 0xFF, targetBytes[13], targetBytes[14], targetBytes[15]]);
        return Build6.Frame(source, group, Build6.Icmpv6, message, hopLimit, Lab.ClientMac, groupMac);
    }
}
