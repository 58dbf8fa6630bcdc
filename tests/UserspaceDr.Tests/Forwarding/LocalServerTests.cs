using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Engine;
using UserspaceDr.Linux;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// Real servers on the balancer itself (ip_vs_xmit.c: a local route hands the packet to the local stack unchanged,
/// whatever the method): the frame goes by the engine's local link with only its MAC header new, no TTL or hop limit
/// taken off, nothing encapsulated, for NAT too (the host's kernel rewrites it, and translates the replies); NAT to
/// loopback from outside is refused by name, as IPVS refuses it.
/// </summary>
public class LocalServerTests
{
    private const string Loopback = "127.0.0.1";
    private const string Loopback6 = "::1";
    private static readonly MacAddress DeviceMac = LocalDelivery.DeviceMac;

    private static EngineHarness Lab(ForwardingMethod method, string server = Loopback, string vip = Frames.Vip)
    {
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(server), 80, method)],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links = [new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse("198.18.0.2")), new EngineLink(LocalDelivery.UdrMac, 65535)],
            LocalLink = 1,
        };
        var lab = new EngineHarness(new RuleSetSpec([service]), options: options);
        InetAddress address = InetAddress.Parse(server);
        lab.Neighbors = address.IsIPv4
            ? lab.Neighbors.With(address.IPv4, new NextHop(DeviceMac, Link: 1, Mtu: 65535))
            : new NeighborTable(lab.Neighbors.Hops, new Dictionary<UInt128, NextHop> { [address.IPv6] = new NextHop(DeviceMac, Link: 1, Mtu: 65535) });
        return lab;
    }

    [TestCase(ForwardingMethod.Route)]
    [TestCase(ForwardingMethod.Tunnel)]
    public void A_connection_to_a_local_server_goes_to_the_local_link_unchanged_but_for_its_macs(ForwardingMethod method)
    {
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true, payload: new byte[1400]);
        EngineHarness.Outcome outcome = Lab(method).ProcessBuffer(syn);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.DeliveredLocally));
        Assert.That(FrameReasons.VerdictOf(outcome.Reason), Is.EqualTo(Verdict.Transmit));
        Assert.That(outcome.Link, Is.EqualTo(1));
        byte[] sent = outcome.Frame;
        Assert.That(MacAddress.Read(sent), Is.EqualTo(DeviceMac));
        Assert.That(MacAddress.Read(sent.AsSpan(6)), Is.EqualTo(LocalDelivery.UdrMac));
        Assert.That(sent.AsSpan(12).ToArray(), Is.EqualTo(syn.AsSpan(12).ToArray()),
            "the IP packet as the client sent it: the VIP its destination, TTL 64, not encapsulated, checksums as they were");
    }

    [Test]
    public void Nat_to_a_local_address_goes_unchanged_for_the_kernel_to_rewrite_and_nat_to_loopback_is_refused_by_name()
    {
        byte[] syn = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        EngineHarness.Outcome own = Lab(ForwardingMethod.Masquerade, "198.18.0.2").ProcessBuffer(syn);
        Assert.That(own.Reason, Is.EqualTo(FrameReason.DeliveredLocally));
        Assert.That(own.Frame.AsSpan(12).ToArray(), Is.EqualTo(syn.AsSpan(12).ToArray()), "VIP:vport still: the host's DNAT rewrites it as it enters");
        Assert.That(Lab(ForwardingMethod.Masquerade).ProcessBuffer(syn).Reason, Is.EqualTo(FrameReason.LocalServerMasquerade), "DNAT to 127.0.0.1 from outside");
        Assert.That(Lab(ForwardingMethod.Masquerade, Loopback6, Frames6.Vip).ProcessBuffer(Frames6.Tcp(40000)).Reason, Is.EqualTo(FrameReason.LocalServerMasquerade));
        Assert.That(FrameReasons.VerdictOf(FrameReason.LocalServerMasquerade), Is.EqualTo(Verdict.Drop));
        Assert.That(FrameReasons.Name(FrameReason.DeliveredLocally), Is.EqualTo("delivered-locally"));
    }

    [Test]
    public void An_ipv6_connection_to_a_local_server_keeps_its_hop_limit()
    {
        byte[] syn = Frames6.Tcp(40000, hopLimit: 1);
        EngineHarness.Outcome outcome = Lab(ForwardingMethod.Route, Loopback6, Frames6.Vip).ProcessBuffer(syn);
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.DeliveredLocally), "hop limit 1 is no matter: the packet is not forwarded");
        Assert.That(outcome.Link, Is.EqualTo(1));
        Assert.That(outcome.Frame.AsSpan(12).ToArray(), Is.EqualTo(syn.AsSpan(12).ToArray()));
    }

    [Test]
    public void A_partial_checksum_enters_the_local_stack_as_needs_csum_with_its_offsets()
    {
        byte[] tcp4 = Frames.Tcp(Frames.Client, 40000, Frames.Vip, 80, syn: true);
        VirtioNetHeader header = OffloadPolicy.LocalDeliveryHeader(tcp4.AsSpan(14), FrameFlags.ChecksumPartial | FrameFlags.Gso);
        Assert.That((header.Flags, header.GsoType, header.ChecksumStart, header.ChecksumOffset),
            Is.EqualTo((VirtioNetHeader.FlagNeedsChecksum, VirtioNetHeader.GsoNone, (ushort)34, (ushort)16)), "TCP after a 20-byte IPv4 header; a super-frame goes in whole");
        byte[] udp6 = Frames6.Udp(40000, [1, 2, 3]);
        header = OffloadPolicy.LocalDeliveryHeader(udp6.AsSpan(14), FrameFlags.ChecksumPartial);
        Assert.That((header.ChecksumStart, header.ChecksumOffset), Is.EqualTo(((ushort)54, (ushort)6)), "UDP after the 40-byte IPv6 header");
        Assert.That(OffloadPolicy.LocalDeliveryHeader(tcp4.AsSpan(14), FrameFlags.ChecksumUnknown), Is.EqualTo(default(VirtioNetHeader)),
            "a checksum the engine left as it was is the stack's to check");
    }
}
