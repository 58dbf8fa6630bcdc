using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Packets;

/// <summary>The IPv6 header view and the extension-header walk IPVS does with ipv6_find_hdr.</summary>
public class Ipv6ExtensionHeaderTests
{
    private static readonly UInt128 Client = InetAddress.Parse("2001:2::1").IPv6;
    private static readonly UInt128 Vip = InetAddress.Parse("2001:2::100").IPv6;

    /// <summary>A fixed header naming <paramref name="first"/>, then <paramref name="chain"/> as given, then 8 transport bytes.</summary>
    private static byte[] Packet(byte first, params byte[][] chain)
    {
        int length = Ipv6Header.Length + chain.Sum(h => h.Length) + 8;
        byte[] packet = new byte[length];
        Ipv6Header.Write(packet, 0, (ushort)(length - Ipv6Header.Length), first, 64, Client, Vip);
        int offset = Ipv6Header.Length;
        foreach (byte[] header in chain)
        {
            header.CopyTo(packet, offset);
            offset += header.Length;
        }
        return packet;
    }

    private static byte[] Options(byte next, int eightByteUnits) { byte[] h = new byte[8 * eightByteUnits]; h[0] = next; h[1] = (byte)(eightByteUnits - 1); return h; }

    private static byte[] Fragment(byte next, ushort offset, bool more, uint id)
    {
        byte[] h = new byte[8];
        h[0] = next;
        ushort word = (ushort)(offset | (more ? 1 : 0));
        h[2] = (byte)(word >> 8);
        h[3] = (byte)word;
        h[4] = (byte)(id >> 24); h[5] = (byte)(id >> 16); h[6] = (byte)(id >> 8); h[7] = (byte)id;
        return h;
    }

    [Test]
    public void The_fixed_header_reads_as_an_independent_decoder_writes_it()
    {
        var udp = new UdpPacket(40000, 53) { PayloadData = [1, 2, 3] };
        var ip = new IPv6Packet(IPAddress.Parse("2001:2::1"), IPAddress.Parse("2001:2::100")) { HopLimit = 7, TrafficClass = 0xB8, FlowLabel = 0x12345, PayloadPacket = udp };
        udp.UpdateCalculatedValues();
        ip.UpdateCalculatedValues();
        byte[] bytes = ip.Bytes;
        var header = new Ipv6Header(bytes);
        var read = (header.Version, header.TrafficClass, header.FlowLabel, header.PayloadLength, header.NextHeader, header.HopLimit, header.Source, header.Destination);
        Assert.That(read, Is.EqualTo((6, (byte)0xB8, 0x12345u, (ushort)11, Ipv6NextHeader.Udp, (byte)7, Client, Vip)));
        Assert.That(Ipv6ExtensionHeaders.Walk(bytes, out Ipv6Transport transport), Is.EqualTo(Ipv6ChainEnd.Found));
        Assert.That(transport, Is.EqualTo(new Ipv6Transport(Ipv6NextHeader.Udp, 40, false, 0, false, 0)));
    }

    [Test]
    public void Written_headers_decode_the_same_way()
    {
        byte[] bytes = Packet(Ipv6NextHeader.Tcp);
        Ipv6Header.Write(bytes, 0x2E, 8, Ipv6NextHeader.Tcp, 63, Client, Vip);
        var decoded = new IPv6Packet(new PacketDotNet.Utils.ByteArraySegment(bytes));
        Assert.Multiple(() =>
        {
            Assert.That(decoded.Version, Is.EqualTo(IPVersion.IPv6));
            Assert.That(decoded.TrafficClass, Is.EqualTo(0x2E));
            Assert.That(decoded.FlowLabel, Is.Zero);
            Assert.That(decoded.HopLimit, Is.EqualTo(63));
            Assert.That(decoded.SourceAddress, Is.EqualTo(IPAddress.Parse("2001:2::1")));
            Assert.That(decoded.DestinationAddress, Is.EqualTo(IPAddress.Parse("2001:2::100")));
        });
    }

