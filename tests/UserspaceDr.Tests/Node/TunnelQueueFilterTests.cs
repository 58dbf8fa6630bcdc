using System.Buffers.Binary;
using UserspaceDr.Linux.Bpf;
using UserspaceDr.Tests.Linux.Bpf;
using UserspaceDr.Node.Tunnel;
using Layout = UserspaceDr.Node.Tunnel.TunnelQueueFilter.Layout;

namespace UserspaceDr.Tests.Node;

/// <summary>
/// The queue filters run in the classic BPF interpreter on the packets each raw socket would see: every packet is
/// taken by exactly one queue, every packet of a flow by the same one, the flows spread over all queues, and a packet
/// too short to hash goes to queue 0 (where the decapsulator judges it).
/// </summary>
public class TunnelQueueFilterTests
{
    private const int Flows = 400;

    private static readonly Layout[] Layouts = Enum.GetValues<Layout>();

    [Test]
    public void Exactly_one_queue_takes_each_packet_a_flow_stays_in_one_queue_and_flows_spread_over_all([ValueSource(nameof(Layouts))] Layout layout,
        [Values(2, 3, 4, 16)] int queues)
    {
        ClassicBpfProgram[] programs = [.. Enumerable.Range(0, queues).Select(q => TunnelQueueFilter.For(layout, q, queues))];
        int[] flowsPerQueue = new int[queues];
        for (int flow = 0; flow < Flows; flow++)
        {
            // One client address per 50 flows, its port varying: what many connections from few clients look like.
            uint client = 0xC6130000u | (uint)(flow / 50) + 1; // 198.19.0.x
            ushort port = (ushort)(40000 + (flow * 7));
            int? queueOfFlow = null;
            foreach (int payload in new[] { 0, 1, 500 })
            {
                byte[] packet = Packet(layout, client, port, payload, outerOptions: flow % 2 == 1, greChecksum: flow % 3 == 0);
                int[] takers = [.. Enumerable.Range(0, queues).Where(q => ClassicBpfInterpreter.Run(programs[q], packet) != 0)];
                Assert.That(takers, Has.Length.EqualTo(1), $"{layout}: flow {flow}, {payload} bytes of payload");
                queueOfFlow ??= takers[0];
                Assert.That(takers[0], Is.EqualTo(queueOfFlow), $"{layout}: every packet of flow {flow} in one queue");
            }
            flowsPerQueue[queueOfFlow!.Value]++;
        }
        // Spread: no queue is left without its share (at least half of an even share).
        Assert.That(flowsPerQueue, Is.All.GreaterThanOrEqualTo(Flows / queues / 2), $"{layout}: flows per queue {string.Join('/', flowsPerQueue)}");
    }

    [Test]
    public void A_packet_too_short_to_hash_goes_to_queue_0_only([ValueSource(nameof(Layouts))] Layout layout)
    {
        byte[] whole = Packet(layout, 0xC6130001, 40000, payload: 0, outerOptions: false);
        int outer = layout is Layout.Ipv4InIpv4 or Layout.Ipv6InIpv4 or Layout.GreOverIpv4 ? 20 : 0;
        int portsEnd = outer + (layout is Layout.GreOverIpv4 or Layout.GreOverIpv6 ? 4 : 0) +
            (layout is Layout.Ipv6InIpv4 or Layout.Ipv6InIpv6 ? 44 : 24);
        // Cut inside the hashed ports, or right after the outer header (which the kernel only delivers whole).
        foreach (int length in new[] { portsEnd - 1, portsEnd - 4, outer + 8 })
        {
            byte[] packet = whole[..length];
            int[] takers = [.. Enumerable.Range(0, 4).Where(q => ClassicBpfInterpreter.Run(TunnelQueueFilter.For(layout, q, 4), packet) != 0)];
            Assert.That(takers, Is.EqualTo(new[] { 0 }), $"{layout}: {length} of {whole.Length} bytes");
        }
    }

