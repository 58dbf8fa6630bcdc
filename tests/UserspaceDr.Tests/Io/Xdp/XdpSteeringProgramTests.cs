using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.Xdp;
using static UserspaceDr.Tests.Io.FilterTestFrames;

namespace UserspaceDr.Tests.Io.Xdp;

/// <summary>
/// The XDP steering program's decisions, run through an eBPF interpreter (no root needed); the lab test
/// <c>XskSocketTests</c> runs the same program in the kernel. Redirected: what the engine handles; passed: the rest.
/// </summary>
public class XdpSteeringProgramTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.0.100");
    private static readonly uint Rip = Ipv4Address.Parse("198.19.1.13");
    private static readonly uint Own = Ipv4Address.Parse("198.19.1.1");
    private static readonly uint Client = Ipv4Address.Parse("198.18.0.1");
    private static readonly UInt128 Vip6 = InetAddress.Parse("2001:2::100").IPv6;
    private static readonly UInt128 Rip6 = InetAddress.Parse("2001:2:1::13").IPv6;
    private static readonly UInt128 Client6 = InetAddress.Parse("2001:2::1").IPv6;

    private static readonly uint GueServer = Ipv4Address.Parse("198.19.1.14");
    private static readonly uint GreServer = Ipv4Address.Parse("198.19.1.15");

    private static readonly XdpSteeringMaps Maps = new(Destinations: 3, NatServers: 4, OwnAddresses: 5, Ipv6Destinations: 6, Ipv6NatServers: 7, Sockets: 8,
        TunnelServers: 9);

    private static readonly EbpfInterpreter Program = new(XdpSteeringProgram.Build(Maps), new Dictionary<int, EbpfInterpreter.HashMap>
    {
        [Maps.Destinations] = Map(4, (Key(Vip), XdpSteeringProgram.ArpTarget)),
        [Maps.NatServers] = Map(4, (Key(Rip), 0)),
        [Maps.OwnAddresses] = Map(4, (Key(Own), 0)),
        [Maps.Ipv6Destinations] = Map(16, (Key(Vip6), XdpSteeringProgram.ArpTarget)),
        [Maps.Ipv6NatServers] = Map(16, (Key(Rip6), 0)),
        [Maps.TunnelServers] = Map(8, (XdpSteeringProgram.TunnelServerKey(GueServer, IpProtocol.Udp, 6080), 0),
            (XdpSteeringProgram.TunnelServerKey(GreServer, 47, 0), 0)),
    });

    [Test]
    public void Frames_to_a_vip_go_to_the_socket_of_their_queue_tagged_or_not_and_others_to_the_kernel()
    {
        Assert.Multiple(() =>
        {
            foreach (bool tagged in new[] { false, true })
            {
                Assert.That(Program.Run(Packet(Client, Vip, IpProtocol.Tcp, tagged), queue: 3), Is.EqualTo(Redirect(3)), $"tagged={tagged}");
                Assert.That(Program.Run(Packet(Client, Own, IpProtocol.Tcp, tagged)), Is.EqualTo(Pass), "the balancer's own traffic");
                Assert.That(Program.Run(Ipv6Frame(Vip6, IpProtocol.Udp, tagged, source: Client6)), Is.EqualTo(Redirect(0)));
                Assert.That(Program.Run(Ipv6Frame(Vip6 + 1, IpProtocol.Udp, tagged, source: Client6)), Is.EqualTo(Pass));
            }
            Assert.That(Program.Run(Packet(Client, Vip, IpProtocol.Tcp, tagged: false)[..30]), Is.EqualTo(Pass), "a frame too short for its header");
            Assert.That(Program.Run(new byte[10]), Is.EqualTo(Pass), "shorter than an Ethernet header");
        });
    }

    [Test]
    public void Arp_and_neighbor_solicitations_are_taken_only_for_a_vip()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Program.Run(Arp(Vip)), Is.EqualTo(Redirect(0)));
            Assert.That(Program.Run(Arp(Own)), Is.EqualTo(Pass), "the kernel answers for its own addresses");
            Assert.That(Program.Run(Arp(Rip)), Is.EqualTo(Pass));
            Assert.That(Program.Run(Solicitation(Vip6)), Is.EqualTo(Redirect(0)));
            Assert.That(Program.Run(Solicitation(Client6)), Is.EqualTo(Pass));
        });
    }

    [Test]
    public void What_a_nat_server_sends_is_taken_when_it_can_be_a_reply_or_an_error()
    {
        Assert.Multiple(() =>
        {
            foreach (byte protocol in new[] { IpProtocol.Tcp, IpProtocol.Udp, IpProtocol.Icmp })
            {
                Assert.That(Program.Run(Packet(Rip, Client, protocol, tagged: false)), Is.EqualTo(Redirect(0)), $"protocol {protocol}");
            }
            Assert.That(Program.Run(Packet(Rip, Client, 47, tagged: false)), Is.EqualTo(Pass), "GRE: nothing udr translates");
            Assert.That(Program.Run(Packet(Rip + 1, Client, IpProtocol.Tcp, tagged: false)), Is.EqualTo(Pass), "another source");
            foreach (byte nextHeader in new[] { IpProtocol.Tcp, IpProtocol.Udp, Ipv6NextHeader.Icmpv6, Ipv6NextHeader.Fragment })
            {
                Assert.That(Program.Run(Ipv6Frame(Client6, nextHeader, tagged: false, source: Rip6)), Is.EqualTo(Redirect(0)), $"next header {nextHeader}");
            }
            Assert.That(Program.Run(Ipv6Frame(Client6, Ipv6NextHeader.HopByHop, tagged: false, source: Rip6)), Is.EqualTo(Pass));
        });
    }

    [Test]
    public void Icmp_to_the_balancer_is_taken_only_when_it_quotes_a_tunnelled_packet()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Program.Run(IcmpQuoting(Own, 4)), Is.EqualTo(Redirect(0)), "fragmentation needed about IP-in-IP");
            Assert.That(Program.Run(IcmpQuoting(Own, 41)), Is.EqualTo(Redirect(0)), "about IPv6 in IPv4");
            Assert.That(Program.Run(IcmpQuoting(Own, IpProtocol.Tcp)), Is.EqualTo(Pass), "about the balancer's own TCP: the kernel's");
            Assert.That(Program.Run(IcmpQuoting(Client, 4)), Is.EqualTo(Pass), "not to the balancer");
            Assert.That(Program.Run(IcmpQuoting(Own, 4)[..60]), Is.EqualTo(Pass), "the quote cut short");
        });
    }

    [Test]
    public void Icmp_to_the_balancer_quoting_gue_or_gre_is_taken_only_for_a_tunnel_server_of_udr_s()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Program.Run(IcmpQuoting(Own, IpProtocol.Udp, GueServer, 6080)), Is.EqualTo(Redirect(0)), "about GUE to its server and port");
            Assert.That(Program.Run(IcmpQuoting(Own, 47, GreServer)), Is.EqualTo(Redirect(0)), "about GRE to its server");
            Assert.That(Program.Run(IcmpQuoting(Own, IpProtocol.Udp, GueServer, 53)), Is.EqualTo(Pass), "the balancer's own DNS to that host");
            Assert.That(Program.Run(IcmpQuoting(Own, IpProtocol.Udp, GreServer, 6080)), Is.EqualTo(Pass), "not a GUE server");
            Assert.That(Program.Run(IcmpQuoting(Own, 47, GueServer)), Is.EqualTo(Pass), "the kernel's own GRE to a host udr sends GUE");
            Assert.That(Program.Run(IcmpQuoting(Client, 47, GreServer)), Is.EqualTo(Pass), "not to the balancer");
            Assert.That(Program.Run(IcmpQuoting(Own, IpProtocol.Udp, GueServer, 6080)[..(14 + 20 + 8 + 20 + 3)]), Is.EqualTo(Pass),
                "the quoted UDP header cut short");
        });
    }

    [Test]
    public void The_assembler_encodes_as_the_instruction_set_says_and_resolves_jumps()
    {
        ulong[] code = new EbpfAssembler()
            .Move(EbpfRegister.R0, 2)
            .JumpIfEqual(EbpfRegister.R1, 7, "end")
            .LoadMap(EbpfRegister.R1, 9)
            .Label("end")
            .Exit()
            .Build();
        Assert.Multiple(() =>
        {
            Assert.That(code[0], Is.EqualTo(0x0000_0002_0000_00b7UL), "mov r0, 2");
            Assert.That(code[1], Is.EqualTo(0x0000_0007_0002_0115UL), "jeq r1, 7, +2 (over the two-word map load)");
            Assert.That(code[2], Is.EqualTo(0x0000_0009_0000_1118UL), "ld_imm64 r1, map 9 (src = BPF_PSEUDO_MAP_FD)");
            Assert.That(code[3], Is.Zero, "its second word");
            Assert.That(code[4], Is.EqualTo(0x95UL), "exit");
        });
        Assert.That(() => new EbpfAssembler().Goto("nowhere").Build(), Throws.InvalidOperationException);
        Assert.That(() => new EbpfAssembler().Label("twice").Label("twice"), Throws.InvalidOperationException);
    }

    private static readonly EbpfInterpreter.Outcome Pass = new(2, false, 0);

    private static EbpfInterpreter.Outcome Redirect(uint queue) => new(4, true, queue);

    private static EbpfInterpreter.HashMap Map(int keyLength, params (byte[] Key, byte Value)[] entries) =>
        new(keyLength, entries.ToDictionary(e => Convert.ToHexString(e.Key), e => e.Value));

    private static byte[] Key(uint address)
    {
        byte[] key = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(key, address);
        return key;
    }

    private static byte[] Key(UInt128 address)
    {
        byte[] key = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(key, address);
        return key;
    }

    private static byte[] Arp(uint target)
    {
        byte[] frame = new byte[14 + 28];
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Arp);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(14 + 24), target);
        return frame;
    }

    private static byte[] Solicitation(UInt128 target)
    {
        byte[] frame = Ipv6Frame(InetAddress.Parse("ff02::1:ff00:100").IPv6, Ipv6NextHeader.Icmpv6, tagged: false, icmpType: 135, source: Client6);
        BinaryPrimitives.WriteUInt128BigEndian(frame.AsSpan(14 + 40 + 8), target);
        return frame;
    }

    /// <summary>An ICMP fragmentation-needed to <paramref name="destination"/> quoting a packet of <paramref name="quotedProtocol"/>.</summary>
    private static byte[] IcmpQuoting(uint destination, byte quotedProtocol, uint quotedDestination = 0, ushort quotedPort = 0)
    {
        byte[] frame = new byte[14 + 20 + 8 + 20 + 8];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(42 + 16), quotedDestination);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(42 + 20 + 2), quotedPort);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Ipv4);
        frame[14] = 0x45;
        frame[14 + 9] = IpProtocol.Icmp;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(14 + 12), Ipv4Address.Parse("198.19.1.254")); // a router on the way
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(14 + 16), destination);
        frame[34] = 3;
        frame[35] = 4;
        frame[42] = 0x45;
        frame[42 + 9] = quotedProtocol;
        return frame;
    }
}