    [Test]
    public void Walks_every_extension_header_IPVS_walks()
    {
        byte[] ah = new byte[16];
        ah[0] = Ipv6NextHeader.DestinationOptions;
        ah[1] = 2; // (2 + 2) * 4 = 16 bytes
        byte[] packet = Packet(Ipv6NextHeader.HopByHop,
            Options(Ipv6NextHeader.Routing, 1),
            Options(Ipv6NextHeader.Fragment, 3),
            Fragment(Ipv6NextHeader.Authentication, 0, more: true, id: 0xDEADBEEF),
            ah,
            Options(Ipv6NextHeader.Tcp, 2));
        Assert.That(Ipv6ExtensionHeaders.Walk(packet, out Ipv6Transport transport), Is.EqualTo(Ipv6ChainEnd.Found));
        Assert.That(transport, Is.EqualTo(new Ipv6Transport(Ipv6NextHeader.Tcp, 40 + 8 + 24 + 8 + 16 + 16, true, 0, true, 0xDEADBEEF)));
        Assert.That(transport.IsLaterFragment, Is.False, "a first fragment carries the transport header");
    }

    [Test]
    public void A_later_fragment_stops_at_its_fragment_header()
    {
        byte[] packet = Packet(Ipv6NextHeader.DestinationOptions, Options(Ipv6NextHeader.Fragment, 1), Fragment(Ipv6NextHeader.Udp, 1448, more: false, id: 7));
        Assert.That(Ipv6ExtensionHeaders.Walk(packet, out Ipv6Transport transport), Is.EqualTo(Ipv6ChainEnd.LaterFragment));
        Assert.That(transport, Is.EqualTo(new Ipv6Transport(Ipv6NextHeader.Udp, 48, true, 1448, false, 7)));
        Assert.That(transport.IsLaterFragment, Is.True);
    }

    [Test]
    public void Ends_without_a_transport_where_the_kernel_finds_none()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Ipv6ExtensionHeaders.Walk(Packet(Ipv6NextHeader.NoNextHeader), out _), Is.EqualTo(Ipv6ChainEnd.NoTransport));
            Assert.That(Ipv6ExtensionHeaders.Walk(Packet(Ipv6NextHeader.HopByHop, Options(Ipv6NextHeader.NoNextHeader, 1)), out _),
                Is.EqualTo(Ipv6ChainEnd.NoTransport));
            Assert.That(Ipv6ExtensionHeaders.Walk(Packet(Ipv6NextHeader.Fragment, Fragment(Ipv6NextHeader.DestinationOptions, 8, false, 1)), out _),
                Is.EqualTo(Ipv6ChainEnd.NoTransport), "a later fragment naming another extension header");
        });
    }

    [Test]
    public void Truncated_chains_end_as_truncated()
    {
        byte[] full = Packet(Ipv6NextHeader.HopByHop, Options(Ipv6NextHeader.DestinationOptions, 2), Options(Ipv6NextHeader.Udp, 1));
        for (int cut = 0; cut < 40 + 24; cut++)
        {
            Assert.That(Ipv6ExtensionHeaders.Walk(full.AsSpan(0, cut), out _), Is.EqualTo(Ipv6ChainEnd.Truncated), $"cut at {cut}");
        }
        Assert.That(Ipv6ExtensionHeaders.Walk(full.AsSpan(0, 40 + 24), out Ipv6Transport transport), Is.EqualTo(Ipv6ChainEnd.Found));
        Assert.That(transport.Offset, Is.EqualTo(64), "the transport header itself is the caller's to check");
        byte[] fragment = Packet(Ipv6NextHeader.Fragment, Fragment(Ipv6NextHeader.Udp, 0, true, 1));
        Assert.That(Ipv6ExtensionHeaders.Walk(fragment.AsSpan(0, 40 + 7), out _), Is.EqualTo(Ipv6ChainEnd.Truncated));
    }

    [Test]
    public void A_chain_of_options_as_long_as_the_packet_still_ends()
    {
        // 180 Destination Options headers of 8 bytes: bounded by the packet, walked once each.
        byte[][] chain = [.. Enumerable.Range(0, 180).Select(i => Options(i == 179 ? Ipv6NextHeader.Udp : Ipv6NextHeader.DestinationOptions, 1))];
        byte[] packet = Packet(Ipv6NextHeader.DestinationOptions, chain);
        Assert.That(Ipv6ExtensionHeaders.Walk(packet, out Ipv6Transport transport), Is.EqualTo(Ipv6ChainEnd.Found));
        Assert.That(transport.Offset, Is.EqualTo(40 + (180 * 8)));
    }
}
