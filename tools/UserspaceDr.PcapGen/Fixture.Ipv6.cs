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
        Record(frame, "forwarded", Expect6.DirectRoute(frame, server), description, $"→ {server.Name}{scheduled}");
        return server;
    }

    /// <summary>A later IPv6 fragment: it follows its datagram's first fragment, or is dropped without one.</summary>
    public void LaterFragmentIpv6(byte[] frame, IPAddress client, uint id, Protocol protocol, string description)
    {
        Destination? destination = Director.FragmentDestination(client, Lab.Vip6, (int)id, protocol);
        if (destination is null)
        {
            Record(frame, "fragment-without-first", null, description, "(dropped: its first fragment was never seen)");
            return;
        }
        Count(destination.Server, scheduled: false, frames: 1);
        Record(frame, "forwarded-fragment", Expect6.DirectRoute(frame, destination.Server), description, $"→ {destination.Server.Name}, as its first fragment");
    }

    /// <summary>An ICMPv6 error to the VIP about a reply of a tracked connection: relayed unchanged to that connection's server.</summary>
    public void Icmpv6ErrorAbout(byte[] frame, Protocol protocol, IPAddress client, int clientPort, int virtualPort, string description)
    {
        Destination? destination = Director.ConnectionOf(protocol, client, clientPort, virtualPort);
        if (destination is null)
        {
            Record(frame, "icmp-error-not-tracked", null, description, "(no connection: left to the kernel)");
            return;
        }
        Count(destination.Server, scheduled: false, frames: 0);
        Record(frame, "forwarded-icmp-error", Expect6.DirectRoute(frame, destination.Server), description, $"→ {destination.Server.Name}, the connection's server");
    }
}

/// <summary>What the script says an IPv6 packet is: its protocol, client, ports, TCP flags and (a first fragment) its identification.</summary>
internal sealed record Packet6(Protocol Protocol, IPAddress Client, int ClientPort, int VirtualPort, TcpFlagSet Flags = default, uint? FragmentId = null);