    [Test]
    public void Queue_numbers_out_of_range_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelQueueFilter.For(Layout.Ipv4InIpv4, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelQueueFilter.For(Layout.Ipv4InIpv4, 0, TunnelQueueFilter.MaxQueues + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelQueueFilter.For(Layout.Ipv4InIpv4, 2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => TunnelQueueFilter.For(Layout.Ipv4InIpv4, -1, 2));
    }

    /// <summary>
    /// What a raw socket of <paramref name="layout"/> hands its filter: the outer IPv4 header (20 bytes, or 24 with an
    /// option) for the IPv4 layouts, nothing of the outer IPv6 header; a GRE header (8 bytes with a checksum, as
    /// `--tun-csum` sends it); then a UDP packet from <paramref name="client"/>:<paramref name="port"/> to a VIP, of the
    /// inner family the layout carries (GRE: IPv4), an inner IPv4 header with its checksum (which differs with the
    /// payload's length: a filter hashing it would split a flow).
    /// </summary>
    private static byte[] Packet(Layout layout, uint client, ushort port, int payload, bool outerOptions, bool greChecksum = false)
    {
        bool outerIpv4 = layout is Layout.Ipv4InIpv4 or Layout.Ipv6InIpv4 or Layout.GreOverIpv4;
        bool gre = layout is Layout.GreOverIpv4 or Layout.GreOverIpv6;
        bool innerIpv6 = layout is Layout.Ipv6InIpv4 or Layout.Ipv6InIpv6;
        int outer = outerIpv4 ? (outerOptions ? 24 : 20) : 0;
        int tunnel = gre ? (greChecksum ? 8 : 4) : 0;
        int innerHeader = innerIpv6 ? 40 : 20;
        var packet = new byte[outer + tunnel + innerHeader + 8 + payload];
        Span<byte> span = packet;
        if (outerIpv4)
        {
            span[0] = (byte)(0x40 | (outer / 4));
            BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)packet.Length);
            span[9] = (byte)(gre ? 47 : innerIpv6 ? 41 : 4);
            BinaryPrimitives.WriteUInt32BigEndian(span[12..], 0xC6120002); // 198.18.0.2, the balancer
            BinaryPrimitives.WriteUInt32BigEndian(span[16..], 0xC6120015); // 198.18.0.21, this server
        }
        if (gre)
        {
            span[outer] = (byte)(greChecksum ? 0x80 : 0);
            BinaryPrimitives.WriteUInt16BigEndian(span[(outer + 2)..], 0x0800);
        }
        Span<byte> inner = span[(outer + tunnel)..];
        if (innerIpv6)
        {
            inner[0] = 0x60;
            BinaryPrimitives.WriteUInt16BigEndian(inner[4..], (ushort)(8 + payload));
            inner[6] = 17;
            inner[7] = 64;
            BinaryPrimitives.WriteUInt128BigEndian(inner[8..], ((UInt128)0x2001_0002_0001_0000UL << 64) | client);
            BinaryPrimitives.WriteUInt128BigEndian(inner[24..], ((UInt128)0x2001_0002_0000_0000UL << 64) | 0x100);
        }
        else
        {
            inner[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(inner[2..], (ushort)(20 + 8 + payload));
            inner[8] = 64;
            inner[9] = 17;
            BinaryPrimitives.WriteUInt32BigEndian(inner[12..], client);
            BinaryPrimitives.WriteUInt32BigEndian(inner[16..], 0xC6120064); // 198.18.0.100, the VIP
            uint sum = 0;
            for (int i = 0; i < 20; i += 2)
            {
                sum += BinaryPrimitives.ReadUInt16BigEndian(inner[i..]);
            }
            BinaryPrimitives.WriteUInt16BigEndian(inner[10..], (ushort)~((sum & 0xFFFF) + (sum >> 16)));
        }
        Span<byte> udp = inner[innerHeader..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], 53);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)(8 + payload));
        return packet;
    }
}
