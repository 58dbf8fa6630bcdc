using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Node.Tunnel;
using static UserspaceDr.Tests.Node.IpipPackets;

namespace UserspaceDr.Tests.Node;

/// <summary>
/// The user-space endpoint's checks for the IPv6 tunnels IPVS sends: IPv6 in IPv6 and IPv4 in IPv6 (from an IPv6 raw
/// socket: the inner packet, the outer destination and traffic class beside it) and IPv6 in IPv4 (protocol 41).
/// </summary>
public class Ipv6DecapsulatorTests
{
    private const string Node6 = "2001:2::21";
    private const string Client6 = "2001:2::1";
    private const string Vip6 = "2001:2::100";
    private static readonly AddressSet Local = new([InetAddress.Parse(Node6), InetAddress.Parse("198.18.0.21")]);
    private static readonly AddressSet Vips = new([InetAddress.Parse(Vip6), InetAddress.Parse("198.18.0.100")]);

    private static UInt128 V6(string text) => InetAddress.Parse(text).IPv6;

    /// <summary>An IPv6 UDP datagram <paramref name="source"/> → <paramref name="destination"/>:5353, checksum right (or 0).</summary>
    private static byte[] InnerUdp6(string source = Client6, string destination = Vip6, byte trafficClass = 0, bool zeroChecksum = false)
    {
        byte[] udp = new byte[8 + 5];
        BinaryPrimitives.WriteUInt16BigEndian(udp, 40000);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(2), 5353);
        BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(4), (ushort)udp.Length);
        "hello"u8.CopyTo(udp.AsSpan(8));
        if (!zeroChecksum)
        {
            Ipv6Checksum.Store(V6(source), V6(destination), IpProtocol.Udp, udp, 6);
        }
        byte[] packet = new byte[40 + udp.Length];
        Ipv6Header.Write(packet, trafficClass, (ushort)udp.Length, IpProtocol.Udp, 63, V6(source), V6(destination));
        udp.CopyTo(packet, 40);
        return packet;
    }

    private static DecapsulationOutcome FromIpv6(byte[] inner, byte nextHeader = Ipv6NextHeader.Ipv6, string outerDestination = Node6, byte trafficClass = 0) =>
        IpipDecapsulator.DecapsulateFromIpv6(inner, nextHeader, V6(outerDestination), trafficClass, Local, Vips, out _);

    [Test]
    public void Ipv6_in_ipv6_is_delivered_whole_and_checked_as_ipv4_inner_packets_are()
    {
        byte[] inner = [.. InnerUdp6(), 0, 0, 0];
        Assert.That(IpipDecapsulator.DecapsulateFromIpv6(inner, Ipv6NextHeader.Ipv6, V6(Node6), 0, Local, Vips, out int length),
            Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That(length, Is.EqualTo(inner.Length - 3), "trailing bytes are not part of the inner packet");
        Assert.Multiple(() =>
        {
            Assert.That(FromIpv6(InnerUdp6(), outerDestination: Vip6), Is.EqualTo(DecapsulationOutcome.OuterNotLocal), "to a VIP");
            Assert.That(FromIpv6(InnerUdp6(), outerDestination: "2001:2::99"), Is.EqualTo(DecapsulationOutcome.OuterNotLocal));
            Assert.That(FromIpv6(InnerUdp6(), nextHeader: 47), Is.EqualTo(DecapsulationOutcome.OuterNotIpip));
            Assert.That(FromIpv6(InnerUdp6()[..39]), Is.EqualTo(DecapsulationOutcome.InnerTruncated));
            Assert.That(FromIpv6(InnerUdp6(destination: "2001:2::101")), Is.EqualTo(DecapsulationOutcome.InnerNotVip));
            Assert.That(FromIpv6(InnerUdp6(source: "ff02::1")), Is.EqualTo(DecapsulationOutcome.InnerBadSource));
            Assert.That(FromIpv6(InnerUdp6(source: Vip6)), Is.EqualTo(DecapsulationOutcome.InnerBadSource));
            Assert.That(FromIpv6(InnerUdp6(zeroChecksum: true)), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum), "UDP without a checksum is invalid in IPv6");
            byte[] corrupt = InnerUdp6();
            corrupt[^1] ^= 1;
            Assert.That(FromIpv6(corrupt), Is.EqualTo(DecapsulationOutcome.InnerBadTransportChecksum));
            byte[] longer = InnerUdp6();
            BinaryPrimitives.WriteUInt16BigEndian(longer.AsSpan(4), 200);
            Assert.That(FromIpv6(longer), Is.EqualTo(DecapsulationOutcome.InnerBadTotalLength));
            Assert.That(FromIpv6(InnerUdp6(), nextHeader: Ipv6NextHeader.Ipv4), Is.EqualTo(DecapsulationOutcome.InnerBadHeaderLength).Or.EqualTo(DecapsulationOutcome.InnerBadVersion),
                "an IPv6 packet where next header 4 says IPv4");
        });
    }

    [Test]
    public void Ipv4_in_ipv6_and_ipv6_in_ipv4_are_delivered()
    {
        byte[] inner4 = InnerUdp("198.18.0.1", "198.18.0.100", 5555, 7777, "hello");
        Assert.That(FromIpv6(inner4, Ipv6NextHeader.Ipv4), Is.EqualTo(DecapsulationOutcome.Delivered));

        byte[] inner6 = InnerUdp6();
        byte[] packet = Ipv4("198.18.0.2", "198.18.0.21", Ipv6NextHeader.Ipv6, inner6);
        Assert.That(IpipDecapsulator.Decapsulate(packet, Local, Vips, out int offset, out int length), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That((offset, length), Is.EqualTo((20, inner6.Length)));
    }

    [Test]
    public void An_outer_congestion_mark_is_copied_into_an_ecn_capable_inner_ipv6_packet_and_drops_a_non_capable_one()
    {
        byte[] capable = InnerUdp6(trafficClass: 0x02); // ECT(0)
        Assert.That(FromIpv6(capable, trafficClass: 0x03), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That(new Ipv6Header(capable).TrafficClass, Is.EqualTo(0x03), "CE copied in");
        Assert.That(FromIpv6(InnerUdp6(trafficClass: 0x00), trafficClass: 0x03), Is.EqualTo(DecapsulationOutcome.InnerEcnNotCapable));
    }
}
