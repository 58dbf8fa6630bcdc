using PacketDotNet;
using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Tests.Forwarding;

public class TcpSegmentationTests
{
    [Test]
    public void A_super_frame_is_cut_into_valid_wire_sized_segments_that_reassemble_to_the_payload()
    {
        byte[] payload = new byte[10_000];
        new Random(5).NextBytes(payload);
        byte[] frame = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: payload);
        frame[14 + 20 + 13] |= 0x08 | 0x01 | 0x80; // PSH, FIN, CWR on the super-frame

        int count = TcpSegmentation.SegmentCount(frame, 1500, out int perSegment);
        Assert.That(count, Is.EqualTo((int)Math.Ceiling(10_000 / 1460.0)));
        Assert.That(perSegment, Is.EqualTo(1460));

        var reassembled = new List<byte>();
        byte[] buffer = new byte[2000];
        var (_, originalIp) = Frames.Decode(frame);
        var originalTcp = originalIp.Extract<TcpPacket>();
        for (int i = 0; i < count; i++)
        {
            int length = TcpSegmentation.WriteSegment(frame, i, perSegment, buffer);
            Assert.That(length, Is.LessThanOrEqualTo(1514));
            var (_, ip) = Frames.Decode(buffer.AsSpan(0, length));
            var tcp = ip.Extract<TcpPacket>();
            Assert.That(ip.ValidIPChecksum, Is.True, $"segment {i} IP checksum");
            Assert.That(tcp.ValidTcpChecksum, Is.True, $"segment {i} TCP checksum");
            Assert.That(ip.Id, Is.EqualTo((ushort)(originalIp.Id + i)));
            Assert.That(tcp.SequenceNumber, Is.EqualTo(originalTcp.SequenceNumber + (uint)(i * perSegment)));
            bool last = i == count - 1;
            Assert.That((tcp.Finished, tcp.Push), Is.EqualTo((last, last)), $"FIN/PSH only on the last, segment {i}");
            Assert.That(tcp.CongestionWindowReduced, Is.EqualTo(i == 0), "CWR only on the first");
            reassembled.AddRange(tcp.PayloadData);
        }
        Assert.That(reassembled, Is.EqualTo(payload));
    }

    [Test]
    public void Frames_that_fit_or_cannot_be_segmented_are_recognised()
    {
        byte[] small = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: new byte[100]);
        Assert.That(TcpSegmentation.SegmentCount(small, 1500, out _), Is.EqualTo(1));
        byte[] udp = Frames.Udp(Frames.Client, 5000, Frames.Vip, 53, new byte[3000]);
        Assert.That(TcpSegmentation.SegmentCount(udp, 1500, out _), Is.Zero);
        Assert.That(TcpSegmentation.SegmentCount(small.AsSpan(0, 30), 1500, out _), Is.Zero);
    }

    [Test]
    public void An_ipv6_super_frame_is_cut_into_valid_segments_with_their_own_payload_length()
    {
        byte[] payload = new byte[7_000];
        new Random(6).NextBytes(payload);
        byte[] frame = Frames6.Tcp(40000, syn: false, ack: true, payload: payload);
        int count = TcpSegmentation.SegmentCount(frame, 1500, out int perSegment);
        Assert.That((count, perSegment), Is.EqualTo(((int)Math.Ceiling(7_000 / 1440.0), 1440)), "1500 less 40 and 20 bytes of headers");

        var reassembled = new List<byte>();
        byte[] buffer = new byte[2000];
        for (int i = 0; i < count; i++)
        {
            int length = TcpSegmentation.WriteSegment(frame, i, perSegment, buffer);
            Assert.That(length, Is.LessThanOrEqualTo(1514));
            var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, buffer.AsSpan(0, length).ToArray());
            var ip = (IPv6Packet)ethernet.PayloadPacket;
            var tcp = (TcpPacket)ip.PayloadPacket;
            Assert.That(ip.PayloadLength, Is.EqualTo(length - 14 - 40), $"segment {i} payload length");
            Assert.That(tcp.ValidTcpChecksum, Is.True, $"segment {i} TCP checksum over the IPv6 pseudo-header");
            Assert.That(tcp.SequenceNumber, Is.EqualTo(1000u + (uint)(i * perSegment)));
            reassembled.AddRange(tcp.PayloadData);
        }
        Assert.That(reassembled, Is.EqualTo(payload));
        byte[] withExtension = [.. frame];
        withExtension[14 + 6] = 0; // a Hop-by-Hop header in front: not cut
        Assert.That(TcpSegmentation.SegmentCount(withExtension, 1500, out _), Is.Zero);
    }
}
