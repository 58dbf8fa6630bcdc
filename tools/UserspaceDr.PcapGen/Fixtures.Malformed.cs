using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using PacketDotNet.Utils;

namespace UserspaceDr.PcapGen;

internal static partial class Fixtures
{
    /// <summary>RFC 1071 over an IPv4 header, for malformed headers PacketDotNet will not take.</summary>
    private static byte[] WithRawIpChecksum(byte[] frame)
    {
        int ip = Build.IpOffset(frame);
        int length = Math.Max(20, (frame[ip] & 0x0F) * 4);
        frame[ip + 10] = 0;
        frame[ip + 11] = 0;
        uint sum = 0;
        for (int i = 0; i < length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(ip + i));
        }
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(ip + 10), (ushort)~sum);
        return frame;
    }

    private static byte[] WithTotalLength(byte[] frame, int totalLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(Build.IpOffset(frame) + 2), (ushort)totalLength);
        return WithRawIpChecksum(frame);
    }

    private static Fixture DrMalformed()
    {
        var f = new Fixture("dr-malformed", "malformed frames are dropped under their named reason",
            "Every way a frame addressed to a VIP service can be cut short or lie about itself: truncated Ethernet, " +
            "802.1Q tag, IPv4 and TCP/UDP headers; IHL below 5 and beyond the frame; a version other than 4; a total " +
            "length beyond the frame or below the header; a bad header checksum; TCP data offsets below 5 and beyond the " +
            "segment. None is forwarded, none creates a connection or moves the scheduler: the valid SYN that follows, " +
            "from the same client port, gets rr's first pick (rs2). A frame longer than its datagram (Ethernet padding " +
            "to 60 bytes) is valid and forwarded with its padding.");
        TwoServers(f, Protocol.Tcp, 80);
        TwoServers(f, Protocol.Udp, 53);
        var rng = new SplitMix64(0xBAD);
        var flow = new TcpFlow(Lab.Client, 43000, 80, rng.NextUInt32(), rng.NextUInt32());
        byte[] Syn(byte[]? payload = null) => flow.Frame(TcpFlagSet.SynOnly, payload);
        const int Ip = Build.EthernetHeader;

        f.NoOutput(Syn()[..10], "ethernet-truncated", "10 bytes: not even the Ethernet header");
        f.NoOutput(Build.InsertVlanTag(Syn(), VlanPriority5Id100)[..16], "ethernet-truncated", "16 bytes: 802.1Q TPID but no room for the rest of the tag");
        f.NoOutput(Syn()[..(Ip + 12)], "ip-truncated", "12 bytes of IPv4 header");

        byte[] ihl4 = Syn();
        ihl4[Ip] = 0x44;
        f.NoOutput(ihl4, "ip-header-length-invalid", "IHL 4 (16-byte header)");
        byte[] ihl15 = Syn();
        ihl15[Ip] = 0x4F;
        f.NoOutput(ihl15, "ip-truncated", "IHL 15 (60-byte header) in a 40-byte datagram");
        byte[] v6 = Syn();
        v6[Ip] = 0x65;
        f.NoOutput(WithRawIpChecksum(v6), "ip-version-invalid", "version 6 under EtherType 0x0800");
        byte[] v0 = Syn();
        v0[Ip] = 0x05;
        f.NoOutput(WithRawIpChecksum(v0), "ip-version-invalid", "version 0");

        f.NoOutput(WithTotalLength(Syn(), 1000), "ip-total-length-invalid", "total length 1000 in a 40-byte datagram");
        f.NoOutput(WithTotalLength(Syn(), 12), "ip-total-length-invalid", "total length 12, below the 20-byte header");
        byte[] cut = Syn(rng.Bytes(20));
        f.NoOutput(cut[..^1], "ip-total-length-invalid", "SYN with 20 bytes of data, captured one byte short");

        byte[] badChecksum = Syn();
        badChecksum[Ip + 10] ^= 0x5A;
        f.NoOutput(badChecksum, "ip-checksum-invalid", "IPv4 header checksum wrong");

        byte[] shortTcp = WithTotalLength(Syn(), 20 + 10);
        f.NoOutput(shortTcp[..(Ip + 30)], "transport-truncated", "TCP header cut at 10 bytes (total length 30)");
        byte[] offset4 = Syn();
        offset4[Ip + 20 + 12] = 0x40;
        f.NoOutput(offset4, "transport-truncated", "TCP data offset 4 (16 bytes)");
        byte[] offset15 = Build.Frame(Build.TcpPacket(Lab.Client, 43000, Lab.Vip, 80, TcpFlagSet.SynOnly, 1, 0));
        offset15[Ip + 20 + 12] = 0xF0;
        f.NoOutput(offset15, "transport-truncated", "TCP data offset 15 (60 bytes) in a 20-byte segment");
        byte[] shortUdp = WithTotalLength(Build.Frame(Build.UdpPacket(Lab.Client, 43000, Lab.Vip, 53, rng.Bytes(16), id: 9)), 20 + 4);
        f.NoOutput(shortUdp[..(Ip + 24)], "transport-truncated", "UDP header cut at 4 bytes (total length 24)");

        f.Service(Syn(), $"valid SYN {flow.Name}: rr's first pick, so nothing above was scheduled");
        var padded = new TcpFlow(Lab.Client, 43001, 80, rng.NextUInt32(), 0);
        IPv4Packet bare = Build.TcpPacket(Lab.Client, 43001, Lab.Vip, 80, TcpFlagSet.SynOnly, 7, 0, id: 0x4301);
        _ = padded;
        byte[] sixty = Build.Frame(bare);
        sixty = [.. sixty, .. new byte[60 - sixty.Length]];
        f.Service(sixty, "SYN 198.18.0.1:43001 → VIP:80 in a 60-byte frame (6 bytes of Ethernet padding, kept)");
        return f;
    }

    private static Fixture NotForUs()
    {
        var f = new Fixture("not-for-us", "traffic that is not udr's to forward produces no output",
            "Frames a balancer's interface sees that are not for a virtual service: another address, another host's " +
            "MAC, an IPv6 address that is not a VIP, another EtherType, a VIP port without a service, UDP to a TCP-only port, ping and GRE to the " +
            "VIP, a VIP-sourced packet, and an ARP request for the VIP while the kernel owns the VIP (no --answer-arp). " +
            "udr sends nothing (the expected capture is empty); each is counted under its reason.");
        TwoServers(f, Protocol.Tcp, 80);
        var rng = new SplitMix64(0xAB);
        byte[] SynTo(IPAddress source, IPAddress destination, int port) =>
            Build.Frame(Build.TcpPacket(source, 49000, destination, port, TcpFlagSet.SynOnly, rng.NextUInt32(), 0, id: 0x49));

        f.NoOutput(SynTo(Lab.Client, Lab.NotVip, 80), "not-for-virtual-address", "SYN 198.18.0.1 → 198.18.0.200:80 (not a VIP)");
        byte[] otherHost = SynTo(Lab.Client, Lab.Vip, 80);
        Lab.OtherHostMac.GetAddressBytes().CopyTo(otherHost, 0);
        f.NoOutput(otherHost, "not-for-this-host", "SYN to VIP:80 in a frame for another host's MAC (promiscuous copy)");

        var tcp6 = new TcpPacket(49000, 80) { Synchronize = true, WindowSize = 64240, SequenceNumber = 1 };
        var ip6 = new IPv6Packet(IPAddress.Parse("2001:2::1"), IPAddress.Parse("2001:2::100")) { HopLimit = 64, PayloadPacket = tcp6 };
        tcp6.UpdateTcpChecksum();
        f.NoOutput(Build.Frame(ip6.Bytes, EthernetType.IPv6), "not-for-virtual-address", "IPv6 SYN 2001:2::1 → 2001:2::100:80 (no IPv6 VIP configured)");
        f.NoOutput(Build.Frame(rng.Bytes(46), (EthernetType)0x88CC, destination: Lab.Mac("01:80:c2:00:00:0e")), "not-ip", "LLDP (EtherType 0x88cc)");

        f.NoOutput(SynTo(Lab.Client, Lab.Vip, 81), "no-virtual-service", "SYN to VIP:81 (no service on that port)");
        f.NoOutput(Build.Frame(Build.UdpPacket(Lab.Client, 49001, Lab.Vip, 80, rng.Bytes(32), id: 0x50)), "no-virtual-service", "UDP to VIP:80 (the service is TCP)");

        byte[] echo = new byte[8 + 56];
        echo[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(4), 0x1234);
        BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(6), 1);
        rng.Bytes(56).CopyTo(echo, 8);
        var icmp = new IcmpV4Packet(new ByteArraySegment(echo));
        var ping = new IPv4Packet(Lab.Client, Lab.Vip) { TimeToLive = 64, Protocol = PacketDotNet.ProtocolType.Icmp, PayloadPacket = icmp };
        icmp.UpdateIcmpChecksum();
        ping.UpdateIPChecksum();
        f.NoOutput(Build.Frame(ping), "icmp-for-virtual-address", "ICMP echo request to the VIP (the kernel answers)");

        byte[] greBody = [0x00, 0x00, 0x08, 0x00, .. rng.Bytes(40)];
        var gre = new IPv4Packet(Lab.Client, Lab.Vip) { TimeToLive = 64, Protocol = PacketDotNet.ProtocolType.Gre, PayloadData = greBody };
        // Set after the payload, PacketDotNet's checksum would miss the new total length: recompute it over the frame.
        f.NoOutput(Build.FixIpChecksum(Build.Frame(gre)), "other-protocol", "GRE (protocol 47) to the VIP");

        f.NoOutput(SynTo(Lab.Vip, Lab.Vip, 80), "source-is-virtual-address", "SYN VIP:49000 → VIP:80 (spoofed or looped)");
        f.NoOutput(Build.ArpRequest(Lab.ClientMac, Lab.Client, Lab.Vip), "arp-not-for-virtual-address", "ARP who-has VIP (udr leaves ARP to the kernel)");
        return f;
    }

    private static Fixture Arp()
    {
        var f = new Fixture("arp", "ARP for the VIP with --answer-arp",
            "With --answer-arp udr owns the VIP at layer 2: a who-has for the VIP gets a reply (the balancer's MAC, padded " +
            "to 60 bytes, in the request's VLAN). ARP for other addresses, ARP replies, and ARP that is not " +
            "Ethernet/IPv4 or is cut short get no answer. Forwarding is unaffected.")
        {
            AnswerArp = true,
        };
        f.Director.Service(Protocol.Tcp, 80, new RoundRobinModel()).Add(Lab.Rs1, 1);
        var rng = new SplitMix64(0xA4);
        byte[] request = Build.ArpRequest(Lab.ClientMac, Lab.Client, Lab.Vip);
        f.Record(request, "arp-reply", Expect.ArpReply(request, Lab.Vip), "ARP who-has 198.18.0.100 tell 198.18.0.1", "→ 198.18.0.100 is-at 02:00:00:00:00:02");
        f.NoOutput(Build.ArpRequest(Lab.ClientMac, Lab.Client, Lab.Rs1.Address), "arp-not-for-virtual-address", "ARP who-has 198.18.0.11 (a real server, not a VIP)");

        var announce = new ArpPacket(ArpOperation.Response, Lab.BroadcastMac, Lab.Vip, Lab.OtherHostMac, Lab.Vip);
        f.NoOutput(Build.Frame(announce.Bytes, EthernetType.Arp, Lab.OtherHostMac, Lab.BroadcastMac), "arp-not-for-virtual-address",
            "gratuitous ARP reply: 198.18.0.100 is-at 02:00:00:00:00:99 (not a request)");

        byte[] tagged = Build.ArpRequest(Lab.Client2Mac, Lab.Client2, Lab.Vip, VlanPriority5Id100);
        f.Record(tagged, "arp-reply", Expect.ArpReply(tagged, Lab.Vip), "VLAN 100: ARP who-has 198.18.0.100 tell 198.18.0.2", "→ reply in VLAN 100");

        f.NoOutput(Build.ArpRequest(Lab.ClientMac, Lab.Client, Lab.Vip)[..(Build.EthernetHeader + 20)], "arp-malformed", "ARP request cut at 20 bytes");
        byte[] ieee802 = Build.ArpRequest(Lab.ClientMac, Lab.Client, Lab.Vip);
        ieee802[Build.EthernetHeader + 1] = 6;
        f.NoOutput(ieee802, "arp-malformed", "ARP with hardware type 6 (IEEE 802), not Ethernet");

        var flow = new TcpFlow(Lab.Client, 49500, 80, rng.NextUInt32(), rng.NextUInt32());
        f.Service(flow.Frame(TcpFlagSet.SynOnly), $"SYN {flow.Name}");
        return f;
    }
}
