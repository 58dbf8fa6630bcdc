using System.Buffers.Binary;
using System.Net;
using PacketDotNet;
using PacketDotNet.Utils;
using UserspaceDr.Node.Tunnel;

namespace UserspaceDr.Tests.Node;

/// <summary>The endpoint's user-space GRO: which segments merge, and the GSO packet and virtio_net_hdr it writes.</summary>
public sealed class TcpCoalescerTests
{
    private const string Client = "198.18.0.1";
    private const string Vip = "198.18.0.100";

    private static byte[] Segment(uint sequence, int payload, bool psh = false, bool fin = false, ushort sourcePort = 40000, byte[]? options = null,
        uint ack = 77, ushort window = 500) => options is null ? Plain(sequence, payload, psh, fin, sourcePort, ack, window) : WithOptions(Plain(sequence, payload, psh, fin, sourcePort, ack, window), options);

    private static byte[] Plain(uint sequence, int payload, bool psh, bool fin, ushort sourcePort, uint ack, ushort window)
    {
        var tcp = new TcpPacket(sourcePort, 80)
        {
            SequenceNumber = sequence, AcknowledgmentNumber = ack, Acknowledgment = true, Push = psh, Finished = fin, WindowSize = window,
            PayloadData = [.. Enumerable.Range(0, payload).Select(i => (byte)(sequence + i))],
        };
        var ip = new IPv4Packet(IPAddress.Parse(Client), IPAddress.Parse(Vip)) { PayloadPacket = tcp, TimeToLive = 63, FragmentFlags = 2 };
        tcp.UpdateTcpChecksum();
        ip.UpdateIPChecksum();
        return ip.Bytes;
    }

    /// <summary>The same segment with <paramref name="options"/> (a multiple of 4 bytes) after its 20-byte TCP header.</summary>
    private static byte[] WithOptions(byte[] packet, byte[] options)
    {
        byte[] longer = [.. packet.AsSpan(0, 40), .. options, .. packet.AsSpan(40)];
        BinaryPrimitives.WriteUInt16BigEndian(longer.AsSpan(2), (ushort)longer.Length);
        longer[20 + 12] = (byte)((20 + options.Length) / 4 << 4);
        var ip = new IPv4Packet(new ByteArraySegment(longer));
        ip.Extract<TcpPacket>().UpdateTcpChecksum();
        ip.UpdateIPChecksum();
        return ip.Bytes;
    }

