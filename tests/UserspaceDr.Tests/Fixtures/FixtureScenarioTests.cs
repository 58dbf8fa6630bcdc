using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using PacketDotNet.Utils;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.CaptureFiles;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>What each fixture is about, asserted on udr's output decoded with PacketDotNet.</summary>
public class FixtureScenarioTests
{
    private static readonly PhysicalAddress Rs1 = FixtureCatalog.Rs1Mac;
    private static readonly PhysicalAddress Rs2 = FixtureCatalog.Rs2Mac;

    private static FixtureReplay Replay(string name) => FixtureReplay.Run(FixtureCatalog.Get(name));

    private static PhysicalAddress ServerOf(byte[] frame) => DecodedFrame.Ethernet(frame).DestinationHardwareAddress;

    private static (ushort SourcePort, bool Syn) TcpOf(byte[] frame)
    {
        TcpPacket tcp = DecodedFrame.Ethernet(frame).Extract<TcpPacket>();
        return (tcp.SourcePort, tcp.Synchronize);
    }

    private static string Names(IEnumerable<PhysicalAddress> macs) =>
        string.Concat(macs.Select(m => m.Equals(Rs1) ? "1" : m.Equals(Rs2) ? "2" : "?"));

    [Test]
    public void Wrr_3_to_1_sends_exactly_3000_and_1000_connections_one_rs2_in_every_four()
    {
        var replay = Replay("dr-wrr-distribution");
        Assert.That(replay.Input, Has.Count.EqualTo(4000));
        Assert.That(replay.Output, Has.Count.EqualTo(4000), "every SYN forwarded");
        PhysicalAddress[] servers = [.. replay.Output.Select(o => ServerOf(o.Data))];
        Assert.That(servers.Count(s => s.Equals(Rs1)), Is.EqualTo(3000), "rs1 (weight 3)");
        Assert.That(servers.Count(s => s.Equals(Rs2)), Is.EqualTo(1000), "rs2 (weight 1)");
        for (int i = 0; i < servers.Length; i += 4)
        {
            Assert.That(servers.Skip(i).Take(4).Count(s => s.Equals(Rs2)), Is.EqualTo(1), $"SYNs {i + 1}..{i + 4}: wrr interleaves, one rs2 in each cycle of 4");
        }
        Assert.That(replay.Server(FixtureCatalog.Rs1).InactiveConnections, Is.EqualTo(3000), "rs1's connections (SYN_RECV is inactive)");
        Assert.That(replay.Server(FixtureCatalog.Rs2).InactiveConnections, Is.EqualTo(1000), "rs2's connections");
    }

    [Test]
    public void Wrr_picks_follow_the_kernel_order_after_a_rules_load()
    {
        var replay = Replay("dr-wrr-distribution");
        string order = Names(replay.Output.Take(12).Select(o => ServerOf(o.Data)));
        Assert.That(order, Is.EqualTo("211121112111"), "list [rs2, rs1], cw = 1 after -a rs2: rs2 first, then rs1 x3");
        Assert.That(Names(replay.Output.Select(o => ServerOf(o.Data))), Is.EqualTo(Names(replay.Expected.Select(e => ServerOf(e.Data)))));
    }

    [Test]
    public void Udp_connection_silent_for_more_than_300_s_is_scheduled_afresh()
    {
        var replay = Replay("dr-udp-timeout");
        Assert.That(Names(replay.Output.Select(o => ServerOf(o.Data))), Is.EqualTo("212222"),
            "A rs2, B rs1, A (100 s) rs2, B (350 s, expired at 300 s) scheduled afresh: rs2, A (360 s) rs2, B rs2");
    }

    [Test]
    public void Udp_connection_refreshed_within_300_s_keeps_its_server()
    {
        var replay = Replay("dr-udp-timeout");
        PcapRecord[] flowA = [.. replay.Output.Where(o => DecodedFrame.Ethernet(o.Data).Extract<UdpPacket>().SourcePort == 50001)];
        Assert.That(flowA, Has.Length.EqualTo(3));
        Assert.That(Names(flowA.Select(o => ServerOf(o.Data))), Is.EqualTo("222"), "A at 0 s, 100 s and 360 s (refreshed at 100 s)");
    }

