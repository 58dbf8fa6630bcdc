using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux;
using UserspaceDr.Tests.Lab;
using static UserspaceDr.Tests.Io.FrameTestSupport;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Io;

/// <summary>PacketTxBatch against a real kernel: frames emitted on the balancer reach the real servers' sockets.</summary>
[Category("Lab")]
[NonParallelizable]
public class PacketTxBatchTests
{
    private const int Emsgsize = 90;

    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    private static PacketTxBatch OpenBatch(LabNetwork lab, PacketTxBatchOptions options) =>
        lab.RunIn(LabHost.Lb, () => new PacketTxBatch(options));

    /// <summary>
    /// Keeps the balancer's own stack away from a service port (DESIGN §3): an nftables netdev ingress drop runs
    /// after the ETH_P_ALL ring has seen the frame, so udr still gets it but the kernel sends no RST/port-unreachable.
    /// </summary>
    private static void DropServiceTrafficInBalancerStack(LabNetwork lab, string protocol, int port) =>
        lab.Exec(LabHost.Lb, "nft -f - <<'EOF'\n" +
                             "table netdev udrtest {\n" +
                             $"  chain ingress {{ type filter hook ingress device \"eth0\" priority 0; ip daddr {LabNetwork.Vip} {protocol} dport {port} drop; }}\n" +
                             "}\nEOF");

    [Test]
    public unsafe void A_batch_goes_out_in_one_sendmmsg_and_every_datagram_reaches_the_real_server()
    {
        using var lab = new LabNetwork();
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        // Direct routing in miniature: addressed to the VIP, delivered to rs1's MAC, accepted by rs1's VIP on lo.
        using Socket listener = UdpSocket(lab, LabHost.Rs1, LabNetwork.Vip, 9100);
        using PacketTxBatch batch = OpenBatch(lab, new PacketTxBatchOptions("eth0") { Capacity = 32 });

        const int count = 16;
        byte[][] frames = [.. Enumerable.Range(0, count).Select(i =>
            UdpFrame(rs1Mac, lbMac, LabNetwork.ClientAddress, LabNetwork.Vip, 5000, 9100, Encoding.ASCII.GetBytes($"batch-{i:D2}")))];
        var pins = frames.Select(f => GCHandleOf(f)).ToArray();
        try
        {
            foreach (var (frame, pin) in frames.Zip(pins))
            {
                batch.Add((byte*)pin.AddrOfPinnedObject(), frame.Length);
            }
            Assert.That(batch.Count, Is.EqualTo(count));
            Assert.That(batch.Flush(), Is.EqualTo(count));
        }
        finally
        {
            foreach (var pin in pins)
            {
                pin.Free();
            }
        }

        Assert.Multiple(() =>
        {
            Assert.That(batch.Sent, Is.EqualTo(count));
            Assert.That(batch.Errors, Is.Zero);
            Assert.That(batch.SendCalls, Is.EqualTo(1), "one sendmmsg for the whole batch");
            Assert.That(batch.Count, Is.Zero);
        });
        Assert.That(ReceiveUdp(listener, count), Is.EquivalentTo(Enumerable.Range(0, count).Select(i => $"batch-{i:D2}")));
    }

    [Test]
    public unsafe void An_oversize_frame_without_virtio_header_is_counted_as_emsgsize_and_the_rest_still_goes_out()
    {
        using var lab = new LabNetwork();
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        using Socket listener = UdpSocket(lab, LabHost.Rs1, LabNetwork.Vip, 9101);
        using PacketTxBatch batch = OpenBatch(lab, new PacketTxBatchOptions("eth0"));

        byte[] first = UdpFrame(rs1Mac, lbMac, LabNetwork.ClientAddress, LabNetwork.Vip, 5000, 9101, "before"u8);
        byte[] oversize = UdpFrame(rs1Mac, lbMac, LabNetwork.ClientAddress, LabNetwork.Vip, 5000, 9101, new byte[3000]);
        byte[] last = UdpFrame(rs1Mac, lbMac, LabNetwork.ClientAddress, LabNetwork.Vip, 5000, 9101, "after"u8);
        fixed (byte* a = first, b = oversize, c = last)
        {
            batch.Add(a, first.Length);
            batch.Add(b, oversize.Length);
            batch.Add(c, last.Length);
            Assert.That(batch.Flush(), Is.EqualTo(2));
        }

        Assert.Multiple(() =>
        {
            Assert.That(batch.Sent, Is.EqualTo(2));
            Assert.That(batch.Errors, Is.EqualTo(1));
            Assert.That(batch.ErrorsWithErrno(Emsgsize), Is.EqualTo(1));
            Assert.That(batch.LastErrno, Is.EqualTo(Emsgsize));
            Assert.That(batch.SendCalls, Is.EqualTo(3), "sent 1, failed on the oversize one, then the remainder");
        });
        Assert.That(ReceiveUdp(listener, 2), Is.EqualTo(new[] { "before", "after" }));
    }

    [Test]
    public unsafe void Frames_forwarded_zero_copy_from_the_ring_with_their_virtio_header_reach_the_real_server([Values] RingVersion version)
    {
        using var lab = new LabNetwork();
        DropServiceTrafficInBalancerStack(lab, "udp", 9102);
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        uint vip = Ipv4Address.Parse(LabNetwork.Vip);
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([vip], []);
        using PacketRxRing ring = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0") { Filter = filter, VirtioNetHeader = true, Version = version }));
        using PacketTxBatch batch = OpenBatch(lab, new PacketTxBatchOptions("eth0") { VirtioNetHeader = true });
        using Socket listener = UdpSocket(lab, LabHost.Rs1, LabNetwork.Vip, 9102);
        using Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress);

