using System.Collections.Immutable;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Io.Runtime;

/// <summary>When a VIP may be announced (udr run --announce): a server of weight above 0 in the rules in force, not a standby.</summary>
public class VipAnnouncerTests
{
    private static readonly InetAddress Vip = InetAddress.Parse("198.18.0.100");

    private static RuleSet Rules(params int[] weights) => RuleSet.Build(new RuleSetSpec([
        new VirtualServiceSpec(ServiceProtocol.Tcp, Vip, 80, "mh")
        {
            RealServers = [.. weights.Select((w, i) => new RealServerSpec(InetAddress.Parse($"198.18.0.{11 + i}"), 80, ForwardingMethod.Route, w))],
        },
        new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.0.101"), 80, "rr") { RealServers = ImmutableArray<RealServerSpec>.Empty },
    ]));

    [Test]
    public void A_vip_is_servable_while_one_of_its_servers_has_weight_and_the_balancer_is_not_a_standby()
    {
        Assert.Multiple(() =>
        {
            Assert.That(VipAnnouncer.Servable(Rules(1, 0), Vip, standby: false), Is.True);
            Assert.That(VipAnnouncer.Servable(Rules(0, 0), Vip, standby: false), Is.False, "every server quiesced or failed");
            Assert.That(VipAnnouncer.Servable(Rules(), Vip, standby: false), Is.False, "no server");
            Assert.That(VipAnnouncer.Servable(Rules(1, 1), Vip, standby: true), Is.False, "a standby backup forwards nothing");
            Assert.That(VipAnnouncer.Servable(Rules(1), InetAddress.Parse("198.18.0.101"), standby: false), Is.False, "a VIP without servers");
            Assert.That(VipAnnouncer.Servable(Rules(1), InetAddress.Parse("198.18.0.102"), standby: false), Is.False, "a VIP without a service");
        });
    }
}