    [Test]
    public void Udp_flows_stick_to_the_server_of_their_first_datagram()
    {
        var replay = Replay("dr-udp");
        var flows = replay.Output
            .Select(o => (Ip: DecodedFrame.Ethernet(o.Data).Extract<IPv4Packet>(), Server: ServerOf(o.Data)))
            .GroupBy(x => (x.Ip.SourceAddress.ToString(), x.Ip.Extract<UdpPacket>().SourcePort))
            .ToList();
        Assert.That(flows, Has.Count.EqualTo(6), "six flows (198.18.0.2:50001 is its own flow)");
        foreach (var flow in flows)
        {
            Assert.That(flow.Count(), Is.EqualTo(4), $"{flow.Key}: four datagrams");
            Assert.That(flow.Select(x => x.Server).Distinct().Count(), Is.EqualTo(1), $"{flow.Key}: one server for the whole flow");
        }
        Assert.That(Names(flows.Select(f => f.First().Server)), Is.EqualTo("212121"), "rr over [rs2, rs1], newest first");
    }

    [Test]
    public void Tcp_segments_follow_their_connection_and_reused_ports_are_scheduled_as_ipvs_does()
    {
        var replay = Replay("dr-tcp");
        long reuseTime = replay.Input[0].TimestampMicroseconds + 1_000_000; // the reused-port SYNs come 1 s later
        foreach ((PcapRecord output, int index) in replay.OutputsWithInputs())
        {
            EthernetPacket ethernet = DecodedFrame.Ethernet(output.Data);
            if (ethernet.Extract<IPv4Packet>().Protocol == PacketDotNet.ProtocolType.Icmp)
            {
                Assert.That(ServerOf(output.Data), Is.EqualTo(Rs1), "the ICMP error about c2's reply goes to c2's server");
                continue;
            }
            (ushort port, _) = TcpOf(output.Data);
            bool reused = output.TimestampMicroseconds >= reuseTime;
            PhysicalAddress expected = (port, reused) switch
            {
                (40001, _) => Rs2,       // c1; its port reused while FIN_WAIT: same connection
                (40002, false) => Rs1,   // c2
                (40002, true) => Rs2,    // c2 ended with RST (CLOSE): scheduled afresh
                (40003, false) => Rs2,   // c3
                (40003, true) => Rs1,    // c3 ended in TIME_WAIT: scheduled afresh
                _ => throw new AssertionException($"unexpected output from port {port}"),
            };
            Assert.That(ServerOf(output.Data), Is.EqualTo(expected), $"input frame {index + 1}: port {port}{(reused ? " (reused)" : "")}");
        }
    }

