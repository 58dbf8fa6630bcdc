using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Real servers on the balancer itself (ip_vs_xmit.c: when the route to the server is local, __ip_vs_get_out_rt
/// returns it and the packet is handed to the local stack, with no TTL decrement and no encapsulation). udr's local
/// stack is a link of its own (<see cref="EngineOptions.LocalLink"/>, a TAP device the host writes to), so the frame
/// only gets that link's MAC header. For NAT the destination is left as it is too: the host's kernel rewrites it as
/// the frame enters (Io's LocalNatTable), where conntrack can translate the server's replies back, which udr, seeing
/// none of them, could not; NAT to 127.0.0.0/8 or ::1 is dropped, as IPVS drops it for traffic from outside.
/// </summary>
public sealed partial class ForwardingEngine
{
    private FrameReason DeliverLocally(ref FrameContext frame, ref FrameBuffer packet, ForwardingMethod method, InetAddress server, NextHop nextHop)
    {
        if (method == ForwardingMethod.Masquerade && (server.IsIPv4 ? (server.IPv4 >> 24) == 127 : server.IPv6 == UInt128.One))
        {
            return FrameReason.LocalServerMasquerade;
        }
        frame.Ethernet.Destination = nextHop.Mac;
        frame.Ethernet.Source = _links[nextHop.Link].Mac;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        return FrameReason.DeliveredLocally;
    }
}
