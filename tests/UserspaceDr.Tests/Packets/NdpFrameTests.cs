using System.Net;
using PacketDotNet;
using PacketDotNet.Ndp;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Tests.Forwarding;
using Udr = UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Bpf;
using UserspaceDr.Tests.Linux.Bpf;

namespace UserspaceDr.Tests.Packets;

/// <summary>
/// The neighbour resolver's IPv6 half: the Neighbor Solicitation it sends (checked with PacketDotNet), the
/// advertisements it believes, and the socket filter of its ring.
/// </summary>
public class NdpFrameTests
{
    private static readonly Udr.MacAddress Balancer = Udr.MacAddress.Read([2, 0, 0, 0, 0, 2]);
    private static readonly Udr.MacAddress Server = Udr.MacAddress.Read([2, 0, 0, 0, 0, 0x11]);
    private static readonly UInt128 Source = Udr.InetAddress.Parse("fe80::2").IPv6;
    private static readonly UInt128 Target = Udr.InetAddress.Parse("2001:2::11").IPv6;

    [Test]
    public void A_solicitation_goes_to_the_solicited_node_group_with_the_source_link_layer_option()
    {
        byte[] frame = new byte[Udr.Ndp.SolicitationFrameLength + 4];
        int length = Udr.Ndp.WriteSolicitationFrame(frame, Balancer, Source, Target);
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame[..length]);
        var ip = (IPv6Packet)ethernet.PayloadPacket;
        var icmp = ethernet.Extract<IcmpV6Packet>();
        Assert.Multiple(() =>
        {
            Assert.That(length, Is.EqualTo(86));
            Assert.That(ethernet.DestinationHardwareAddress.ToString(), Is.EqualTo("3333FF000011"));
            Assert.That(ethernet.SourceHardwareAddress.ToString(), Is.EqualTo("020000000002"));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse("fe80::2")));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse("ff02::1:ff00:11")));
            Assert.That(ip.HopLimit, Is.EqualTo(255));
            Assert.That(icmp.Type, Is.EqualTo(IcmpV6Type.NeighborSolicitation));
            Assert.That(icmp.ValidIcmpChecksum, Is.True);
            Assert.That(new IPAddress(frame.AsSpan(14 + 40 + 8, 16)), Is.EqualTo(IPAddress.Parse("2001:2::11")), "target");
            Assert.That(frame.AsSpan(14 + 40 + 24, 8).ToArray(), Is.EqualTo(new byte[] { 1, 1, 2, 0, 0, 0, 0, 2 }), "Source-LL option");
        });
    }

    [Test]
    public void An_unsolicited_advertisement_goes_to_all_nodes_with_override_and_without_solicited()
    {
        UInt128 vip = Udr.InetAddress.Parse("2001:2::100").IPv6;
        byte[] frame = new byte[Udr.Ndp.AdvertisementFrameLength];
        int length = Udr.Ndp.WriteUnsolicitedAdvertisementFrame(frame, Balancer, vip);
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame[..length]);
        var ip = (IPv6Packet)ethernet.PayloadPacket;
        var icmp = ethernet.Extract<IcmpV6Packet>();
        Assert.Multiple(() =>
        {
            Assert.That(ethernet.DestinationHardwareAddress.ToString(), Is.EqualTo("333300000001"));
            Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse("2001:2::100")));
            Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse("ff02::1")));
            Assert.That(ip.HopLimit, Is.EqualTo(255));
            Assert.That(icmp.Type, Is.EqualTo(IcmpV6Type.NeighborAdvertisement));
            Assert.That(icmp.ValidIcmpChecksum, Is.True);
            Assert.That(frame[14 + 40 + 4], Is.EqualTo(0x20), "override only: not solicited, not a router");
            Assert.That(Udr.Ndp.TryReadAdvertisementFrame(frame.AsSpan(0, length), out UInt128 target, out Udr.MacAddress mac), Is.True);
            Assert.That((target, mac), Is.EqualTo((vip, Balancer)));
        });
    }

    [Test]
    public void An_advertisement_is_believed_only_when_it_is_well_formed()
    {
        byte[] good = Advertisement();
        Assert.That(Udr.Ndp.TryReadAdvertisementFrame(good, out UInt128 target, out Udr.MacAddress mac), Is.True);
        Assert.That((target, mac), Is.EqualTo((Target, Server)));

        byte[] routed = Advertisement();
        routed[14 + 7] = 254;
        byte[] corrupt = Advertisement();
        corrupt[14 + 40 + 30] ^= 1;
        byte[] solicitation = new byte[Udr.Ndp.SolicitationFrameLength];
        Udr.Ndp.WriteSolicitationFrame(solicitation, Server, Target, Source);
        byte[] cut = Advertisement()[..(14 + 40 + 20)];
        Assert.Multiple(() =>
        {
            Assert.That(Udr.Ndp.TryReadAdvertisementFrame(routed, out _, out _), Is.False, "hop limit below 255: came through a router");
            Assert.That(Udr.Ndp.TryReadAdvertisementFrame(corrupt, out _, out _), Is.False, "bad checksum");
            Assert.That(Udr.Ndp.TryReadAdvertisementFrame(solicitation, out _, out _), Is.False, "a solicitation");
            Assert.That(Udr.Ndp.TryReadAdvertisementFrame(cut, out _, out _), Is.False, "truncated");
        });
    }

    [Test]
    public void The_resolver_ring_takes_arp_and_advertisements_only()
    {
        ClassicBpfProgram filter = ClassicBpfProgram.NeighborDiscovery;
        byte[] arp = new byte[Udr.ArpPacket.RequestFrameLength];
        Udr.ArpPacket.WriteRequestFrame(arp, Balancer, Udr.Ipv4Address.Parse("198.18.0.2"), Udr.Ipv4Address.Parse("198.18.0.11"));
        byte[] solicitation = new byte[Udr.Ndp.SolicitationFrameLength];
        Udr.Ndp.WriteSolicitationFrame(solicitation, Balancer, Source, Target);
        byte[] ipv4 = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        Assert.Multiple(() =>
        {
            Assert.That(ClassicBpfInterpreter.Run(filter, arp), Is.Not.Zero);
            Assert.That(ClassicBpfInterpreter.Run(filter, Advertisement()), Is.Not.Zero);
            Assert.That(ClassicBpfInterpreter.Run(filter, solicitation), Is.Zero);
            Assert.That(ClassicBpfInterpreter.Run(filter, ipv4), Is.Zero);
        });
    }

    /// <summary>The server's solicited advertisement to the balancer, as udr itself writes one for a VIP.</summary>
    private static byte[] Advertisement()
    {
        byte[] solicitation = new byte[Udr.Ndp.SolicitationFrameLength];
        Udr.Ndp.WriteSolicitationFrame(solicitation, Balancer, Source, Target);
        Assert.That(Udr.EthernetFrame.TryParse(solicitation, out Udr.EthernetFrame request), Is.True);
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        int length = ReplyBuilder.WriteNeighborAdvertisement(request, Source, Target, Server, reply);
        return reply[..length];
    }
}