    [Test]
    public void Fragments_go_where_their_first_fragment_went_and_reassemble_to_valid_datagrams()
    {
        var replay = Replay("dr-fragments");
        var datagrams = replay.Output
            .Select(o => o.Data)
            .Where(DecodedFrame.IsFragment)
            .GroupBy(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 4)))
            .ToDictionary(g => g.Key, g => g.ToList());
        Assert.That(datagrams.Keys, Is.EquivalentTo(new ushort[] { 0x1001, 0x2001, 0x1002 }), "the orphan (ID 0x7777) is not forwarded");
        Assert.That(Names(datagrams[0x1001].Select(ServerOf)), Is.EqualTo("222"), "X (3 fragments): rs2");
        Assert.That(Names(datagrams[0x2001].Select(ServerOf)), Is.EqualTo("11"), "Y (2 fragments): rs1");
        Assert.That(Names(datagrams[0x1002].Select(ServerOf)), Is.EqualTo("22"), "X's second datagram: its flow's server");
        foreach ((ushort id, List<byte[]> fragments) in datagrams)
        {
            UdpPacket udp = Reassemble(fragments);
            Assert.That(udp.ValidUdpChecksum, Is.True, $"ID 0x{id:x4}: the reassembled datagram's UDP checksum");
            Assert.That(udp.DestinationPort, Is.EqualTo(5000));
        }
        PcapRecord last = replay.Output[^1];
        Assert.That(DecodedFrame.IsFragment(last.Data), Is.False);
        Assert.That(ServerOf(last.Data), Is.EqualTo(Rs1), "Y's unfragmented datagram: Y's connection");
    }

    /// <summary>Puts fragments (in offset order) back together as the real server's kernel would.</summary>
    private static UdpPacket Reassemble(List<byte[]> fragments)
    {
        var ordered = fragments.OrderBy(f => BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(14 + 6)) & 0x1FFF).ToList();
        byte[] first = ordered[0];
        int headerLength = (first[14] & 0x0F) * 4;
        var data = new List<byte>();
        foreach (byte[] fragment in ordered)
        {
            int offset = (BinaryPrimitives.ReadUInt16BigEndian(fragment.AsSpan(14 + 6)) & 0x1FFF) * 8;
            Assert.That(offset, Is.EqualTo(data.Count), "fragments are contiguous");
            int total = BinaryPrimitives.ReadUInt16BigEndian(fragment.AsSpan(14 + 2));
            data.AddRange(fragment.AsSpan(14 + headerLength, total - headerLength).ToArray());
        }
        byte[] datagram = [.. first.AsSpan(14, headerLength), .. data];
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(2), (ushort)datagram.Length);
        BinaryPrimitives.WriteUInt16BigEndian(datagram.AsSpan(6), 0);
        var ip = new IPv4Packet(new ByteArraySegment(datagram));
        return ip.Extract<UdpPacket>();
    }

    [Test]
    public void Partial_checksums_arrive_unfinished_and_leave_finished()
    {
        var replay = Replay("dr-checksum-partial");
        foreach (PcapRecord input in replay.Input)
        {
            IPv4Packet ip = DecodedFrame.Ethernet(input.Data).Extract<IPv4Packet>();
            bool valid = ip.Protocol == PacketDotNet.ProtocolType.Tcp ? ip.Extract<TcpPacket>().ValidTcpChecksum : ip.Extract<UdpPacket>().ValidUdpChecksum;
            Assert.That(valid, Is.False, "the fixture's inputs carry only the pseudo-header sum");
        }
        Assert.That(replay.Output, Has.Count.EqualTo(replay.Input.Count));
        foreach (PcapRecord output in replay.Output)
        {
            IPv4Packet ip = DecodedFrame.Ethernet(output.Data).Extract<IPv4Packet>();
            bool valid = ip.Protocol == PacketDotNet.ProtocolType.Tcp ? ip.Extract<TcpPacket>().ValidTcpChecksum : ip.Extract<UdpPacket>().ValidUdpChecksum;
            Assert.That(valid, Is.True, "udr finished the checksum");
        }
    }

    [Test]
    public void Malformed_frames_create_no_connection_and_do_not_move_the_scheduler()
    {
        var replay = Replay("dr-malformed");
        Assert.That(replay.Output, Has.Count.EqualTo(2));
        Assert.That(ServerOf(replay.Output[0].Data), Is.EqualTo(Rs2), "the first valid SYN gets rr's first pick");
        Assert.That(TcpOf(replay.Output[0].Data), Is.EqualTo(((ushort)43000, true)));
        Assert.That(replay.Output[1].Data, Has.Length.EqualTo(60), "the padded frame keeps its padding");
        Assert.That(ServerOf(replay.Output[1].Data), Is.EqualTo(Rs1));
        int connections = replay.Result.Rules.Services.SelectMany(s => s.Destinations).Sum(d => d.ActiveConnections + d.InactiveConnections);
        Assert.That(connections, Is.EqualTo(2), "only the two valid SYNs made connections");
    }

    [Test]
    public void Ttl_expiry_is_answered_after_scheduling_as_ipvs_does()
    {
        var replay = Replay("dr-ttl");
        FrameReason[] reasons = [.. replay.Result.Reasons];
        Assert.That(reasons, Is.EqualTo(new[]
        {
            FrameReason.IcmpTimeExceeded, FrameReason.Forwarded, FrameReason.Forwarded, FrameReason.IcmpTimeExceeded,
            FrameReason.IcmpTimeExceeded, FrameReason.IcmpTimeExceeded,
        }));
        byte[] ttl2 = replay.Output[1].Data;
        Assert.That(DecodedFrame.Ethernet(ttl2).Extract<IPv4Packet>().TimeToLive, Is.EqualTo(1), "TTL 2 leaves with TTL 1");
        Assert.That(ServerOf(ttl2), Is.EqualTo(Rs1), "rr's second pick: the TTL-1 SYN had taken the first");
        Assert.That(ServerOf(replay.Output[2].Data), Is.EqualTo(Rs2), "the TTL-1 SYN's connection was kept");
        IcmpV4Packet udpQuote = DecodedFrame.Ethernet(replay.Output[4].Data).Extract<IcmpV4Packet>();
        Assert.That(udpQuote.Bytes.Length - 8, Is.EqualTo(548), "a 1028-byte datagram is quoted up to 548 bytes");
    }

    [Test]
    public void Vlan_tags_survive_forwarding_and_replies()
    {
        var replay = Replay("dr-vlan");
        foreach ((PcapRecord output, int index) in replay.OutputsWithInputs())
        {
            byte[] input = replay.Input[index].Data;
            Assert.That(BinaryPrimitives.ReadUInt16BigEndian(output.Data.AsSpan(12)), Is.EqualTo(0x8100), $"input frame {index + 1}: still tagged");
            Assert.That(output.Data[14..16], Is.EqualTo(input[14..16]), $"input frame {index + 1}: same TCI (priority and VLAN ID)");
        }
        Assert.That(replay.Result.Reasons, Does.Contain(FrameReason.IcmpTimeExceeded));
    }

    [Test]
    public void Ip_options_are_kept()
    {
        var replay = Replay("dr-ip-options");
        int[] headerLengths = [.. replay.Output.Select(o => (o.Data[14] & 0x0F) * 4)];
        Assert.That(headerLengths, Is.EqualTo(new[] { 24, 24, 24, 60, 32 }));
        Assert.That(replay.Output[0].Data[34..38], Is.EqualTo(new byte[] { 0x94, 0x04, 0x00, 0x00 }), "Router Alert");
    }

    [Test]
    public void A_service_without_a_usable_server_answers_port_unreachable_and_keeps_no_connection()
    {
        var replay = Replay("dr-no-server");
        Assert.That(replay.Output, Has.Count.EqualTo(3));
        foreach (PcapRecord output in replay.Output)
        {
            IPv4Packet ip = DecodedFrame.Ethernet(output.Data).Extract<IPv4Packet>();
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(FixtureCatalog.Vip)));
            Assert.That(ip.Extract<IcmpV4Packet>().TypeCode, Is.EqualTo(IcmpV4TypeCode.UnreachablePort));
            Assert.That(ip.Extract<TcpPacket>(), Is.Null, "never a TCP RST");
        }
        RealServer quiesced = replay.Server(FixtureCatalog.Rs1);
        Assert.That(quiesced.ActiveConnections + quiesced.InactiveConnections, Is.Zero);
    }

    [Test]
    public void Traffic_not_for_a_virtual_service_produces_nothing()
    {
        var replay = Replay("not-for-us");
        Assert.That(replay.Expected, Is.Empty, "the expected capture is empty");
        Assert.That(replay.Output, Is.Empty);
        Verdict[] verdicts = [.. replay.Result.Reasons.Select(FrameReasons.VerdictOf)];
        Assert.That(verdicts, Does.Not.Contain(Verdict.Transmit).And.Not.Contain(Verdict.Reply));
    }
}