        const int count = 8;
        string[] payloads = [.. Enumerable.Range(0, count).Select(i => $"zero-copy-{i}-" + new string('x', i * 150))];
        foreach (string payload in payloads)
        {
            SendUdp(client, LabNetwork.Vip, 9102, payload);
        }

        int forwarded = 0;
        int partial = 0;
        var clock = Stopwatch.StartNew();
        while (forwarded < count && clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            if (!ring.WaitForBlock(20))
            {
                continue;
            }
            foreach (RxFrame frame in ring.CurrentBlockFrames)
            {
                if (!EthernetFrame.TryParse(frame.Bytes, out EthernetFrame ethernet) || ethernet.EtherType != EtherTypes.Ipv4)
                {
                    continue;
                }
                // Rewrite the MAC header in place and send straight from the ring, virtio_net_hdr included.
                ethernet.Destination = rs1Mac;
                ethernet.Source = lbMac;
                partial += frame.VirtioNetHeader->NeedsChecksum ? 1 : 0;
                batch.Add(frame.TransmitStart, frame.TransmitLength);
                forwarded++;
            }
            batch.Flush(); // before the block goes back: the batch points into it
            ring.ReleaseBlock();
        }

        TestContext.Out.WriteLine($"forwarded {forwarded}, {partial} with NEEDS_CSUM, {batch.SendCalls} sendmmsg calls");
        Assert.That(forwarded, Is.EqualTo(count));
        Assert.That(batch.Errors, Is.Zero);
        Assert.That(ReceiveUdp(listener, count), Is.EquivalentTo(payloads), "the real server's stack accepted every datagram");
    }

    [Test]
    public unsafe void A_tcp_upload_forwarded_by_direct_routing_with_virtio_headers_arrives_intact([Values] RingVersion version)
    {
        using var lab = new LabNetwork();
        const int port = 9103;
        DropServiceTrafficInBalancerStack(lab, "tcp", port);
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Ipv4Address.Parse(LabNetwork.Vip)], []);
        using PacketRxRing ring = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0") { Filter = filter, VirtioNetHeader = true, Version = version }));
        using PacketTxBatch batch = OpenBatch(lab, new PacketTxBatchOptions("eth0") { VirtioNetHeader = true });
        using Socket listener = lab.RunIn(LabHost.Rs1, () =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(LabNetwork.Vip), port));
            socket.Listen();
            return socket;
        });
        using Socket sender = lab.RunIn(LabHost.Client, () => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        sender.SendTimeout = 10_000;

        // The balancer's forwarding loop: one thread, bounded in time.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        long frames = 0, gsoFrames = 0, largest = 0, truncated = 0;
        Task forwarding = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (!ring.WaitForBlock(10))
                {
                    continue;
                }
                foreach (RxFrame frame in ring.CurrentBlockFrames)
                {
                    if (!EthernetFrame.TryParse(frame.Bytes, out EthernetFrame ethernet) || ethernet.EtherType != EtherTypes.Ipv4)
                    {
                        continue;
                    }
                    if (frame.IsTruncated)
                    {
                        truncated++;
                        continue;
                    }
                    ethernet.Destination = rs1Mac;
                    ethernet.Source = lbMac;
                    batch.Add(frame.TransmitStart, frame.TransmitLength);
                    frames++;
                    gsoFrames += frame.VirtioNetHeader->IsGso ? 1 : 0;
                    largest = Math.Max(largest, frame.Length);
                }
                batch.Flush();
                ring.ReleaseBlock();
            }
        }, TaskCreationOptions.LongRunning);

        try
        {
            const int total = 8 << 20;
            byte[] data = new byte[total];
            new Random(42).NextBytes(data);
            Task<byte[]> receiving = Task.Run(() =>
            {
                using Socket connection = listener.Accept();
                connection.ReceiveTimeout = 10_000;
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                byte[] buffer = new byte[1 << 16];
                int length;
                while ((length = connection.Receive(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, length);
                }
                return hash.GetHashAndReset();
            });
            sender.Connect(new IPEndPoint(IPAddress.Parse(LabNetwork.Vip), port));
            for (int offset = 0; offset < total; offset += 1 << 16)
            {
                sender.Send(data, offset, 1 << 16, SocketFlags.None);
            }
            sender.Shutdown(SocketShutdown.Send);
            Assert.That(receiving.Wait(TimeSpan.FromSeconds(15)), Is.True, "the upload stalled");
            Assert.That(receiving.Result, Is.EqualTo(SHA256.HashData(data)), "payload hash at the real server");
        }
        finally
        {
            stop.Cancel();
            forwarding.Wait(TimeSpan.FromSeconds(5));
        }
        TestContext.Out.WriteLine($"8 MiB upload ({version}): {frames} frames forwarded, {gsoFrames} GSO, largest {largest} bytes, " +
                                  $"{batch.SendCalls} sendmmsg calls, {batch.Errors} errors, {truncated} truncated");
        Assert.That(truncated, Is.Zero, "the default geometry holds every super-frame whole");
        Assert.That(gsoFrames, Is.Positive, "super-frames crossed user space whole");
        Assert.That(batch.Errors, Is.Zero);
    }

    private static System.Runtime.InteropServices.GCHandle GCHandleOf(byte[] frame) =>
        System.Runtime.InteropServices.GCHandle.Alloc(frame, System.Runtime.InteropServices.GCHandleType.Pinned);
}