    [Test]
    public void In_order_segments_of_one_flow_become_one_gso_packet_with_a_partial_checksum()
    {
        var coalescer = new TcpCoalescer();
        byte[] first = Segment(1000, 1000);
        Assert.That(TcpCoalescer.IsCandidate(first), Is.True);
        coalescer.Start(first);
        Assert.That(coalescer.TryAppend(Segment(2000, 1000)), Is.True);
        Assert.That(coalescer.TryAppend(Segment(3000, 400, psh: true, window: 600)), Is.True, "a shorter last segment with PSH ends the merge");
        Assert.That(coalescer.TryAppend(Segment(3400, 1000)), Is.False, "closed");
        Assert.That(coalescer.Segments, Is.EqualTo(3));

        byte[] written = coalescer.Finish().ToArray();
        Assert.That(coalescer.IsActive, Is.False);
        byte[] vnet = written[..TcpCoalescer.VnetHeaderSize];
        Assert.Multiple(() =>
        {
            Assert.That(vnet[0], Is.EqualTo(1), "VIRTIO_NET_HDR_F_NEEDS_CSUM");
            Assert.That(vnet[1], Is.EqualTo(1), "VIRTIO_NET_HDR_GSO_TCPV4");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(vnet.AsSpan(2)), Is.EqualTo(40), "hdr_len");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(vnet.AsSpan(4)), Is.EqualTo(1000), "gso_size: the first segment's payload");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(vnet.AsSpan(6)), Is.EqualTo(20), "csum_start");
            Assert.That(BinaryPrimitives.ReadUInt16LittleEndian(vnet.AsSpan(8)), Is.EqualTo(16), "csum_offset");
        });

        var ip = new IPv4Packet(new ByteArraySegment(written, TcpCoalescer.VnetHeaderSize, written.Length - TcpCoalescer.VnetHeaderSize));
        var tcp = ip.Extract<TcpPacket>();
        Assert.Multiple(() =>
        {
            Assert.That(ip.TotalLength, Is.EqualTo(20 + 20 + 2400));
            Assert.That(ip.ValidIPChecksum, Is.True);
            Assert.That(tcp.SequenceNumber, Is.EqualTo(1000));
            Assert.That(tcp.Push, Is.True);
            Assert.That(tcp.WindowSize, Is.EqualTo(600), "the latest window");
            Assert.That(tcp.PayloadData, Is.EqualTo(Enumerable.Range(0, 2400).Select(i => (byte)(1000 + i)).ToArray()), "payload in order");
            // What the kernel will do with NEEDS_CSUM: sum from csum_start and store the complement at csum_offset.
            // With the pseudo-header sum in the field, that yields the correct checksum.
            uint sum = 0;
            byte[] segment = written.AsSpan(TcpCoalescer.VnetHeaderSize + 20).ToArray();
            for (int i = 0; i < segment.Length; i += 2)
            {
                sum += (uint)((segment[i] << 8) | (i + 1 < segment.Length ? segment[i + 1] : 0));
            }
            while (sum > 0xFFFF)
            {
                sum = (sum & 0xFFFF) + (sum >> 16);
            }
            BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(16), (ushort)~sum);
            byte[] finished = [.. written.AsSpan(TcpCoalescer.VnetHeaderSize, 20), .. segment];
            Assert.That(new IPv4Packet(new ByteArraySegment(finished)).Extract<TcpPacket>().ValidTcpChecksum, Is.True);
        });
    }

    [Test]
    public void A_single_segment_is_written_as_it_came_without_gso()
    {
        var coalescer = new TcpCoalescer();
        byte[] only = Segment(5, 300);
        coalescer.Start(only);
        byte[] written = coalescer.Finish().ToArray();
        Assert.That(written.AsSpan(0, TcpCoalescer.VnetHeaderSize).ToArray(), Has.All.Zero);
        Assert.That(written.AsSpan(TcpCoalescer.VnetHeaderSize).ToArray(), Is.EqualTo(only), "untouched, checksums intact");
    }

    [Test]
    public void What_does_not_continue_the_flow_is_not_merged()
    {
        var coalescer = new TcpCoalescer();
        coalescer.Start(Segment(1000, 1000));
        Assert.Multiple(() =>
        {
            Assert.That(coalescer.TryAppend(Segment(2500, 1000)), Is.False, "a gap in the sequence");
            Assert.That(coalescer.TryAppend(Segment(2000, 1000, sourcePort: 40001)), Is.False, "another flow");
            Assert.That(coalescer.TryAppend(Segment(2000, 1000, ack: 78)), Is.False, "another ACK number");
            Assert.That(coalescer.TryAppend(Segment(2000, 1200)), Is.False, "longer than the segment size");
            Assert.That(coalescer.TryAppend(Segment(2000, 1000, options: [1, 1, 1, 1])), Is.False, "a longer TCP header");
            Assert.That(TcpCoalescer.IsCandidate(Segment(2000, 1000, fin: true)), Is.False, "FIN ends a flow's data; it goes alone");
            Assert.That(TcpCoalescer.IsCandidate(Segment(2000, 0)), Is.False, "a pure ACK has nothing to merge");
            Assert.That(coalescer.TryAppend(Segment(2000, 1000)), Is.True, "and the next in-order one does");
        });
        var withOptions = new TcpCoalescer();
        withOptions.Start(Segment(1000, 1000, options: [1, 1, 1, 1]));
        Assert.That(withOptions.TryAppend(Segment(2000, 1000, options: [1, 1, 1, 0])), Is.False, "other option bytes (a timestamp that moved)");
        Assert.That(withOptions.TryAppend(Segment(2000, 1000, options: [1, 1, 1, 1])), Is.True, "the same options");
    }
}
