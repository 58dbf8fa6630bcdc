using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Engine;
using UserspaceDr.Linux;
using UserspaceDr.Tests.Forwarding;

namespace UserspaceDr.Tests.Io.Engine;

/// <summary>The one offload policy every backend applies: virtio_net_hdr ↔ frame flags, and when and how a super-frame is cut.</summary>
public class OffloadPolicyTests
{
    private static readonly uint Vip = Ipv4Address.Parse(Frames.Vip);
    private static readonly uint Rs1 = Ipv4Address.Parse(Frames.Rs1);

    [Test]
    public void A_received_header_becomes_partial_checksum_and_gso_flags()
    {
        var partialGso = new VirtioNetHeader { Flags = VirtioNetHeader.FlagNeedsChecksum, GsoType = VirtioNetHeader.GsoTcpV4, GsoSize = 1448 };
        Assert.Multiple(() =>
        {
            Assert.That(OffloadPolicy.ReceiveFlags(partialGso), Is.EqualTo(FrameFlags.ChecksumPartial | FrameFlags.Gso));
            Assert.That(OffloadPolicy.ReceiveFlags(new VirtioNetHeader { Flags = VirtioNetHeader.FlagDataValid }), Is.EqualTo(FrameFlags.None));
            Assert.That(OffloadPolicy.ReceiveFlags(default), Is.EqualTo(FrameFlags.None));
        });
    }

    [Test]
    public void Without_a_header_the_checksum_is_unknown_and_a_frame_beyond_the_mtu_is_a_super_frame()
    {
        byte[] wire = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: new byte[1460]); // 1514 bytes
        byte[] super = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: new byte[2920]);
        byte[] tagged = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true, payload: new byte[1460], vlan: 7); // 1518 bytes
        Assert.Multiple(() =>
        {
            Assert.That(OffloadPolicy.ReceiveFlagsWithoutHeader(OffloadPolicy.IsSuperFrame(wire, 1500)), Is.EqualTo(FrameFlags.ChecksumUnknown));
            Assert.That(OffloadPolicy.ReceiveFlagsWithoutHeader(OffloadPolicy.IsSuperFrame(super, 1500)), Is.EqualTo(FrameFlags.ChecksumUnknown | FrameFlags.Gso));
            Assert.That(OffloadPolicy.IsSuperFrame(tagged, 1500), Is.False, "an 802.1Q tag is not counted against the MTU");
        });
    }

    [Test]
    public void Only_a_super_frame_that_may_go_to_a_tunnel_server_is_cut_before_the_engine()
    {
        var rules = new RuleSetSpec([
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), 80, "rr") { RealServers = [new RealServerSpec(InetAddress.FromIPv4(Rs1), 80)] },
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), 81, "rr") { RealServers = [new RealServerSpec(InetAddress.FromIPv4(Rs1), 81, ForwardingMethod.Tunnel)] },
        ]);
        var engine = new ForwardingEngine(new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac) }, new ConnectionTable<uint>(1024))
        {
            Snapshot = new EngineSnapshot(RuleSet.Build(rules), NeighborTable.Empty, Timeouts.Default),
        };
        FlowHint direct = engine.Prefetch(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, ack: true));
        FlowHint tunnelled = engine.Prefetch(Frames.Tcp(Frames.Client, 40000, Frames.Vip, 81, ack: true));
        Assert.Multiple(() =>
        {
            Assert.That(OffloadPolicy.CutBeforeEngine(isSuperFrame: true, tunnelled), Is.True);
            Assert.That(OffloadPolicy.CutBeforeEngine(isSuperFrame: false, tunnelled), Is.False, "a wire-size frame needs no cut");
            Assert.That(OffloadPolicy.CutBeforeEngine(isSuperFrame: true, direct), Is.False, "DR/NAT super-frames go to the kernel to segment");
        });
    }

    [Test]
    public void A_tunnel_super_frame_is_cut_at_the_senders_segment_size_or_else_at_the_narrowest_tunnel_path()
    {
        byte[] super = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 81, ack: true, payload: new byte[6000]);
        var rules = RuleSet.Build(new RuleSetSpec([
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), 81, "rr") { RealServers = [new RealServerSpec(InetAddress.FromIPv4(Rs1), 81, ForwardingMethod.Tunnel)] },
        ]));
        var snapshot = new EngineSnapshot(rules, NeighborTable.Empty.With(Rs1, new NextHop(Frames.UdrMac(Frames.Rs1Mac), Link: 0, Mtu: 1400)), Timeouts.Default);
        Assert.Multiple(() =>
        {
            // The sender's gso_size (from the virtio_net_hdr): its learned path MTU holds.
            Assert.That(OffloadPolicy.TunnelSegmentCount(super, 1500, gsoSize: 1000, snapshot, out int payload), Is.EqualTo(6));
            Assert.That(payload, Is.EqualTo(1000));
            // Not known (libpcap): segments that fit the tunnel server's 1400-byte path once 20 bytes of outer header are added.
            Assert.That(OffloadPolicy.TunnelSegmentCount(super, 1500, gsoSize: 0, snapshot, out payload), Is.EqualTo(5));
            Assert.That(payload, Is.EqualTo(1380 - 40));
        });
    }

    [Test]
    public void The_header_sent_back_follows_the_frame_the_engine_made()
    {
        var received = new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsChecksum, GsoType = VirtioNetHeader.GsoTcpV4, HeaderLength = 66, GsoSize = 1448,
            ChecksumStart = 34, ChecksumOffset = 16,
        };
        VirtioNetHeader encapsulated = OffloadPolicy.TransmitHeader(received, FrameFlags.ChecksumPartial | FrameFlags.Gso, growth: 20);
        VirtioNetHeader finished = OffloadPolicy.TransmitHeader(received, FrameFlags.Gso, growth: 0);
        Assert.Multiple(() =>
        {
            Assert.That((encapsulated.ChecksumStart, encapsulated.HeaderLength, encapsulated.ChecksumOffset), Is.EqualTo(((ushort)54, (ushort)86, (ushort)16)),
                "offsets move by the outer header the engine put in front");
            Assert.That(encapsulated.NeedsChecksum && encapsulated.IsGso, Is.True);
            Assert.That(finished.NeedsChecksum, Is.False, "the engine finished the checksum: no stale NEEDS_CSUM");
            Assert.That((finished.ChecksumStart, finished.ChecksumOffset), Is.EqualTo(((ushort)0, (ushort)0)));
            Assert.That(finished.GsoSize, Is.EqualTo((ushort)1448), "the kernel still segments at the sender's size");
        });
    }
}
