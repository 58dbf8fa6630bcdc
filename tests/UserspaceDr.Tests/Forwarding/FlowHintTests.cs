using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>What the prefetch stage hands to processing: read once, used only under the rules and for the frame it was made for.</summary>
public class FlowHintTests
{
    private static readonly uint Vip = Ipv4Address.Parse(Frames.Vip);

    private static VirtualServiceSpec Service(ushort port, ForwardingMethod method) =>
        new(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), port, "rr") { RealServers = [new RealServerSpec(InetAddress.Parse(Frames.Rs1), port, method)] };

    private static EngineSnapshot Snapshot(params VirtualServiceSpec[] services) =>
        new(RuleSet.Build(new RuleSetSpec([.. services])), NeighborTable.Empty, Timeouts.Default);

    private static ForwardingEngine Engine(EngineSnapshot snapshot) =>
        new(new EngineOptions { LocalMac = Frames.UdrMac(Frames.BalancerMac) }, new ConnectionTable<uint>(1024)) { Snapshot = snapshot };

    private static byte[] Syn(ushort port) => Frames.Tcp(Frames.Client, 40000, Frames.Vip, port, syn: true);

    private static FrameReason Process(ForwardingEngine engine, byte[] frame, FlowHint hint)
    {
        var packet = new FrameBuffer(frame) { Hint = hint };
        return engine.ProcessWithReason(ref packet, 1_000, new byte[ReplyBuilder.MaxReplyLength], out _);
    }

    [Test]
    public void A_hint_carries_the_flow_and_whether_its_service_has_a_tunnel_server()
    {
        ForwardingEngine engine = Engine(Snapshot(Service(80, ForwardingMethod.Route), Service(81, ForwardingMethod.Tunnel)));
        FlowHint direct = engine.Prefetch(Syn(80));
        FlowHint tunnelled = engine.Prefetch(Syn(81));
        FlowHint noService = engine.Prefetch(Syn(99));
        Assert.Multiple(() =>
        {
            Assert.That(direct.HasKey && !direct.MayBeTunnelled, Is.True, "a DR service");
            Assert.That(tunnelled.HasKey && tunnelled.MayBeTunnelled, Is.True, "a service with an IP-in-IP server");
            Assert.That(noService.HasKey && !noService.MayBeTunnelled, Is.True, "no service: a key, nothing to cut");
            Assert.That(engine.Prefetch(new byte[20]).HasKey, Is.False, "a runt frame gets no hint");
        });
    }

    [Test]
    public void A_hint_is_used_only_under_the_rules_and_for_the_frame_it_was_made_for()
    {
        EngineSnapshot withService = Snapshot(Service(80, ForwardingMethod.Route));
        ForwardingEngine engine = Engine(withService);
        FlowHint hint = engine.Prefetch(Syn(80));
        // The service is found (no neighbour for the server is configured, so the frame stops there).
        Assert.That(Process(engine, Syn(80), hint), Is.EqualTo(FrameReason.NeighborUnresolved));
        // Another frame handed the same hint: its own key decides.
        Assert.That(Process(engine, Syn(99), hint), Is.EqualTo(FrameReason.NoVirtualService));
        // The service was deleted after the hint was made: the hint is stale and ignored.
        engine.Snapshot = Snapshot(Service(81, ForwardingMethod.Route));
        Assert.That(Process(engine, Syn(80), hint), Is.EqualTo(FrameReason.NoVirtualService));
    }
}
