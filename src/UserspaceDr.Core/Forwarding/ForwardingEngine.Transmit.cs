using System.Runtime.CompilerServices;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// The transmit stage (ip_vs_xmit.c): a packet of a tracked connection goes to its real server by the connection's
/// method. Direct routing: the L2 header is rewritten and TTL decremented; nothing else changes. NAT: the same after
/// DNAT to RIP:rport (ip_vs_nat_xmit). Tunnel: the same inner packet inside an outer IPv4 header to the RIP
/// (ForwardingEngine.Tunnel.cs), or an outer IPv6 header for an IPv6 tunnel server (ForwardingEngine.Tunnel6.cs).
/// </summary>
public sealed partial class ForwardingEngine
{
    private FrameReason Transmit(ref FrameContext frame, ref FrameBuffer packet, in ForwardingTarget target)
    {
        RealServer? dest = target.Server;
        if (dest is not null && dest.Removed)
        {
            return FrameReason.DestinationRemoved;
        }
        ForwardingMethod method = target.Method;
        if (method is not (ForwardingMethod.Route or ForwardingMethod.Masquerade or ForwardingMethod.Tunnel))
        {
            return FrameReason.ForwardingMethodUnavailable;
        }
        if (method == ForwardingMethod.Tunnel && dest is { Address.IsIPv6: true })
        {
            return TunnelIpv4InIpv6(ref frame, ref packet, dest); // an IPv4 service's IPv6 tunnel server: off the common path
        }
        if (!_snapshot.Neighbors.TryGet(target.Address, out NextHop nextHop))
        {
            return FrameReason.NeighborUnresolved;
        }
        if (nextHop.Link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        if (nextHop.Link == _localLink)
        {
            FinishChecksumIfNeeded(ref frame, ref packet);
            return DeliverLocally(ref frame, ref packet, method, InetAddress.FromIPv4(target.Address), nextHop);
        }
        uint tunnelSource = 0;
        TunnelEncapsulation encapsulation = default;
        if (method == ForwardingMethod.Tunnel)
        {
            encapsulation = dest?.Tunnel ?? default;
            FrameReason unfit = CheckTunnelPath(ref frame, ref packet, target.Address, nextHop, encapsulation, out tunnelSource);
            if (unfit != FrameReason.Forwarded)
            {
                return unfit;
            }
        }
        Ipv4Header ip = frame.Ip;
        if (TimeToLiveExpired(ref frame, ref packet, out FrameReason expired))
        {
            return expired;
        }
        int egressMtu = nextHop.Mtu > 0 ? nextHop.Mtu : _links[nextHop.Link].Mtu;
        if (method != ForwardingMethod.Tunnel && ip.TotalLength > egressMtu && (frame.Flags & FrameFlags.Gso) == 0)
        {
            // ensure_mtu_is_adequate: the server's link is narrower than the one the packet came by.
            return RefuseTooBig(ref frame, ref packet, egressMtu, ip.Destination);
        }
        FinishChecksumIfNeeded(ref frame, ref packet);
        if (method == ForwardingMethod.Masquerade)
        {
            // DNAT: VIP:vport becomes RIP:rport (ip_vs_nat_xmit).
            NatRewrite.Destination(ip, frame.Transport, target.Address, target.Port, (frame.Flags & FrameFlags.ChecksumPartial) != 0);
        }
        ip.DecrementTimeToLive();
        if (method == ForwardingMethod.Tunnel)
        {
            return Encapsulate(ref frame, ref packet, target.Address, nextHop, tunnelSource, encapsulation);
        }
        frame.Ethernet.Destination = nextHop.Mac;
        frame.Ethernet.Source = _links[nextHop.Link].Mac;
        packet.Link = nextHop.Link;
        packet.Flags = frame.Flags;
        return FrameReason.Forwarded;
    }

    /// <summary>
    /// An IPv4 packet whose TTL would expire on the way: answered with time exceeded from the VIP (IPVS decrements TTL
    /// when the route to the server is not local, ip_vs_xmit.c), or, for a relayed ICMP error, dropped (no error is
    /// sent about an error). False when the packet may go on.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TimeToLiveExpired(ref FrameContext frame, ref FrameBuffer packet, out FrameReason reason)
    {
        Ipv4Header ip = frame.Ip;
        reason = FrameReason.Forwarded;
        if (ip.TimeToLive > 1)
        {
            return false;
        }
        if (ip.Protocol == IpProtocol.Icmp)
        {
            reason = FrameReason.IcmpErrorTtlExpired;
            return true;
        }
        frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, ip, _links[packet.Link].Mac, ip.Destination,
            IcmpType.TimeExceeded, IcmpType.CodeTtlExceeded, 0, frame.Reply);
        reason = FrameReason.IcmpTimeExceeded;
        return true;
    }

