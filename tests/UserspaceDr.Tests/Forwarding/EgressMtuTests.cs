using System.Net;
using PacketDotNet;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Forwarding;

/// <summary>
/// A packet that does not fit the link it would leave by (two links with different MTUs): with DF the sender is told
/// the MTU, as ensure_mtu_is_adequate and a forwarding kernel tell it; without DF it is dropped under a named reason;
/// a GSO super-frame is the kernel's to segment and goes on.
/// </summary>
public class EgressMtuTests
{
    // Link 0 (MTU 1500) faces the clients; link 1 (MTU 1000) the servers: rs1 (DR) and a NAT server.
    private const string ServerLinkAddress = "198.18.2.2";
    private const string NatServer = "198.18.2.13";
    private static readonly System.Net.NetworkInformation.PhysicalAddress ServerLinkMac = Frames.Mac("02:00:00:00:02:02");
    private static readonly System.Net.NetworkInformation.PhysicalAddress NatServerMac = Frames.Mac("02:00:00:00:02:13");

    private static EngineHarness Lab()
    {
        var dr = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 80, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(Frames.Rs1), 80)],
        };
        var nat = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse(Frames.Vip), 8080, "rr")
        {
            RealServers = [new RealServerSpec(InetAddress.Parse(NatServer), 80, ForwardingMethod.Masquerade)],
        };
        var options = new EngineOptions
        {
            LocalMac = Frames.UdrMac(Frames.BalancerMac),
            Links =
            [
                new EngineLink(Frames.UdrMac(Frames.BalancerMac), 1500, Ipv4Address.Parse("198.18.0.2")),
                new EngineLink(Frames.UdrMac(ServerLinkMac), 1000, Ipv4Address.Parse(ServerLinkAddress)),
            ],
        };
        var lab = new EngineHarness(new RuleSetSpec([dr, nat]), options: options);
        lab.Neighbors = lab.Neighbors
            .With(Ipv4Address.Parse(Frames.Rs1), new NextHop(Frames.UdrMac(Frames.Rs1Mac), Link: 1, Mtu: 1000))
            .With(Ipv4Address.Parse(NatServer), new NextHop(Frames.UdrMac(NatServerMac), Link: 1, Mtu: 1000));
        return lab;
    }

    private static byte[] Request(ushort port, int payload, bool dontFragment, bool syn = true) =>
        Frames.WithIpHeader(Frames.Tcp(Frames.Client, 40000, Frames.Vip, port, syn: syn, payload: new byte[payload]), 0, dontFragment);

    private static int NextHopMtu(byte[] reply, out IPv4Packet ip)
    {
        (_, ip) = Frames.Decode(reply);
        byte[] icmp = reply.AsSpan(34, ip.TotalLength - 20).ToArray();
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)3, (byte)4)), "fragmentation needed");
        Assert.That(Frames.ChecksumVerifies(icmp), Is.True);
        return (icmp[6] << 8) | icmp[7];
    }

    [Test]
    public void A_df_request_too_big_for_the_server_link_is_answered_with_its_mtu_from_the_vip()
    {
        EngineHarness.Outcome outcome = Lab().ProcessBuffer(Request(80, 1100, dontFragment: true));
        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        Assert.That(NextHopMtu(outcome.Reply, out IPv4Packet ip), Is.EqualTo(1000));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(Frames.Vip)));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(Frames.Client)));
        Assert.That(outcome.Link, Is.EqualTo(0), "back the way it came");
    }

    [Test]
    public void Without_df_it_is_dropped_and_counted_and_what_fits_or_is_gso_goes_on()
    {
        EngineHarness lab = Lab();
        Assert.That(lab.ProcessBuffer(Request(80, 1100, dontFragment: false)).Reason, Is.EqualTo(FrameReason.EgressMtuExceeded));
        Assert.That(lab.ProcessBuffer(Request(80, 900, dontFragment: true)).Reason, Is.EqualTo(FrameReason.Forwarded));
        EngineHarness.Outcome gso = lab.ProcessBuffer(Request(80, 1100, dontFragment: true, syn: false), flags: FrameFlags.Gso);
        Assert.That(gso.Reason, Is.EqualTo(FrameReason.Forwarded), "a super-frame is segmented by the kernel on the way out");
        Assert.That(gso.Link, Is.EqualTo(1));
    }

    [Test]
    public void A_df_nat_reply_too_big_for_the_client_link_tells_the_server_from_the_balancers_address()
    {
        EngineHarness lab = Lab();
        // A reply larger than the client's link (link 0, MTU 1500) allows, from a server whose own link is wider.
        Assert.That(lab.ProcessBuffer(Request(8080, 10, dontFragment: true)).Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] reply = Frames.WithIpHeader(Frames.Tcp(NatServer, 80, Frames.Client, 40000, syn: true, ack: true, payload: new byte[1600]), 0, true);
        NatServerMac.GetAddressBytes().CopyTo(reply, 6);
        ServerLinkMac.GetAddressBytes().CopyTo(reply, 0);

        EngineHarness.Outcome outcome = lab.ProcessBuffer(reply, link: 1);

        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.IcmpFragmentationNeeded));
        Assert.That(NextHopMtu(outcome.Reply, out IPv4Packet ip), Is.EqualTo(1500));
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(ServerLinkAddress)), "from the balancer's address on the server's side");
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(NatServer)));
        Assert.That(outcome.Link, Is.EqualTo(1));
    }

    [Test]
    public void A_nat_reply_whose_ttl_expires_here_draws_time_exceeded_to_the_server_from_the_balancers_address()
    {
        EngineHarness lab = Lab();
        Assert.That(lab.ProcessBuffer(Request(8080, 10, dontFragment: true)).Reason, Is.EqualTo(FrameReason.Forwarded));
        byte[] reply = Frames.Tcp(NatServer, 80, Frames.Client, 40000, syn: true, ack: true, ttl: 1);
        NatServerMac.GetAddressBytes().CopyTo(reply, 6);
        ServerLinkMac.GetAddressBytes().CopyTo(reply, 0);

        EngineHarness.Outcome outcome = lab.ProcessBuffer(reply, link: 1);

        Assert.That(outcome.Reason, Is.EqualTo(FrameReason.IcmpTimeExceeded));
        (EthernetPacket ethernet, IPv4Packet ip) = Frames.Decode(outcome.Reply);
        byte[] icmp = outcome.Reply.AsSpan(34, ip.TotalLength - 20).ToArray();
        Assert.That((icmp[0], icmp[1]), Is.EqualTo(((byte)11, (byte)0)), "time exceeded in transit");
        Assert.That(ip.SourceAddress, Is.EqualTo(IPAddress.Parse(ServerLinkAddress)));
        Assert.That(ip.DestinationAddress, Is.EqualTo(IPAddress.Parse(NatServer)));
        Assert.That(ethernet.DestinationHardwareAddress, Is.EqualTo(NatServerMac));
        Assert.That(outcome.Link, Is.EqualTo(1));
    }
}
