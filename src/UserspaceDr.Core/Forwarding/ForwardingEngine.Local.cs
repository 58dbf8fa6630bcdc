using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Real servers on the balancer itself (ip_vs_xmit.c: when the route to the server is local, __ip_vs_get_out_rt
/// returns it and the packet is handed to the local stack as it is, whatever the method, with no TTL decrement and no
/// encapsulation). udr's local stack is a link of its own (<see cref="EngineOptions.LocalLink"/>, a TAP device the
/// host writes to), so the frame only gets that link's MAC header.
/// </summary>
public sealed partial class ForwardingEngine
{
    private FrameReason DeliverLocally(ref FrameContext frame, ref FrameBuffer packet, ForwardingMethod method, NextHop nextHop)
    {
        if (method == ForwardingMethod.Masquerade)
        {
            // IPVS translates a local NAT server's replies in its OUTPUT hook (ip_vs_local_reply4); udr sees none of
            // them, so a client would get replies from RIP:rport. Refused by name instead of half done.
            return FrameReason.LocalServerMasquerade;
        }
        frame.Ethernet.Destination = nextHop.Mac;
        frame.Ethernet.Source = _links[nextHop.Link].Mac;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        return FrameReason.DeliveredLocally;
    }
}
