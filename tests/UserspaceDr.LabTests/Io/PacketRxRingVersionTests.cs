using System.Diagnostics;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux;
using UserspaceDr.Tests.Lab;
using static UserspaceDr.Tests.Io.FrameTestSupport;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Io;

/// <summary>Where the two ring layouts differ: when a frame is handed over, and what a V2 slot too small for a frame does.</summary>
[Category("Lab")]
[NonParallelizable]
public class PacketRxRingVersionTests
{
    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public void A_lone_frame_is_handed_over_at_once_by_v2_and_only_when_the_retire_timer_fires_by_v3()
    {
        // Bounds are generous on purpose (a shared, noisy VM): V2 hands a frame over as soon as it is written and
        // wakes the waiting poll(), typically well under a millisecond; a V3 block that is not full waits for its
        // retire timer, which starts with the ring, so nothing can come out of it before RetireMs.
        const int RetireMs = 400;
        const int Samples = 5;
        using var lab = new LabNetwork();
        using Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress);
        SendUdp(client, LabNetwork.LbAddress, 9010, "warm-up"); // the client resolves the balancer before the rings exist
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Ipv4Address.Parse(LabNetwork.LbAddress)], []);
        Thread.Sleep(100);

        var clock = Stopwatch.StartNew();
        TimeSpan beforeOpen = clock.Elapsed;
        using PacketRxRing v3 = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0") { Filter = filter, Version = RingVersion.V3, RetireTimeoutMs = RetireMs }));
        using PacketRxRing v2 = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0") { Filter = filter, Version = RingVersion.V2, RetireTimeoutMs = RetireMs }));
        Task<TimeSpan> v3FirstSeen = Task.Factory.StartNew(() => WaitFor(v3, "lone-0", clock), TaskCreationOptions.LongRunning);

        var latencies = new List<TimeSpan>();
        for (int i = 0; i < Samples; i++)
        {
            // Sent from another thread while this one sits in WaitForBlock, i.e. in poll().
            TimeSpan sentAt = default;
            string payload = $"lone-{i}";
            Task sending = Task.Run(() =>
            {
                Thread.Sleep(30);
                sentAt = clock.Elapsed;
                SendUdp(client, LabNetwork.LbAddress, 9010, payload);
            });
            TimeSpan seenAt = WaitFor(v2, payload, clock);
            sending.Wait();
            latencies.Add(seenAt - sentAt);
        }
        Assert.That(v3FirstSeen.Wait(TimeSpan.FromSeconds(5)), Is.True, "the V3 ring never handed the frame over");
        TimeSpan v3Latency = v3FirstSeen.Result - beforeOpen;

        TimeSpan median = latencies.Order().ElementAt(Samples / 2);
        TestContext.Out.WriteLine($"V2 latencies {string.Join(", ", latencies.Select(l => $"{l.TotalMilliseconds:F2} ms"))}; " +
                                  $"V3 (retire {RetireMs} ms) first frame {v3Latency.TotalMilliseconds:F0} ms after the ring was opened");
        Assert.That(median, Is.LessThan(TimeSpan.FromMilliseconds(50)), "V2: seen as soon as written, no timer involved");
        Assert.That(v3Latency, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(RetireMs * 3 / 4)), "V3: held until the block retires");
    }

    [Test]
    public void A_frame_larger_than_its_v2_slot_is_marked_truncated_not_passed_off_as_whole()
    {
        using var lab = new LabNetwork();
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Ipv4Address.Parse(LabNetwork.LbAddress)], []);
        // 256-byte slots: the MAC header lands at 130 (80 + reserve 64 − 14), so 126 bytes of a frame fit.
        using PacketRxRing ring = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0")
        {
            Filter = filter, Version = RingVersion.V2, FrameSize = 256, BlockSize = 4096, BlockCount = 4,
        }));
        using Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress);
        SendUdp(client, LabNetwork.LbAddress, 9012, "short");
        SendUdp(client, LabNetwork.LbAddress, 9012, new string('x', 600));

        List<CapturedFrame> frames = Drain(ring, TimeSpan.FromSeconds(3), f => f.Count(x => x.IsUdp) == 2);
        List<CapturedFrame> udp = [.. frames.Where(f => f.IsUdp)];
        Assert.That(udp, Has.Count.EqualTo(2));
        Assert.Multiple(() =>
        {
            Assert.That(udp[0].IsTruncated(), Is.False);
            Assert.That(udp[0].UdpPayloadText, Is.EqualTo("short"));
            Assert.That(udp[1].IsTruncated(), Is.True, "RxFrame.IsTruncated: the data plane drops it");
            Assert.That(udp[1].WireLength, Is.EqualTo(14 + 20 + 8 + 600));
            Assert.That(udp[1].Bytes, Has.Length.EqualTo(256 - 130));
        });
    }

    /// <summary>
    /// PACKET_COPY_THRESH: a frame larger than its slot leaves its head in the slot (TP_STATUS_COPY) and a whole copy on
    /// the socket, in ring order; ReceiveCopy gives back the whole frame with headroom and its virtio_net_hdr.
    /// </summary>
    [Test]
    public unsafe void With_copies_a_frame_larger_than_its_v2_slot_arrives_whole_through_the_socket_in_order()
    {
        using var lab = new LabNetwork();
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Ipv4Address.Parse(LabNetwork.LbAddress)], []);
        using PacketRxRing ring = lab.RunIn(LabHost.Lb, () => new PacketRxRing(new PacketRxRingOptions("eth0")
        {
            Filter = filter, Version = RingVersion.V2, FrameSize = 256, BlockSize = 4096, BlockCount = 4, CopyOversizedFrames = true,
            VirtioNetHeader = true,
        }));
        using Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress);
        string[] payloads = ["short", new string('a', 600), "short again", new string('b', 1400)];
        foreach (string payload in payloads)
        {
            SendUdp(client, LabNetwork.LbAddress, 9013, payload);
        }

        byte[] buffer = GC.AllocateArray<byte>(4096, pinned: true);
        var received = new List<(string Payload, bool Copied, int Headroom)>();
        var clock = Stopwatch.StartNew();
        while (received.Count < payloads.Length && clock.Elapsed < TimeSpan.FromSeconds(3))
        {
            if (!ring.WaitForBlock(200))
            {
                continue;
            }
            foreach (RxFrame slot in ring.CurrentBlockFrames)
            {
                RxFrame frame = slot;
                bool copied = false;
                if (slot.IsTruncated)
                {
                    Assert.That(slot.Status & PacketStatus.Copy, Is.EqualTo(PacketStatus.Copy), "a copy was queued");
                    fixed (byte* start = buffer)
                    {
                        RxFrame? whole = ring.ReceiveCopy(slot, start, buffer.Length, 64);
                        Assert.That(whole, Is.Not.Null, "the copy is on the socket");
                        frame = whole!.Value;
                    }
                    copied = true;
                    Assert.That(frame.Length, Is.EqualTo(slot.WireLength), "the whole frame");
                    Assert.That(frame.IsTruncated, Is.False);
                    Assert.That(frame.VirtioNetHeader != null && (byte*)frame.VirtioNetHeader == frame.Mac - VirtioNetHeader.Size, Is.True);
                }
                CapturedFrame captured = Capture(frame);
                if (captured.IsUdpTo(LabNetwork.LbAddress, 9013))
                {
                    received.Add((captured.UdpPayloadText, copied, frame.Headroom));
                }
            }
            ring.ReleaseBlock();
        }
        Assert.That(received.Select(r => r.Payload), Is.EqualTo(payloads), "every frame whole, in the order sent");
        Assert.That(received.Select(r => r.Copied), Is.EqualTo(new[] { false, true, false, true }));
        Assert.That(received.Where(r => r.Copied).Select(r => r.Headroom), Has.All.GreaterThanOrEqualTo(64));
    }

    [Test]
    public void V2_geometry_defaults_hold_a_64_KiB_super_frame_and_bad_sizes_are_refused()
    {
        var options = new PacketRxRingOptions("eth0") { Version = RingVersion.V2, VirtioNetHeader = true };
        // tpacket2_hdr + sockaddr_ll aligned (80) + reserve + vnet header − 14 (the MAC header counts in the frame).
        int macOffset = 80 + options.MinimumHeadroom + VirtioNetHeader.Size - 14;
        Assert.That(options.FrameSize - macOffset, Is.GreaterThanOrEqualTo(14 + 65535), "an IPv4 super-frame of any legal length fits");
        Assert.That(options.BlockSize / options.FrameSize * options.BlockCount, Is.InRange(64, 256));
        Assert.That(new PacketRxRingOptions("eth0").FrameSize, Is.EqualTo(2048), "V3 keeps its own defaults");

        Assert.That(() => new PacketRxRing(options with { FrameSize = 1000 }), Throws.ArgumentException, "not 16-aligned");
        Assert.That(() => new PacketRxRing(options with { FrameSize = 1 << 21 }), Throws.ArgumentException, "larger than a block");
        Assert.That(() => new PacketRxRing(options with { MaxBatchFrames = 0 }), Throws.ArgumentException);
    }

    private static TimeSpan WaitFor(PacketRxRing ring, string payload, Stopwatch clock)
    {
        while (clock.Elapsed < TimeSpan.FromSeconds(5))
        {
            if (!ring.WaitForBlock(1000))
            {
                continue;
            }
            TimeSpan now = clock.Elapsed;
            bool found = false;
            foreach (RxFrame frame in ring.CurrentBlockFrames)
            {
                CapturedFrame copy = Capture(frame);
                found |= copy.IsUdpTo(LabNetwork.LbAddress, 9010) && copy.UdpPayloadText == payload;
            }
            ring.ReleaseBlock();
            if (found)
            {
                return now;
            }
        }
        throw new TimeoutException($"{payload} never came out of the ring");
    }
}
