using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Node.Tunnel;
using static UserspaceDr.Tests.Node.IpipPackets;

namespace UserspaceDr.Tests.Node;

/// <summary>
/// The user-space endpoint's GRE and GUE checks (what udr's balancer and IPVS send: GRE version 0 with at most its
/// checksum, GUE version 0 data messages): sane packets give the inner packet's place, everything else a named outcome.
/// </summary>
public class GueGreDecapsulatorTests
{
    private const string Balancer = "198.18.0.2";
    private const string Node = "198.18.0.11";
    private const string Client = "198.18.0.1";
    private const string Vip = "198.18.0.100";
    private static readonly AddressSet Local = new([Ipv4Address.Parse(Node)]);
    private static readonly AddressSet Vips = new([Ipv4Address.Parse(Vip)]);

    private static byte[] Inner() => InnerUdp(Client, Vip, 5555, 7777, "hello");

    private static byte[] GreHeader(bool checksum, ushort protocolType = EtherTypes.Ipv4) =>
        checksum ? [0x80, 0, (byte)(protocolType >> 8), (byte)protocolType, 0, 0, 0, 0] : [0, 0, (byte)(protocolType >> 8), (byte)protocolType];

    private static byte[] Gre(bool checksum, byte[]? inner = null, ushort protocolType = EtherTypes.Ipv4)
    {
        byte[] payload = [.. GreHeader(checksum, protocolType), .. inner ?? Inner()];
        if (checksum)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(4), Checksum.Compute(payload));
        }
        return Ipv4(Balancer, Node, 47, payload);
    }

    private static DecapsulationOutcome DecapsulateGre(byte[] packet, out int offset, out int length) =>
        IpipDecapsulator.DecapsulateGre(packet, Local, Vips, out offset, out length);

    private static DecapsulationOutcome DecapsulateGue(byte[] payload, string destination = Node, byte tos = 0) =>
        IpipDecapsulator.DecapsulateGue(payload, InetAddress.Parse(destination), tos, Local, Vips, out _, out _);

    [TestCase(false)]
    [TestCase(true)]
    public void A_gre_packet_with_or_without_its_checksum_is_delivered_and_its_inner_packet_located(bool checksum)
    {
        byte[] inner = Inner();
        Assert.That(DecapsulateGre(Gre(checksum, inner), out int offset, out int length), Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That((offset, length), Is.EqualTo((20 + (checksum ? 8 : 4), inner.Length)));
    }

    [Test]
    public void Gre_that_is_not_ipvs_s_or_is_damaged_is_named()
    {
        byte[] badChecksum = Gre(checksum: true);
        badChecksum[^1] ^= 0xFF;
        Assert.Multiple(() =>
        {
            Assert.That(DecapsulateGre(badChecksum, out _, out _), Is.EqualTo(DecapsulationOutcome.EncapsulationBadChecksum));
            Assert.That(DecapsulateGre(Ipv4(Balancer, Node, 47, [0x20, 0, 0x08, 0, 0, 0, 0, 1, .. Inner()]), out _, out _), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "a key");
            Assert.That(DecapsulateGre(Ipv4(Balancer, Node, 47, [0, 1, 0x08, 0, .. Inner()]), out _, out _), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "version 1 (PPTP)");
            Assert.That(DecapsulateGre(Gre(false, protocolType: 0x6558), out _, out _), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "Ethernet inside");
            Assert.That(DecapsulateGre(Ipv4(Balancer, Node, 47, [0, 0]), out _, out _), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "truncated");
            Assert.That(DecapsulateGre(Ipv4(Balancer, Vip, 47, [.. GreHeader(false), .. Inner()]), out _, out _), Is.EqualTo(DecapsulationOutcome.OuterNotLocal));
            Assert.That(DecapsulateGre(Ipip(Balancer, Node, Inner()), out _, out _), Is.EqualTo(DecapsulationOutcome.OuterNotIpip), "IP-in-IP is not GRE");
            Assert.That(DecapsulateGre(Gre(false, InnerUdp(Client, "198.18.0.200", 5555, 7777, "x")), out _, out _), Is.EqualTo(DecapsulationOutcome.InnerNotVip));
        });
    }

    [Test]
    public void A_gue_data_message_is_delivered_past_its_optional_fields()
    {
        byte[] inner = Inner();
        Assert.That(IpipDecapsulator.DecapsulateGue([0, 4, 0, 0, .. inner], InetAddress.Parse(Node), 0, Local, Vips, out int offset, out int length),
            Is.EqualTo(DecapsulationOutcome.Delivered));
        Assert.That((offset, length), Is.EqualTo((4, inner.Length)));
        Assert.That(IpipDecapsulator.DecapsulateGue([2, 4, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, .. inner], InetAddress.Parse(Node), 0, Local, Vips, out offset, out _),
            Is.EqualTo(DecapsulationOutcome.Delivered), "Hlen 2: two words of options (a remote checksum) skipped");
        Assert.That(offset, Is.EqualTo(12));
    }

    [Test]
    public void Gue_that_is_not_a_data_message_for_this_node_is_named()
    {
        byte[] inner = Inner();
        Assert.Multiple(() =>
        {
            Assert.That(DecapsulateGue([0x20, 0, 0, 0, .. inner]), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "a control message");
            Assert.That(DecapsulateGue([0x40, 4, 0, 0, .. inner]), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "version 1");
            Assert.That(DecapsulateGue([0, 17, 0, 0, .. inner]), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "UDP inside");
            Assert.That(DecapsulateGue([0x1F, 4, 0, 0, .. inner[..8]]), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "options past the end");
            Assert.That(DecapsulateGue([0, 4]), Is.EqualTo(DecapsulationOutcome.EncapsulationBadHeader), "truncated");
            Assert.That(DecapsulateGue([0, 4, 0, 0, .. inner], destination: Vip), Is.EqualTo(DecapsulationOutcome.OuterNotLocal));
            Assert.That(DecapsulateGue([0, 4, 0, 0, .. inner[..10]]), Is.Not.EqualTo(DecapsulationOutcome.Delivered), "a cut inner packet");
            Assert.That(DecapsulateGue([0, 4, 0, 0, .. Inner()], tos: 3), Is.EqualTo(DecapsulationOutcome.InnerEcnNotCapable), "outer CE, inner not ECN-capable");
        });
        Assert.That(DecapsulationOutcomes.Name(DecapsulationOutcome.EncapsulationBadChecksum), Is.EqualTo("encapsulation-bad-checksum"));
    }
}
