using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

public class DirectRoutingTests
{
    private static EngineHarness TwoServers(string scheduler = "rr", int persistence = 0, uint netmask = 0xFFFFFFFF) =>
        new(EngineHarness.Service(scheduler, persistence: persistence, netmask: netmask, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]));

    [Test]
    public void Syn_is_forwarded_with_new_macs_ttl_minus_one_and_valid_checksums()
    {
        var lab = TwoServers();
        byte[] payload = "hello"u8.ToArray();
        byte[] frame = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: payload, ttl: 64);
        byte[] original = (byte[])frame.Clone();

        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));

        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(frame);
        // Newest server first in the kernel's list: rr's first pick is rs2.
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.Rs2Mac));
        Assert.That(ethernet.SourceHardwareAddress, Is.EqualTo(Frames.BalancerMac));
        Assert.That(ip.TimeToLive, Is.EqualTo(63));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)), "DR leaves the VIP as destination");
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(ip.ValidIPChecksum, Is.True);
        var tcp = ip.Extract<TcpPacket>();
        Assert.That(tcp.ValidTcpChecksum, Is.True);
        Assert.That(tcp.PayloadData, Is.EqualTo(payload));
        // Only the MACs, TTL and IP checksum differ from the input.
        int differing = Enumerable.Range(0, frame.Length).Count(i => frame[i] != original[i]);
        Assert.That(differing, Is.LessThanOrEqualTo(6 + 6 + 1 + 2));
    }

    [Test]
    public void Established_flow_sticks_to_its_server_and_new_flows_rotate()
    {
        var lab = TwoServers();
        var firstServerOfFlow = new Dictionary<ushort, System.Net.NetworkInformation.PhysicalAddress>();
        for (ushort port = 40000; port < 40010; port++)
        {
            byte[] syn = Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true);
            Assert.That(lab.Process(syn), Is.EqualTo(FrameReason.Forwarded));
            firstServerOfFlow[port] = Frames.Decode(syn).Ethernet.DestinationHardwareAddress;
        }
        Assert.That(firstServerOfFlow.Values.Count(m => m.Equals(Frames.Rs1Mac)), Is.EqualTo(5));
        for (int round = 0; round < 3; round++)
        {
            foreach ((ushort port, var mac) in firstServerOfFlow)
            {
                byte[] ack = Frames.Tcp(Frames.Client, port, Frames.Vip, 80, ack: true, payload: [1, 2, 3]);
                Assert.That(lab.Process(ack), Is.EqualTo(FrameReason.Forwarded));
                Assert.That(Frames.Decode(ack).Ethernet.DestinationHardwareAddress, Is.EqualTo(mac));
            }
        }
    }

    [Test]
    public void Tcp_state_and_counters_follow_the_input_only_table()
    {
        var lab = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]));
        RealServer rs1 = lab.Server(Frames.Rs1);
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true), nowMs: 0);
        Assert.That((rs1.ActiveConnections, rs1.InactiveConnections), Is.EqualTo((0, 1)), "SYN_RECV is inactive");
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true), nowMs: 10);
        Assert.That((rs1.ActiveConnections, rs1.InactiveConnections), Is.EqualTo((1, 0)), "ESTABLISHED is active");
        var entry = lab.Engine.Connections.Snapshot().Single();
        Assert.That(entry.State, Is.EqualTo(Core.Connections.TcpState.Established));
        Assert.That(entry.ExpiresAtMs, Is.EqualTo(10 + 900_000));
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, fin: true, ack: true), nowMs: 20);
        entry = lab.Engine.Connections.Snapshot().Single();
        Assert.That(entry.State, Is.EqualTo(Core.Connections.TcpState.FinWait), "INPUT_ONLY: ES + FIN = FIN_WAIT");
        Assert.That((rs1.ActiveConnections, rs1.InactiveConnections), Is.EqualTo((0, 1)));

        // FIN_WAIT lasts 120 s; then the entry goes and the counters with it.
        Assert.That(lab.Engine.ExpireConnections(20 + 119_000, budget: 1 << 20), Is.Zero);
        Assert.That(lab.Engine.ExpireConnections(20 + 120_000, budget: 1 << 20), Is.EqualTo(1));
        Assert.That((rs1.ActiveConnections, rs1.InactiveConnections), Is.EqualTo((0, 0)));
        Assert.That(lab.Engine.Connections.Count, Is.Zero);
    }

    [Test]
    public void Non_syn_without_a_connection_is_dropped_not_scheduled()
    {
        var lab = TwoServers();
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.TcpNotSyn));
        Assert.That(lab.Engine.Connections.Count, Is.Zero);
    }

    [Test]
    public void Syn_reusing_a_closed_entry_is_scheduled_afresh()
    {
        var lab = TwoServers();
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        lab.Process(syn);
        var first = Frames.Decode(syn).Ethernet.DestinationHardwareAddress;
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true)); // SYN_RECV + ACK = ESTABLISHED
        lab.Process(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, rst: true)); // ESTABLISHED + RST = CLOSE
        Assert.That(lab.Engine.Connections.Snapshot().Single().State, Is.EqualTo(Core.Connections.TcpState.Close));
        byte[] again = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        lab.Process(again);
        Assert.That(Frames.Decode(again).Ethernet.DestinationHardwareAddress, Is.Not.EqualTo(first), "rr moved on: the port was rescheduled");
        Assert.That(lab.Engine.Connections.Count, Is.EqualTo(1));
    }

    [Test]
    public void Ttl_one_is_answered_with_time_exceeded_from_the_vip()
    {
        var lab = TwoServers();
        byte[] frame = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, ttl: 1);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.IcmpTimeExceeded));
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(lab.Reply.AsSpan(0, lab.ReplyLength));
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(Frames.ClientMac));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(ip.ValidIPChecksum, Is.True);
        var icmp = ip.Extract<IcmpV4Packet>();
        Assert.That(icmp.TypeCode, Is.EqualTo(IcmpV4TypeCode.TimeExceeded));
        Assert.That(icmp.ValidIcmpChecksum, Is.True);
        // The quote is the datagram as received (TTL 1), starting with its IP header.
        byte[] quoted = icmp.PayloadData;
        Assert.That(quoted.AsSpan(0, 20).ToArray(), Is.EqualTo(frame.AsSpan(14, 20).ToArray()));
    }

    [Test]
    public void A_service_without_available_servers_answers_port_unreachable()
    {
        var lab = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 0)]));
        byte[] frame = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.IcmpPortUnreachable));
        (_, IPv4Packet ip) = Frames.Decode(lab.Reply.AsSpan(0, lab.ReplyLength));
        var icmp = ip.Extract<IcmpV4Packet>();
        Assert.That(icmp.TypeCode, Is.EqualTo(IcmpV4TypeCode.UnreachablePort));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
        Assert.That(icmp.ValidIcmpChecksum, Is.True);
    }

    [Test]
    public void Unfinished_checksum_is_completed_before_transmit()
    {
        var lab = TwoServers();
        byte[] frame = Frames.Udp(Frames.Client, 5000, Frames.Vip, 80, "datagram"u8.ToArray());
        var udpOnly = new EngineHarness(EngineHarness.Service(protocol: ServiceProtocol.Udp, servers: [(Frames.Rs1, 1)]));
        frame[14 + 20 + 6] = 0x12; // what an offloading sender leaves: a pseudo-header seed, not a checksum
        frame[14 + 20 + 7] = 0x34;
        Assert.That(udpOnly.Process(frame, flags: FrameFlags.ChecksumNotReady), Is.EqualTo(FrameReason.Forwarded));
        var udp = Frames.Decode(frame).Ip.Extract<UdpPacket>();
        Assert.That(udp.ValidUdpChecksum, Is.True);
        _ = lab;
    }

    [Test]
    public void Vlan_tag_is_kept_on_the_forwarded_frame()
    {
        var lab = TwoServers();
        byte[] frame = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, vlan: 42);
        Assert.That(lab.Process(frame), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(frame[12..16], Is.EqualTo(new byte[] { 0x81, 0x00, 0x00, 42 }));
        Assert.That(frame[18 + 8], Is.EqualTo(63), "TTL of the tagged frame's IP header");
    }

    [Test]
    public void Persistence_keeps_a_client_network_on_one_server_across_ports()
    {
        var lab = TwoServers(persistence: 300, netmask: 0xFFFFFF00);
        var macs = new HashSet<System.Net.NetworkInformation.PhysicalAddress>();
        for (ushort port = 40000; port < 40020; port++)
        {
            byte[] syn = Frames.Tcp(port % 2 == 0 ? Frames.Client : "198.18.0.77", port, Frames.Vip, 80, syn: true);
            Assert.That(lab.Process(syn), Is.EqualTo(FrameReason.Forwarded));
            macs.Add(Frames.Decode(syn).Ethernet.DestinationHardwareAddress);
        }
        Assert.That(macs, Has.Count.EqualTo(1), "both clients are in one /24: one template");
        Assert.That(lab.Server(Frames.Rs2).PersistentConnections + lab.Server(Frames.Rs1).PersistentConnections, Is.EqualTo(1));
    }

    [Test]
    public void Full_table_refuses_new_flows_and_keeps_established_ones()
    {
        var lab = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]), capacity: 4);
        for (ushort port = 1; port <= 4; port++)
        {
            Assert.That(lab.Process(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
            Assert.That(lab.Process(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded), "established");
        }
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 5, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.ConnectionTableFull));
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Engine.Counters[FrameReason.ConnectionTableFull], Is.EqualTo(1));
        Assert.That(lab.Engine.Counters.DropEntryEvicted, Is.Zero, "drop_entry never takes an established connection");
    }

    /// <summary>A SYN flood's half-open entries fill the table; a new client takes the place of one (drop_entry).</summary>
    [Test]
    public void Drop_entry_gives_a_new_connection_the_place_of_a_half_open_one_in_a_full_table()
    {
        var lab = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]), capacity: 8);
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded));
        for (ushort port = 100; port < 107; port++)
        {
            Assert.That(lab.Process(Frames.Tcp("198.18.200.1", port, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded), "spoofed SYN");
        }
        Assert.That(lab.Engine.Connections.Count, Is.EqualTo(8), "full");
        for (ushort port = 2; port <= 8; port++)
        {
            Assert.That(lab.Process(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded), "a real client's SYN");
            Assert.That(lab.Process(Frames.Tcp(Frames.Client, port, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded), "and its handshake");
        }
        Assert.That(lab.Engine.Counters.DropEntryEvicted, Is.EqualTo(7));
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded), "the first one kept");
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 20, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.ConnectionTableFull), "nothing half-open left");
        Assert.That(lab.Server(Frames.Rs1).ActiveConnections + lab.Server(Frames.Rs1).InactiveConnections, Is.EqualTo(8), "evicted entries released their counts");

        var off = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]), capacity: 4,
            new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), DropEntry = false });
        for (ushort port = 100; port < 104; port++)
        {
            off.Process(Frames.Tcp("198.18.200.1", port, Frames.Vip, 80, syn: true));
        }
        Assert.That(off.Process(Frames.Tcp(Frames.Client, 2, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.ConnectionTableFull), "drop_entry 0");
    }

    /// <summary>
    /// Persistence: an established connection marks its template ASSURED (ip_vs_control_assure_ct); drop_entry takes a
    /// flood's half-open connections and the templates only they made, never an assured one.
    /// </summary>
    [Test]
    public void Drop_entry_takes_unassured_templates_of_half_open_connections_and_keeps_assured_ones()
    {
        var lab = new EngineHarness(EngineHarness.Service(persistence: 300, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]), capacity: 6);
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true)), Is.EqualTo(FrameReason.Forwarded));
        Connection<uint> template = lab.Engine.Connections.Snapshot().Single(c => c.IsTemplate);
        Assert.That(template.Flags & ConnectionFlags.Assured, Is.EqualTo(ConnectionFlags.Assured), "confirmed by an established connection");
        // Two spoofed SYNs: each a template and a half-open connection; the table (6) is full.
        Assert.That(lab.Process(Frames.Tcp("198.18.200.1", 100, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(Frames.Tcp("198.18.200.2", 100, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Engine.Connections.Count, Is.EqualTo(6));
        // The client closes its first connection and opens another: its template and the new connection fit once
        // a flood pair is gone.
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 2, Frames.Vip, 80, syn: true)), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Engine.Counters.DropEntryEvicted, Is.GreaterThanOrEqualTo(1));
        List<Connection<uint>> left = lab.Engine.Connections.Snapshot();
        Assert.That(left.Count(c => c.IsTemplate && c.ClientAddress == Ipv4Address.Parse(Frames.Client)), Is.EqualTo(1), "the assured template stays");
        Assert.That(left.Count(c => !c.IsTemplate && c.ClientAddress == Ipv4Address.Parse(Frames.Client)), Is.EqualTo(2));
    }

    /// <summary>secure_tcp 1: above the threshold a new connection's SYN_RECV lasts 5 s, below it 60 s; 0 never, 3 always.</summary>
    [TestCase(1, 11, 60)]
    [TestCase(1, 12, 5)]
    [TestCase(0, 12, 60)]
    [TestCase(3, 0, 5)]
    public void Secure_tcp_shortens_syn_recv_while_the_table_is_fuller_than_the_threshold(int secureTcp, int alreadyOpen, int expectedSeconds)
    {
        var lab = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]), capacity: 16,
            new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), SecureTcp = secureTcp, DefenseThresholdPercent = 75 });
        for (ushort port = 100; port < 100 + alreadyOpen; port++)
        {
            Assert.That(lab.Process(Frames.Tcp("198.18.200.1", port, Frames.Vip, 80, syn: true), nowMs: 1000), Is.EqualTo(FrameReason.Forwarded));
        }
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, syn: true), nowMs: 1000), Is.EqualTo(FrameReason.Forwarded));
        // An ACK just before the timeout finds the entry; the entry is gone just after it.
        Assert.That(lab.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true, payload: [1]), nowMs: 1000 + (expectedSeconds * 1000) - 1), Is.EqualTo(FrameReason.Forwarded));
        var again = new EngineHarness(EngineHarness.Service(servers: [(Frames.Rs1, 1)]), capacity: 16,
            new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac), SecureTcp = secureTcp, DefenseThresholdPercent = 75 });
        for (ushort port = 100; port < 100 + alreadyOpen; port++)
        {
            again.Process(Frames.Tcp("198.18.200.1", port, Frames.Vip, 80, syn: true), nowMs: 1000);
        }
        again.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, syn: true), nowMs: 1000);
        Assert.That(again.Process(Frames.Tcp(Frames.Client, 1, Frames.Vip, 80, ack: true, payload: [1]), nowMs: 1000 + (expectedSeconds * 1000) + 1), Is.EqualTo(FrameReason.TcpNotSyn));
        Assert.That(again.Engine.Counters.SecureTcpShortSynRecv, Is.EqualTo(expectedSeconds == 5 ? 1 : 0));
    }

    [Test]
    public void Later_fragments_follow_the_first_and_orphans_are_dropped()
    {
        var lab = new EngineHarness(EngineHarness.Service(protocol: ServiceProtocol.Udp, servers: [(Frames.Rs1, 1), (Frames.Rs2, 1)]));
        byte[] datagram = Frames.Udp(Frames.Client, 5000, Frames.Vip, 80, new byte[64]);
        (byte[] first, byte[] second) = Fragment(datagram, firstPayload: 32);
        Assert.That(lab.Process(first), Is.EqualTo(FrameReason.Forwarded));
        Assert.That(lab.Process(second), Is.EqualTo(FrameReason.ForwardedFragment));
        Assert.That(first[..6], Is.EqualTo(second[..6]), "same server MAC");

        (_, byte[] orphan) = Fragment(Frames.Udp(Frames.Client, 5001, Frames.Vip, 80, new byte[64]), firstPayload: 32, identification: 999);
        Assert.That(lab.Process(orphan), Is.EqualTo(FrameReason.FragmentWithoutFirst));
    }

    /// <summary>Splits an unfragmented Ethernet/IPv4 frame (IHL 5) into two fragments.</summary>
    internal static (byte[] First, byte[] Second) Fragment(byte[] frame, int firstPayload, ushort identification = 4242)
    {
        byte[] ipPayload = frame[34..];
        byte[] Build(int offset, int length, bool more)
        {
            byte[] f = new byte[34 + length];
            frame.AsSpan(0, 34).CopyTo(f);
            ipPayload.AsSpan(offset, length).CopyTo(f.AsSpan(34));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(16), (ushort)(20 + length));
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(18), identification);
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(20), (ushort)((more ? 0x2000 : 0) | (offset / 8)));
            var ip = new Ipv4Header(f.AsSpan(14));
            ip.RecomputeHeaderChecksum();
            return f;
        }
        return (Build(0, firstPayload, more: true), Build(firstPayload, ipPayload.Length - firstPayload, more: false));
    }
}
