using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux.Bpf;
using UserspaceDr.Tests.Linux.Bpf;

namespace UserspaceDr.Tests.Io;

/// <summary>
/// The fanout steering program, run through the interpreter as the kernel runs it (skb->data at the network header):
/// both directions of a NAT connection, and the ICMP errors about it, must pick the same worker.
/// </summary>
public class FanoutSteeringTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.0.100");
    private static readonly uint Rip = Ipv4Address.Parse("198.19.1.13");
    private static readonly uint Balancer = Ipv4Address.Parse("198.19.1.1");
    private static readonly uint Router = Ipv4Address.Parse("198.18.0.254");

    private static IEnumerable<uint> Clients(int count) =>
        Enumerable.Range(0, count).Select(i => Ipv4Address.Parse("198.18.64.0") + (uint)(i * 7 + 1));

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(8)]
    public void Request_reply_and_icmp_errors_of_one_connection_pick_the_same_worker(int workers)
    {
        ClassicBpfProgram program = FanoutSteering.Build([Vip, Vip + 1], workers, ownAddresses: [Balancer]);
        Assert.Multiple(() =>
        {
            foreach (uint client in Clients(200))
            {
                uint expected = (uint)FanoutSteering.WorkerOf(client, workers);
                Assert.That(Run(program, Ip(client, Vip, IpProtocol.Tcp, Ports(40000, 80))), Is.EqualTo(expected), "request");
                Assert.That(Run(program, Ip(Rip, client, IpProtocol.Tcp, Ports(8080, 40000))), Is.EqualTo(expected), "NAT reply");
                Assert.That(Run(program, Ip(Rip, client, IpProtocol.Udp, Ports(53, 40000))), Is.EqualTo(expected), "NAT UDP reply");
                Assert.That(Run(program, Ip(Rip, client, IpProtocol.Icmp, Icmp(Ip(client, Rip, IpProtocol.Udp, Ports(40000, 53))))),
                    Is.EqualTo(expected), "ICMP error a real server sends to the client");
                Assert.That(Run(program, Ip(Router, Vip, IpProtocol.Icmp, Icmp(Ip(Vip, client, IpProtocol.Tcp, Ports(80, 40000))))),
                    Is.EqualTo(expected), "ICMP error to the VIP about a reply VIP → client");
                Assert.That(Run(program, Ip(Router, Balancer, IpProtocol.Icmp,
                    Icmp(Ip(Balancer, Rip, 4, Ip(client, Vip, IpProtocol.Tcp, Ports(40000, 80)))))),
                    Is.EqualTo(expected), "fragmentation needed about a tunnelled packet");
                byte[] inner = Ip(client, Vip, IpProtocol.Tcp, Ports(40000, 80));
                Assert.That(Run(program, Ip(Router, Balancer, IpProtocol.Icmp, Icmp(Ip(Balancer, Rip, 47, [0, 0, 8, 0, .. inner])))),
                    Is.EqualTo(expected), "fragmentation needed about a GRE packet");
                Assert.That(Run(program, Ip(Router, Balancer, IpProtocol.Icmp, Icmp(Ip(Balancer, Rip, 47, [0x80, 0, 8, 0, 0, 0, 0, 0, .. inner])))),
                    Is.EqualTo(expected), "fragmentation needed about a GRE packet with its checksum");
                Assert.That(Run(program, Ip(Router, Balancer, IpProtocol.Icmp, Icmp(Ip(Balancer, Rip, IpProtocol.Udp, [0xC0, 0, 0x17, 0xC0, 0, 0, 0, 0, 0, 4, 0, 0, .. inner])))),
                    Is.EqualTo(expected), "fragmentation needed about a GUE packet, addressed to the balancer");
                Assert.That(Run(program, Fragment(Ip(client, Vip, IpProtocol.Udp, Ports(40000, 53)))), Is.EqualTo(expected), "a later fragment");
            }
        });
    }

    [Test]
    public void Clients_spread_over_the_workers()
    {
        const int workers = 4;
        ClassicBpfProgram program = FanoutSteering.Build([Vip], workers);
        int[] counts = new int[workers];
        foreach (uint client in Clients(4000))
        {
            counts[Run(program, Ip(client, Vip, IpProtocol.Udp, Ports(1234, 53)))]++;
        }
        Assert.That(counts, Has.All.GreaterThan(4000 / workers * 3 / 4), string.Join(",", counts));
    }

    [Test]
    public void A_persistence_netmask_keeps_a_client_network_on_one_worker()
    {
        const uint mask = 0xFFFFFF00;
        ClassicBpfProgram program = FanoutSteering.Build([Vip], 8, mask);
        uint network = Ipv4Address.Parse("198.18.77.0");
        uint[] workers = [.. Enumerable.Range(1, 254).Select(i => Run(program, Ip(network + (uint)i, Vip, IpProtocol.Tcp, Ports(1000, 443))))];
        Assert.That(workers.Distinct().Count(), Is.EqualTo(1));
        Assert.That(workers[0], Is.EqualTo((uint)FanoutSteering.WorkerOf(network, 8, mask)));
    }

    [Test]
    public void Ipv6_clients_spread_by_their_source_and_a_persistence_prefix_keeps_a_network_together()
    {
        const int workers = 4;
        ClassicBpfProgram program = FanoutSteering.Build([Vip], workers, ipv6Vips: [Vip6]);
        UInt128 network = InetAddress.Parse("2001:2:0:1::").IPv6;
        int[] counts = new int[workers];
        for (int i = 1; i <= 4000; i++)
        {
            UInt128 client = network + ((UInt128)(uint)i << 64) + (UInt128)(uint)(i * 7919);
            uint worker = ClassicBpfInterpreter.Run(program, Ipv6(client), networkOffset: 0, protocol: 0x86DD);
            Assert.That(worker, Is.EqualTo((uint)FanoutSteering.WorkerOf(client, workers)), "the program and WorkerOf agree");
            counts[worker]++;
        }
        Assert.That(counts, Has.All.GreaterThan(4000 / workers * 3 / 4), string.Join(",", counts));

        ClassicBpfProgram persistent = FanoutSteering.Build([Vip], 8, ipv6ClientPrefix: 64, ipv6Vips: [Vip6]);
        uint[] picked = [.. Enumerable.Range(1, 200).Select(i =>
            ClassicBpfInterpreter.Run(persistent, Ipv6(network + (UInt128)(uint)(i * 65537)), networkOffset: 0, protocol: 0x86DD))];
        Assert.That(picked.Distinct().Count(), Is.EqualTo(1), "one /64, one worker");
        Assert.That(picked[0], Is.EqualTo((uint)FanoutSteering.WorkerOf(network + 12345, 8, 64)));
    }

    private static readonly UInt128 Vip6 = InetAddress.Parse("2001:2::100").IPv6;

    [TestCase(3)]
    [TestCase(8)]
    public void An_ipv6_nat_reply_and_icmpv6_errors_about_the_connection_pick_the_clients_worker(int workers)
    {
        ClassicBpfProgram program = FanoutSteering.Build([Vip], workers, ipv6ClientPrefix: 128, ipv6Vips: [Vip6 + 7, Vip6]);
        UInt128 rip = InetAddress.Parse("2001:2:1::13").IPv6, router = InetAddress.Parse("2001:2::fe").IPv6;
        Assert.Multiple(() =>
        {
            for (int i = 1; i <= 300; i++)
            {
                UInt128 client = InetAddress.Parse("2001:2:0:9::").IPv6 + (UInt128)(uint)(i * 104729);
                uint expected = (uint)FanoutSteering.WorkerOf(client, workers);
                Assert.That(Run6(program, Ipv6(client)), Is.EqualTo(expected), "request");
                Assert.That(Run6(program, Ipv6(rip, client)), Is.EqualTo(expected), "NAT reply RIP → client");
                Assert.That(Run6(program, Icmpv6(rip, client, quotedSource: client, quotedDestination: rip)), Is.EqualTo(expected), "server's error to the client");
                Assert.That(Run6(program, Icmpv6(router, Vip6, quotedSource: Vip6, quotedDestination: client)), Is.EqualTo(expected), "error to the VIP about a reply");
            }
        });
    }

    private static uint Run6(ClassicBpfProgram program, byte[] packet) => ClassicBpfInterpreter.Run(program, packet, networkOffset: 0, protocol: 0x86DD);

    /// <summary>An IPv6 TCP packet from <paramref name="source"/> to <paramref name="destination"/> (2001:2::100 by default; network header first).</summary>
    private static byte[] Ipv6(UInt128 source, UInt128? destination = null)
    {
        byte[] packet = new byte[40 + 20];
        packet[0] = 0x60;
        packet[6] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt128BigEndian(packet.AsSpan(8), source);
        BinaryPrimitives.WriteUInt128BigEndian(packet.AsSpan(24), destination ?? Vip6);
        return packet;
    }

    /// <summary>An ICMPv6 Packet Too Big from <paramref name="source"/> to <paramref name="destination"/> quoting a TCP packet.</summary>
    private static byte[] Icmpv6(UInt128 source, UInt128 destination, UInt128 quotedSource, UInt128 quotedDestination)
    {
        byte[] quoted = Ipv6(quotedSource, quotedDestination);
        byte[] packet = new byte[40 + 8 + quoted.Length];
        packet[0] = 0x60;
        packet[6] = Ipv6NextHeader.Icmpv6;
        BinaryPrimitives.WriteUInt128BigEndian(packet.AsSpan(8), source);
        BinaryPrimitives.WriteUInt128BigEndian(packet.AsSpan(24), destination);
        packet[40] = Icmpv6Type.PacketTooBig;
        quoted.CopyTo(packet, 48);
        return packet;
    }

    [Test]
    public void Non_ipv4_and_short_frames_go_to_worker_zero()
    {
        ClassicBpfProgram program = FanoutSteering.Build([Vip], 8);
        Assert.Multiple(() =>
        {
            Assert.That(ClassicBpfInterpreter.Run(program, new byte[28], networkOffset: 0, protocol: 0x0806), Is.Zero);
            Assert.That(ClassicBpfInterpreter.Run(program, new byte[8], networkOffset: 0), Is.Zero);
        });
    }

    [Test]
    public void Loads_are_relative_to_the_network_header_wherever_data_points()
    {
        // The same program over a frame with its MAC header in front (as a socket filter would see it) picks the same.
        ClassicBpfProgram program = FanoutSteering.Build([Vip], 5);
        uint client = Ipv4Address.Parse("198.18.3.3");
        byte[] packet = Ip(client, Vip, IpProtocol.Tcp, Ports(1, 2));
        byte[] frame = [.. new byte[14], .. packet];
        Assert.That(ClassicBpfInterpreter.Run(program, frame, networkOffset: 14), Is.EqualTo(Run(program, packet)));
    }

    private static uint Run(ClassicBpfProgram program, byte[] packet) => ClassicBpfInterpreter.Run(program, packet, networkOffset: 0);

    private static byte[] Ports(ushort source, ushort destination)
    {
        byte[] ports = new byte[20];
        BinaryPrimitives.WriteUInt16BigEndian(ports, source);
        BinaryPrimitives.WriteUInt16BigEndian(ports.AsSpan(2), destination);
        return ports;
    }

    private static byte[] Icmp(byte[] quoted) => [3, 4, 0, 0, 0, 0, 5, 0xDC, .. quoted];

    private static byte[] Ip(uint source, uint destination, byte protocol, byte[] payload)
    {
        byte[] packet = new byte[20 + payload.Length];
        packet[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)packet.Length);
        packet[8] = 64;
        packet[9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(12), source);
        BinaryPrimitives.WriteUInt32BigEndian(packet.AsSpan(16), destination);
        payload.CopyTo(packet, 20);
        return packet;
    }

    private static byte[] Fragment(byte[] packet)
    {
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(6), 185); // offset 1480, no ports in it
        packet.AsSpan(20).Fill(0xAB);
        return packet;
    }
}