    /// <summary>
    /// A later fragment for a VIP: it carries no ports, so it follows the server its first fragment went to (IPVS
    /// reassembles first; udr remembers the first fragment's choice instead).
    /// </summary>
    private FrameReason ForwardLaterFragment(ref FrameContext frame, ref FrameBuffer packet)
    {
        Ipv4Header ip = frame.Ip;
        if (!_fragments.TryFind(ip.Source, ip.Destination, ip.Identification, ip.Protocol, frame.NowMs, out RealServer? dest, out uint destAddress,
            out ForwardingMethod method, out _))
        {
            return FrameReason.FragmentWithoutFirst;
        }
        ref TrafficCounters traffic = ref Counters.For(dest!);
        traffic.InPackets++;
        traffic.InBytes += ip.TotalLength;
        frame.Transport = default; // no transport header in a later fragment
        frame.Flags = FrameFlags.None;
        FrameReason result = Transmit(ref frame, ref packet, new ForwardingTarget(dest, destAddress, 0, method));
        return result == FrameReason.Forwarded ? FrameReason.ForwardedFragment : result;
    }

    /// <summary>
    /// A packet that does not fit the link it would leave by (a GSO super-frame is the kernel's to segment, so never
    /// this): with DF set the sender is told the MTU, from <paramref name="source"/> (the VIP it addressed, or the
    /// balancer's own address toward a real server), as IPVS and a forwarding kernel do; without DF it is dropped,
    /// since udr does not fragment plain packets.
    /// </summary>
    private FrameReason RefuseTooBig(ref FrameContext frame, ref FrameBuffer packet, int mtu, uint source)
    {
        Ipv4Header ip = frame.Ip;
        if (!ip.DontFragmentSet || ip.Protocol == IpProtocol.Icmp || source == 0)
        {
            return FrameReason.EgressMtuExceeded;
        }
        frame.ReplyLength = ReplyBuilder.WriteIcmpError(frame.Ethernet, ip, _links[packet.Link].Mac, source,
            IcmpType.DestinationUnreachable, IcmpType.CodeFragmentationNeeded, (uint)mtu, frame.Reply);
        return FrameReason.IcmpFragmentationNeeded;
    }

    /// <summary>
    /// Completes a transport checksum that nothing after udr will finish (ChecksumNotReady, or ChecksumUnknown with
    /// the field holding exactly the pseudo-header seed); it is then no longer partial.
    /// </summary>
    private static void FinishChecksumIfNeeded(ref FrameContext frame, ref FrameBuffer packet)
    {
        FrameFlags flags = frame.Flags;
        if (!frame.Transport.IsEmpty && ((flags & FrameFlags.ChecksumNotReady) != 0 ||
            ((flags & FrameFlags.ChecksumUnknown) != 0 && TransportChecksum.HoldsOnlyPseudoHeaderSeed(frame.Ip, frame.Transport))))
        {
            TransportChecksum.Finish(frame.Ip, frame.Transport);
            frame.Flags = flags & ~FrameFlags.ChecksumPartial;
        }
    }
}
