using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using static UserspaceDr.Tests.Io.FilterTestFrames;
using UserspaceDr.Linux.Bpf;
using UserspaceDr.Tests.Linux.Bpf;

namespace UserspaceDr.Tests.Io;

/// <summary>
/// The service filter's logic, run through a small classic BPF interpreter (no root needed). The lab tests run
/// the same program in the kernel.
/// </summary>
public class ServiceTrafficFilterTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.0.100");
    private static readonly uint Extra = Ipv4Address.Parse("198.18.0.66");
    private static readonly uint Other = Ipv4Address.Parse("198.18.0.77");
    private static readonly ClassicBpfProgram Filter = ServiceTrafficFilter.Build([Vip, Vip], [Extra]);

    [Test]
    public void Accepts_arp_and_ipv4_to_vips_and_extra_destinations_untagged_or_with_one_tag()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(Filter, Frame(EtherTypes.Arp, 0, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Extra, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Arp, 0, tagged: true)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: true)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Extra, tagged: true)), Is.Not.Zero);
        });
    }

    [Test]
    public void Drops_other_destinations_other_protocols_and_short_frames()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Other, tagged: false)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Other, tagged: true)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv6, Vip, tagged: false)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv6, Vip, tagged: true)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: false).AsSpan(0, 20).ToArray()), Is.Zero, "a load past the end drops");
        });
    }

    [Test]
    public void Compares_every_destination_of_a_full_set_and_refuses_one_more()
    {
        uint[] many = [.. Enumerable.Range(1, ServiceTrafficFilter.MaxDestinations).Select(i => Ipv4Address.Parse("198.19.0.0") + (uint)i)];
        ClassicBpfProgram filter = ServiceTrafficFilter.Build(many, []);
        Assert.That(many.All(address => Run(filter, Frame(EtherTypes.Ipv4, address, tagged: false)) != 0), Is.True);
        Assert.That(Run(filter, Frame(EtherTypes.Ipv4, Vip, tagged: false)), Is.Zero);
        Assert.That(() => ServiceTrafficFilter.Build([.. many, Vip], []), Throws.ArgumentException);
    }

    private static readonly uint Rip = Ipv4Address.Parse("198.19.1.13");
    private static readonly uint Own = Ipv4Address.Parse("198.19.1.1");
    private static readonly uint Client = Ipv4Address.Parse("198.18.0.1");
    private static readonly ClassicBpfProgram NatFilter = ServiceTrafficFilter.Build([Vip], [], [Rip], [Own]);

    [Test]
    public void Accepts_tcp_udp_and_icmp_from_a_nat_real_server_untagged_or_tagged()
    {
        Assert.Multiple(() =>
        {
            foreach (bool tagged in new[] { false, true })
            {
                Assert.That(Run(NatFilter, Packet(Rip, Client, IpProtocol.Tcp, tagged)), Is.Not.Zero, $"tcp reply, tagged={tagged}");
                Assert.That(Run(NatFilter, Packet(Rip, Client, IpProtocol.Udp, tagged)), Is.Not.Zero, $"udp reply, tagged={tagged}");
                Assert.That(Run(NatFilter, Packet(Rip, Client, IpProtocol.Icmp, tagged)), Is.Not.Zero, $"icmp error, tagged={tagged}");
                Assert.That(Run(NatFilter, Packet(Client, Vip, IpProtocol.Tcp, tagged)), Is.Not.Zero, $"request, tagged={tagged}");
            }
        });
    }

    [Test]
    public void Drops_other_protocols_from_a_real_server_and_traffic_from_other_sources()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(NatFilter, Packet(Rip, Client, 47 /* GRE */, tagged: false)), Is.Zero);
            Assert.That(Run(NatFilter, Packet(Other, Client, IpProtocol.Tcp, tagged: false)), Is.Zero);
            Assert.That(Run(NatFilter, Packet(Client, Rip, IpProtocol.Tcp, tagged: false)), Is.Zero, "to a real server, not from one");
            Assert.That(Run(Filter, Packet(Rip, Client, IpProtocol.Tcp, tagged: false)), Is.Zero, "no NAT servers: no source chain");
        });
    }

    [Test]
    public void Accepts_only_icmp_to_the_balancers_own_addresses()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(NatFilter, Packet(Other, Own, IpProtocol.Icmp, tagged: false)), Is.Not.Zero);
            Assert.That(Run(NatFilter, Packet(Other, Own, IpProtocol.Icmp, tagged: true)), Is.Not.Zero);
            Assert.That(Run(NatFilter, Packet(Other, Own, IpProtocol.Tcp, tagged: false)), Is.Zero, "the balancer's own TCP is the kernel's");
            Assert.That(Run(NatFilter, Packet(Other, Own, IpProtocol.Udp, tagged: false)), Is.Zero);
        });
    }

    [Test]
    public void Accepts_icmp_from_a_router_that_quotes_a_packet_to_a_nat_server()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(NatFilter, RouterError(quotedDestination: Rip, tagged: false, optionWords: 0)), Is.Not.Zero);
            Assert.That(Run(NatFilter, RouterError(quotedDestination: Rip, tagged: true, optionWords: 0)), Is.Not.Zero);
            Assert.That(Run(NatFilter, RouterError(quotedDestination: Rip, tagged: false, optionWords: 2)), Is.Not.Zero, "outer header with options");
            Assert.That(Run(NatFilter, RouterError(quotedDestination: Other, tagged: false, optionWords: 0)), Is.Zero, "about someone else's packet");
            Assert.That(Run(NatFilter, Packet(Other, Client, IpProtocol.Icmp, tagged: false)), Is.Zero, "too short to quote anything");
            Assert.That(Run(Filter, RouterError(quotedDestination: Rip, tagged: false, optionWords: 0)), Is.Zero, "no NAT servers: no quote chain");
        });
    }

    /// <summary>An ICMP error from a router (Other) to the client, quoting client → <paramref name="quotedDestination"/>.</summary>
    private static byte[] RouterError(uint quotedDestination, bool tagged, int optionWords)
    {
        int l2 = tagged ? 18 : 14;
        int outerHeader = 20 + (4 * optionWords);
        byte[] frame = new byte[l2 + outerHeader + 8 + 28];
        if (tagged)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Vlan);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14), 42);
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(l2 - 2), EtherTypes.Ipv4);
        frame[l2] = (byte)(0x40 | (outerHeader / 4));
        frame[l2 + 9] = IpProtocol.Icmp;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(l2 + 12), Other);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(l2 + 16), Client);
        int icmp = l2 + outerHeader;
        frame[icmp] = 3; // destination unreachable
        frame[icmp + 1] = 4;
        frame[icmp + 8] = 0x45;
        frame[icmp + 8 + 9] = IpProtocol.Tcp;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(icmp + 8 + 12), Client);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(icmp + 8 + 16), quotedDestination);
        return frame;
    }

    [Test]
    public void Full_lists_of_every_kind_still_fit_the_jump_range()
    {
        uint[] Many(string base_) => [.. Enumerable.Range(1, ServiceTrafficFilter.MaxDestinations).Select(i => Ipv4Address.Parse(base_) + (uint)i)];
        uint[] vips = Many("198.18.10.0"), rips = Many("198.18.20.0"), own = Many("198.18.30.0");
        ClassicBpfProgram filter = ServiceTrafficFilter.Build(vips, [], rips, own);
        Assert.Multiple(() =>
        {
            Assert.That(vips.All(v => Run(filter, Packet(Client, v, IpProtocol.Udp, tagged: false)) != 0), Is.True);
            Assert.That(rips.All(r => Run(filter, Packet(r, Client, IpProtocol.Tcp, tagged: true)) != 0), Is.True);
            Assert.That(own.All(o => Run(filter, Packet(Client, o, IpProtocol.Icmp, tagged: false)) != 0), Is.True);
            Assert.That(Run(filter, Packet(Client, Other, IpProtocol.Udp, tagged: false)), Is.Zero);
        });
    }

    private static readonly UInt128 Vip6 = InetAddress.Parse("2001:2::100").IPv6;
    private static readonly UInt128 Other6 = InetAddress.Parse("2001:2::100:0").IPv6;

    [Test]
    public void Accepts_ipv6_to_an_ipv6_vip_and_neighbor_solicitations_untagged_or_tagged()
    {
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Vip], [], [], [], [Vip6]);
        Assert.Multiple(() =>
        {
            foreach (bool tagged in new[] { false, true })
            {
                Assert.That(Run(filter, Ipv6Frame(Vip6, IpProtocol.Tcp, tagged)), Is.Not.Zero, $"to the VIP, tagged={tagged}");
                Assert.That(Run(filter, Ipv6Frame(Other6, Ipv6NextHeader.Icmpv6, tagged, Icmpv6Type.NeighborSolicitation)), Is.Not.Zero,
                    $"neighbor solicitation, tagged={tagged}");
                Assert.That(Run(filter, Ipv6Frame(Other6, IpProtocol.Tcp, tagged)), Is.Zero, $"another address, tagged={tagged}");
                Assert.That(Run(filter, Ipv6Frame(Other6, Ipv6NextHeader.Icmpv6, tagged, Icmpv6Type.NeighborAdvertisement)), Is.Zero,
                    $"an advertisement is the kernel's, tagged={tagged}");
                Assert.That(Run(filter, Packet(Client, Vip, IpProtocol.Tcp, tagged)), Is.Not.Zero, $"IPv4 still, tagged={tagged}");
            }
            // Each word of the address is compared: an address differing only in its last word misses.
            Assert.That(Run(filter, Ipv6Frame(Vip6 + 1, IpProtocol.Tcp, tagged: false)), Is.Zero);
            Assert.That(Run(filter, Ipv6Frame(Vip6 ^ ((UInt128)1 << 127), IpProtocol.Tcp, tagged: false)), Is.Zero);
            Assert.That(Run(Filter, Ipv6Frame(Vip6, Ipv6NextHeader.Icmpv6, false, Icmpv6Type.NeighborSolicitation)), Is.Zero,
                "no IPv6 VIP: no IPv6 at all");
        });
    }

    [Test]
    public void A_full_list_of_ipv6_vips_after_full_ipv4_lists_still_reaches_every_address()
    {
        UInt128[] vips6 = [.. Enumerable.Range(1, ServiceTrafficFilter.MaxDestinations).Select(i => Vip6 + ((UInt128)i << 16))];
        uint[] vips = [.. Enumerable.Range(1, ServiceTrafficFilter.MaxDestinations).Select(i => Ipv4Address.Parse("198.18.10.0") + (uint)i)];
        ClassicBpfProgram filter = ServiceTrafficFilter.Build(vips, [], [], [], vips6);
        Assert.Multiple(() =>
        {
            Assert.That(vips6.All(v => Run(filter, Ipv6Frame(v, IpProtocol.Udp, tagged: true)) != 0), Is.True);
            Assert.That(vips.All(v => Run(filter, Packet(Client, v, IpProtocol.Udp, tagged: true)) != 0), Is.True);
            Assert.That(() => ServiceTrafficFilter.Build([], [], [], [], [.. vips6, Vip6]), Throws.ArgumentException);
        });
    }

    [Test]
    public void Accepts_what_an_ipv6_nat_server_sends_that_can_be_a_reply_or_an_error()
    {
        UInt128 rip6 = InetAddress.Parse("2001:2:1::13").IPv6;
        UInt128 client6 = InetAddress.Parse("2001:2::1").IPv6;
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([], [], [], [], [Vip6], [rip6]);
        Assert.Multiple(() =>
        {
            foreach (bool tagged in new[] { false, true })
            {
                foreach (byte nextHeader in new[] { IpProtocol.Tcp, IpProtocol.Udp, Ipv6NextHeader.Icmpv6, Ipv6NextHeader.Fragment })
                {
                    Assert.That(Run(filter, Ipv6Frame(client6, nextHeader, tagged, source: rip6)), Is.Not.Zero, $"{nextHeader} from the server, tagged={tagged}");
                }
                Assert.That(Run(filter, Ipv6Frame(client6, Ipv6NextHeader.HopByHop, tagged, source: rip6)), Is.Zero, "nothing udr would translate");
                Assert.That(Run(filter, Ipv6Frame(client6, IpProtocol.Tcp, tagged, source: rip6 + 1)), Is.Zero, "another source");
            }
        });
    }

    private static uint Run(ClassicBpfProgram program, byte[] packet) => ClassicBpfInterpreter.Run(program, packet);
}
