using System.Security.Cryptography;
using System.Text;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;
using static UserspaceDr.Tests.Io.FrameTestSupport;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Io;

/// <summary>
/// Multi-link I/O against a real kernel, in a throwaway namespace (udrio + random) with two veth pairs: t0↔p0 and
/// t1↔p1. Frames sent on tN show up on pN. Deleted on every exit path.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class MultiLinkKernelTests
{
    private static readonly uint Vip = Ipv4Address.Parse("198.18.0.100");
    private static readonly uint Rip = Ipv4Address.Parse("198.19.1.13");

    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public unsafe void One_unbound_batch_sends_each_frame_out_of_the_interface_it_names()
    {
        using var ns = new TwoLinkNamespace();
        using PacketRxRing p0 = ns.Run(() => new PacketRxRing(new PacketRxRingOptions("p0") { Filter = ServiceTrafficFilter.Build([Vip], []) }));
        using PacketRxRing p1 = ns.Run(() => new PacketRxRing(new PacketRxRingOptions("p1") { Filter = ServiceTrafficFilter.Build([Vip], []) }));
        using PacketTxBatch tx = ns.Run(() => new PacketTxBatch(new PacketTxBatchOptions(null) { Capacity = 8 }));
        int t0 = ns.Run(() => (int)UserspaceDr.Linux.Interop.IfNameToIndex("t0"));
        int t1 = ns.Run(() => (int)UserspaceDr.Linux.Interop.IfNameToIndex("t1"));
        Assert.That(tx.InterfaceIndex, Is.Zero, "unbound");

        var mac = MacAddress.Read([2, 0, 0, 0, 0, 9]);
        byte[] toT0 = UdpFrame(MacAddress.Broadcast, mac, "198.18.0.1", "198.18.0.100", 1000, 53, "via-t0"u8);
        byte[] toT1 = UdpFrame(MacAddress.Broadcast, mac, "198.18.0.1", "198.18.0.100", 1000, 53, "via-t1"u8);
        fixed (byte* a = toT0)
        fixed (byte* b = toT1)
        {
            tx.Add(a, toT0.Length, t0);
            tx.Add(b, toT1.Length, t1);
            tx.Add(a, toT0.Length, t0);
            Assert.That(tx.Flush(), Is.EqualTo(3));
        }
        Assert.That(tx.SendCalls, Is.EqualTo(1), "one sendmmsg for frames of two interfaces");
        List<CapturedFrame> on0 = Drain(p0, TimeSpan.FromSeconds(2), f => f.Count(x => x.IsUdp) >= 2);
        List<CapturedFrame> on1 = Drain(p1, TimeSpan.FromSeconds(2), f => f.Any(x => x.IsUdp));
        Assert.Multiple(() =>
        {
            Assert.That(on0.Where(f => f.IsUdp).Select(f => f.UdpPayloadText), Is.EqualTo(new[] { "via-t0", "via-t0" }));
            Assert.That(on1.Where(f => f.IsUdp).Select(f => f.UdpPayloadText), Is.EqualTo(new[] { "via-t1" }));
        });
    }

    [Test]
    public unsafe void A_worker_ring_leaves_the_engine_headroom_and_room_for_the_vnet_header()
    {
        using var ns = new TwoLinkNamespace();
        int reserve = Math.Max(64, FrameBuffer.RecommendedHeadroom + VirtioNetHeader.Size + 4);
        using PacketRxRing ring = ns.Run(() => new PacketRxRing(new PacketRxRingOptions("p0")
        {
            Version = RingVersion.V2,
            VirtioNetHeader = true,
            MinimumHeadroom = reserve,
            Filter = ServiceTrafficFilter.Build([Vip], []),
        }));
        ns.Send("t0", UdpFrame(MacAddress.Broadcast, MacAddress.Read([2, 0, 0, 0, 0, 9]), "198.18.0.1", "198.18.0.100", 1, 2, "x"u8));
        List<CapturedFrame> frames = Drain(ring, TimeSpan.FromSeconds(2), f => f.Any(x => x.IsUdp));
        CapturedFrame frame = frames.First(f => f.IsUdp);
        // tpacket_rcv: netoff = ALIGN(TPACKET2_HDRLEN + 16) + reserve + vnet; macoff = netoff − 14. The headroom before
        // the vnet header is macoff − 52 − 10 = 80 + reserve − 14 − 52 = reserve + 14.
        Assert.That(frame.Headroom, Is.EqualTo(reserve + 14));
        Assert.That(frame.Headroom, Is.GreaterThanOrEqualTo(FrameBuffer.RecommendedHeadroom + 4), "room for an outer header even after a VLAN tag went back in");
    }

    [TestCase(2)]
    [TestCase(3)]
    public void The_kernel_runs_the_steering_program_so_both_directions_reach_the_same_ring(int workers)
    {
        using var ns = new TwoLinkNamespace();
        ClassicBpfProgram steering = FanoutSteering.Build([Vip], workers);
        var group = new FanoutOptions((ushort)(0x7000 | (Environment.ProcessId & 0xFFF)), FanoutMode.ClassicBpf) { Program = steering };
        ClassicBpfProgram filter = ServiceTrafficFilter.Build([Vip], [], [Rip], []);
        var rings = new List<PacketRxRing>();
        try
        {
            for (int i = 0; i < workers; i++)
            {
                rings.Add(ns.Run(() => new PacketRxRing(new PacketRxRingOptions("p0") { Version = RingVersion.V2, Filter = filter, Fanout = group })));
            }
            var mac = MacAddress.Read([2, 0, 0, 0, 0, 9]);
            uint[] clients = [.. Enumerable.Range(1, 24).Select(i => Ipv4Address.Parse("198.18.64.0") + (uint)(i * 5))];
            foreach (uint client in clients)
            {
                string c = Ipv4Address.Format(client);
                ns.Send("t0", UdpFrame(MacAddress.Broadcast, mac, c, "198.18.0.100", 4000, 53, Encoding.ASCII.GetBytes("q" + c)));
                ns.Send("t0", UdpFrame(MacAddress.Broadcast, mac, "198.19.1.13", c, 53, 4000, Encoding.ASCII.GetBytes("r" + c)));
            }
            for (int i = 0; i < workers; i++)
            {
                List<CapturedFrame> frames = Drain(rings[i], TimeSpan.FromMilliseconds(500));
                foreach (CapturedFrame frame in frames.Where(f => f.IsUdp))
                {
                    uint client = frame.UdpPayloadText[0] == 'q' ? frame.Source : frame.Destination;
                    Assert.That(i, Is.EqualTo(FanoutSteering.WorkerOf(client, workers)), $"{frame.UdpPayloadText} on ring {i}");
                }
                Assert.That(frames.Count(f => f.IsUdp), Is.GreaterThan(0), $"ring {i} got nothing: clients spread badly");
            }
        }
        finally
        {
            foreach (PacketRxRing ring in rings)
            {
                ring.Dispose();
            }
        }
    }

    [Test]
    public void Route_lookup_runs_in_the_callers_namespace_and_finds_gateway_source_and_mtu()
    {
        using var ns = new TwoLinkNamespace();
        ns.Exec("ip route add 198.19.7.0/24 via 198.19.1.254 dev t1 mtu 1400");
        (RouteInfo? viaGateway, string? error) = ns.Run(() => (KernelRoutes.Get(InetAddress.Parse("198.19.7.9"), out string? e), e));
        (RouteInfo? onLink, _) = ns.Run(() => (KernelRoutes.Get(InetAddress.Parse("198.19.1.13"), out string? e), e));
        Assert.That(error, Is.Null);
        Assert.Multiple(() =>
        {
            Assert.That(viaGateway, Is.EqualTo(new RouteInfo("t1", InetAddress.Parse("198.19.1.254"), InetAddress.Parse("198.19.1.1"), 1400)));
            Assert.That(onLink, Is.EqualTo(new RouteInfo("t1", null, InetAddress.Parse("198.19.1.1"), null)));
        });
    }

    /// <summary>A namespace udrio&lt;random&gt; with t0↔p0 (198.18.0.2/24 on t0) and t1↔p1 (198.19.1.1/24 on t1), up.</summary>
    private sealed class TwoLinkNamespace : IDisposable
    {
        public TwoLinkNamespace()
        {
            Name = "udrio" + RandomNumberGenerator.GetHexString(8, lowercase: true);
            Ip(["netns", "add", Name]);
            try
            {
                Exec("ip link add t0 type veth peer name p0 && ip link add t1 type veth peer name p1 && " +
                     "ip addr add 198.18.0.2/24 dev t0 && ip addr add 198.19.1.1/24 dev t1 && " +
                     "for d in t0 p0 t1 p1; do ip link set $d up; done");
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public string Name { get; }

        public T Run<T>(Func<T> action) => NetworkNamespace.Run(Name, action);

        public void Exec(string command) => Ip(["netns", "exec", Name, "sh", "-c", command]);

        /// <summary>Sends one frame out of <paramref name="device"/> (a bound PacketTxBatch, no vnet header).</summary>
        public unsafe void Send(string device, byte[] frame)
        {
            using PacketTxBatch tx = Run(() => new PacketTxBatch(new PacketTxBatchOptions(device) { Capacity = 1 }));
            fixed (byte* start = frame)
            {
                tx.Add(start, frame.Length);
                tx.Flush();
            }
        }

        public void Dispose() => Ip(["netns", "del", Name], check: false);

        private static void Ip(string[] arguments, bool check = true)
        {
            CommandResult result = ProcessRunner.Run("ip", arguments, TimeSpan.FromSeconds(10));
            if (check && result.ExitCode != 0)
            {
                throw new InvalidOperationException($"ip {string.Join(' ', arguments)}: {result.Error}");
            }
        }
    }
}
