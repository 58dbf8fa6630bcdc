using System.Net;

namespace UserspaceDr.PcapGen;

/// <summary>The IPv6 side of a fixture's script: the IPVS model's decision for an IPv6 packet, and its expected frame.</summary>
internal sealed partial class Fixture
{
    /// <summary>
    /// A TCP segment or UDP datagram for an IPv6 service, described by the script that built it (the model does not
    /// parse extension headers): the IPVS model decides, and the expected frame follows (ip_vs_dr_xmit_v6: MACs and
    /// hop limit; time exceeded at hop limit 1; Packet Too Big when it does not fit the 1500-byte link).
    /// </summary>
    public RealServer? ServiceIpv6(byte[] frame, Packet6 packet, string description)
    {
        Decision decision = Director.Packet(packet.Protocol, packet.Client, packet.ClientPort, packet.VirtualPort, packet.Flags, NowMs);
        switch (decision.Kind)
        {
            case DecisionKind.TcpNotSyn:
                Record(frame, "tcp-not-syn", null, description, "(no connection; IPVS schedules only on SYN)");
                return null;
            case DecisionKind.NoServer:
                Record(frame, "icmp-port-unreachable", Expect6.Icmpv6Error(frame, 1, 4, 0), description, "→ ICMPv6 port unreachable from the VIP");
                return null;
            default:
                break;
        }
        RealServer server = decision.Destination!.Server;
        Count(server, decision.Scheduled, frames: 1);
        if (packet.FragmentId is uint id)
        {
            Director.RememberFragment(packet.Client, Lab.Vip6, (int)id, packet.Protocol, decision.Destination);
        }
        string scheduled = decision.Scheduled ? " (new connection)" : "";
        if (frame[Build.EthernetHeader + 7] <= 1)
        {
            Record(frame, "icmp-time-exceeded", Expect6.Icmpv6Error(frame, 3, 0, 0), description, $"→ ICMPv6 time exceeded from the VIP; connection to {server.Name} kept");
            return server;
        }
        if (frame.Length - Build.EthernetHeader > Expect6.LinkMtu)
        {
            Record(frame, "icmpv6-packet-too-big", Expect6.Icmpv6Error(frame, 2, 0, Expect6.LinkMtu), description,
                $"→ Packet Too Big (MTU {Expect6.LinkMtu}) from the VIP; connection to {server.Name} kept");
            return server;
        }
        Record(frame, "forwarded", Expect.DirectRoute(frame, server), description, $"→ {server.Name}{scheduled}");
        return server;
    }

    /// <summary>A later IPv6 fragment (of <paramref name="client"/>'s datagram <paramref name="id"/>): it follows its first fragment, or is dropped without one.</summary>
    public void LaterFragmentIpv6(byte[] frame, IPAddress client, uint id, Protocol protocol, string description) =>
        FollowFirstFragment(frame, Director.FragmentDestination(client, Lab.Vip6, (int)id, protocol), description);
}

/// <summary>What the script says an IPv6 packet is: its protocol, client, ports, TCP flags and (a first fragment) its identification.</summary>
internal sealed record Packet6(Protocol Protocol, IPAddress Client, int ClientPort, int VirtualPort, TcpFlagSet Flags = default, uint? FragmentId = null);
