using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Node.Tunnel;
using static UserspaceDr.Tests.Node.IpipPackets;

namespace UserspaceDr.Tests.Node;

/// <summary>The user-space IP-in-IP endpoint's checks: each sane or insane outer and inner header gives its named outcome.</summary>
public class IpipDecapsulatorTests
{
    private const string Balancer = "198.18.0.2";
    private const string Node = "198.18.0.11";
    private const string Client = "198.18.0.1";
    private const string Vip = "198.18.0.100";
    private static readonly AddressSet Local = new([Ipv4Address.Parse(Node), Ipv4Address.Parse("198.19.1.50")]);
    private static readonly AddressSet Vips = new([Ipv4Address.Parse(Vip), Ipv4Address.Parse("198.18.0.101")]);

    private static DecapsulationOutcome Decapsulate(byte[] packet) => IpipDecapsulator.Decapsulate(packet, Local, Vips, out _, out _);

    private static byte[] GoodInner() => InnerUdp(Client, Vip, 5555, 7777, "hello");

    private static byte[] Good() => Ipip(Balancer, Node, GoodInner());

    [Test]
    public void A_sane_packet_is_delivered_and_the_inner_packet_is_located_exactly()
    {
        byte[] inner = GoodInner();
        byte[] packet = Ipip(Balancer, Node, inner);
        Assert.That(IpipDecapsulator.Decapsulate(packet, Local, Vips, out int offset, out int length), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That((offset, length), Is.EqualTo((20, inner.Length)));
        Assert.That(packet.AsSpan(offset, length).ToArray(), Is.EqualTo(inner), "the inner packet is handed on unchanged");
    }

    [Test]
    public void Outer_options_trailing_bytes_a_second_vip_and_another_local_address_are_all_fine()
    {
        // Outer header with 4 bytes of options (IHL 6): the inner packet starts after them.
        byte[] inner = InnerTcpSyn(Client, "198.18.0.101", 40000, 80, 1);
        byte[] packet = new byte[24 + inner.Length + 3];
        Ipip(Balancer, "198.19.1.50", inner).AsSpan(0, 20).CopyTo(packet);
        packet[0] = 0x46;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(2), (ushort)(24 + inner.Length));
        inner.CopyTo(packet.AsSpan(24));
        FixHeaderChecksum(packet);
        Assert.That(IpipDecapsulator.Decapsulate(packet, Local, Vips, out int offset, out int length), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That((offset, length), Is.EqualTo((24, inner.Length)), "trailing bytes after the outer total length are not part of the inner packet");

        // Inner padding after the inner total length (an Ethernet-padded original) is trimmed from what is delivered.
        byte[] padded = [.. GoodInner(), 0, 0, 0, 0];
        byte[] outer = Ipip(Balancer, Node, padded);
        Assert.That(IpipDecapsulator.Decapsulate(outer, Local, Vips, out _, out length), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That(length, Is.EqualTo(GoodInner().Length));
    }

    [Test]
    public void Insane_outer_headers_are_named()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Decapsulate([]), Is.EqualTo(DecapsulationOutcome.OuterTruncated));
            Assert.That(Decapsulate(Good()[..19]), Is.EqualTo(DecapsulationOutcome.OuterTruncated));
            Assert.That(Decapsulate(Mutate(Good(), p => p[0] = 0x65)), Is.EqualTo(DecapsulationOutcome.OuterBadVersion));
            Assert.That(Decapsulate(Mutate(Good(), p => p[0] = 0x44)), Is.EqualTo(DecapsulationOutcome.OuterBadHeaderLength));
            Assert.That(Decapsulate(Mutate(Good(), p => p[0] = 0x4F)[..40]), Is.EqualTo(DecapsulationOutcome.OuterBadHeaderLength), "IHL 15 = 60 bytes, only 40 there");
            Assert.That(Decapsulate(Mutate(Good(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)(p.Length + 1)))),
                Is.EqualTo(DecapsulationOutcome.OuterBadTotalLength));
            Assert.That(Decapsulate(Mutate(Good(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), 19))), Is.EqualTo(DecapsulationOutcome.OuterBadTotalLength));
            Assert.That(Decapsulate(Mutate(Good(), p => p[8] = 3, fixChecksum: false)), Is.EqualTo(DecapsulationOutcome.OuterBadChecksum));
            Assert.That(Decapsulate(Mutate(Good(), p => p[6] = 0x20)), Is.EqualTo(DecapsulationOutcome.OuterFragment), "more fragments");
            Assert.That(Decapsulate(Mutate(Good(), p => p[7] = 0x10)), Is.EqualTo(DecapsulationOutcome.OuterFragment), "an offset");
            Assert.That(Decapsulate(Mutate(Good(), p => p[9] = IpProtocol.Udp)), Is.EqualTo(DecapsulationOutcome.OuterNotIpip));
            Assert.That(Decapsulate(Ipip(Balancer, "198.18.0.12", GoodInner())), Is.EqualTo(DecapsulationOutcome.OuterNotLocal), "another node's address");
            Assert.That(Decapsulate(Ipip(Balancer, "198.18.0.255", GoodInner())), Is.EqualTo(DecapsulationOutcome.OuterNotLocal), "a broadcast");
        });
    }

    [Test]
    public void An_outer_destination_that_is_a_vip_is_not_the_node_even_when_the_vip_is_a_local_address()
    {
        var localWithVip = new AddressSet([Ipv4Address.Parse(Node), Ipv4Address.Parse(Vip)]);
        Assert.That(IpipDecapsulator.Decapsulate(Ipip(Balancer, Vip, GoodInner()), localWithVip, Vips, out _, out _),
            Is.EqualTo(DecapsulationOutcome.OuterNotLocal));
    }

    [Test]
    public void Insane_inner_headers_are_named()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Decapsulate(Ipip(Balancer, Node, GoodInner().AsSpan(0, 19))), Is.EqualTo(DecapsulationOutcome.InnerTruncated));
            Assert.That(Decapsulate(Ipip(Balancer, Node, [])), Is.EqualTo(DecapsulationOutcome.InnerTruncated));
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => p[0] = 0x65))), Is.EqualTo(DecapsulationOutcome.InnerBadVersion));
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => p[0] = 0x43))), Is.EqualTo(DecapsulationOutcome.InnerBadHeaderLength));
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => p[0] = 0x4F))), Is.EqualTo(DecapsulationOutcome.InnerBadHeaderLength),
                "IHL 15 = 60 bytes, the inner packet has 33");
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)(p.Length + 1))))),
                Is.EqualTo(DecapsulationOutcome.InnerBadTotalLength), "longer than the outer payload");
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), 12)))),
                Is.EqualTo(DecapsulationOutcome.InnerBadTotalLength), "shorter than its own header");
            Assert.That(Decapsulate(Ipip(Balancer, Node, Mutate(GoodInner(), p => p[8] = 1, fixChecksum: false))), Is.EqualTo(DecapsulationOutcome.InnerBadChecksum));
            Assert.That(Decapsulate(Ipip(Balancer, Node, InnerUdp(Client, Node, 5555, 7777, "to the node itself"))), Is.EqualTo(DecapsulationOutcome.InnerNotVip));
            Assert.That(Decapsulate(Ipip(Balancer, Node, InnerUdp(Client, "198.18.0.99", 5555, 7777, "elsewhere"))), Is.EqualTo(DecapsulationOutcome.InnerNotVip));
        });
    }

    [TestCase("0.0.0.0")]
    [TestCase("127.0.0.1")]
    [TestCase("224.0.0.1")]
    [TestCase("240.0.0.1")]
    [TestCase("255.255.255.255")]
    [TestCase(Vip)]
    public void An_inner_source_no_client_can_have_is_dropped(string source) =>
        Assert.That(Decapsulate(Ipip(Balancer, Node, InnerUdp(source, Vip, 5555, 7777, "spoofed"))), Is.EqualTo(DecapsulationOutcome.InnerBadSource));

    [Test]
    public void A_bad_inner_transport_checksum_is_caught_but_a_fragment_or_a_udp_checksum_of_zero_is_not_checked()
    {
        byte[] badUdp = Mutate(GoodInner(), p => p[^1] ^= 0xFF);
        Assert.That(Decapsulate(Ipip(Balancer, Node, badUdp)), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum));
        byte[] badTcp = Mutate(InnerTcpSyn(Client, Vip, 40000, 80, 7), p => p[^3] ^= 0x01);
        Assert.That(Decapsulate(Ipip(Balancer, Node, badTcp)), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum));
        byte[] shortTcp = Ipv4(Client, Vip, IpProtocol.Tcp, new byte[12]);
        Assert.That(Decapsulate(Ipip(Balancer, Node, shortTcp)), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum), "a TCP header needs 20 bytes");
        byte[] udpLengthTooLong = Mutate(GoodInner(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(24), 200));
        Assert.That(Decapsulate(Ipip(Balancer, Node, udpLengthTooLong)), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum));

        byte[] noUdpChecksum = Mutate(GoodInner(), p => BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(26), 0));
        Assert.That(Decapsulate(Ipip(Balancer, Node, noUdpChecksum)), Is.EqualTo(DecapsulationOutcome.Delivered));
        byte[] firstFragment = Ipv4(Client, Vip, IpProtocol.Udp, new byte[64], flagsAndOffset: Ipv4Header.MoreFragments);
        Assert.That(Decapsulate(Ipip(Balancer, Node, firstFragment)), Is.EqualTo(DecapsulationOutcome.Delivered), "the local stack reassembles inner fragments");
        byte[] icmp = Ipv4(Client, Vip, IpProtocol.Icmp, new byte[8]);
        Assert.That(Decapsulate(Ipip(Balancer, Node, icmp)), Is.EqualTo(DecapsulationOutcome.Delivered));
    }

    [Test]
    public void Outer_congestion_experienced_marks_an_ecn_capable_inner_packet_and_drops_a_non_capable_one()
    {
        const byte Ect0 = 0x02;
        const byte Ce = 0x03;
        byte[] capable = Ipip(Balancer, Node, InnerUdp(Client, Vip, 5555, 7777, "ecn", tos: 0xB8 | Ect0), tos: Ce);
        Assert.That(IpipDecapsulator.Decapsulate(capable, Local, Vips, out int offset, out _), Is.EqualTo(DecapsulationOutcome.Delivered));
        var inner = new Ipv4Header(capable.AsSpan(offset));
        Assert.That(inner.TypeOfService, Is.EqualTo(0xB8 | Ce), "DSCP kept, CE set");
        Assert.That(inner.HeaderChecksumValid, Is.True, "the inner checksum follows the change");

        byte[] notCapable = Ipip(Balancer, Node, InnerUdp(Client, Vip, 5555, 7777, "no ecn"), tos: Ce);
        Assert.That(Decapsulate(notCapable), Is.EqualTo(DecapsulationOutcome.InnerEcnNotCapable));

        byte[] outerEctOnly = Ipip(Balancer, Node, GoodInner(), tos: Ect0);
        Assert.That(IpipDecapsulator.Decapsulate(outerEctOnly, Local, Vips, out offset, out _), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That(outerEctOnly[offset + 1], Is.Zero, "only CE is carried inward");
    }

    [Test]
    public void Random_garbage_never_throws_and_is_never_delivered_unless_it_is_a_sane_packet()
    {
        var random = new Random(4711);
        byte[] good = Good();
        for (int i = 0; i < 20_000; i++)
        {
            byte[] packet = i % 2 == 0 ? new byte[random.Next(0, 120)] : (byte[])good.Clone();
            if (i % 2 == 0)
            {
                random.NextBytes(packet);
            }
            else
            {
                packet[random.Next(packet.Length)] = (byte)random.Next(256);
            }
            DecapsulationOutcome outcome = IpipDecapsulator.Decapsulate(packet, Local, Vips, out int offset, out int length);
            if (outcome == DecapsulationOutcome.Delivered)
            {
                Assert.That(offset + length, Is.LessThanOrEqualTo(packet.Length));
                Assert.That(new Ipv4Header(packet.AsSpan(offset)).HeaderChecksumValid, Is.True);
            }
        }
    }

    [Test]
    public void Every_outcome_has_a_distinct_counter_name_and_counters_name_what_happened()
    {
        string[] names = [.. DecapsulationOutcomes.All.Select(DecapsulationOutcomes.Name)];
        Assert.That(names, Is.Unique);
        Assert.That(names, Has.All.Matches(@"^[a-z]+(-[a-z]+)*$"));

        var counters = new TunnelCounters();
        counters.Count(DecapsulationOutcome.Delivered, 53, 33);
        counters.Count(DecapsulationOutcome.OuterNotLocal, 53, 0);
        counters.Count(DecapsulationOutcome.InnerNotVip, 60, 0);
        counters.Count(DecapsulationOutcome.InnerNotVip, 60, 0);
        counters.CountTunWriteError();
        Assert.That(counters.Format(), Is.EqualTo(
            "received 4 (226 bytes), delivered 1 (33 bytes), dropped 3: outer-not-local=1 inner-not-vip=2; tun-write-errors=1 receive-errors=0 merged=0 segments in 0 writes"));
    }

    private static byte[] Mutate(byte[] packet, Action<byte[]> change, bool fixChecksum = true)
    {
        change(packet);
        if (fixChecksum && packet.Length >= 20 && (packet[0] & 0x0F) >= 5 && (packet[0] & 0x0F) * 4 <= packet.Length)
        {
            FixHeaderChecksum(packet);
        }
        return packet;
    }
}
