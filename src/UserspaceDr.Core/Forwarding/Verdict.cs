namespace UserspaceDr.Core.Forwarding;

/// <summary>What becomes of a frame. Every frame ends in exactly one.</summary>
public enum Verdict : byte
{
    /// <summary>The frame was rewritten in place and is to be sent.</summary>
    Transmit,
    /// <summary>A reply (ARP, ICMP) was written to the reply buffer and is to be sent; the frame itself is consumed.</summary>
    Reply,
    /// <summary>Not udr's business (the kernel keeps its own copy and handles it).</summary>
    Pass,
    /// <summary>Discarded, under a named reason.</summary>
    Drop,
}

/// <summary>Why a frame got its verdict. Each reason belongs to exactly one verdict (see <see cref="FrameReasons.VerdictOf"/>).</summary>
public enum FrameReason : byte
{
    // Transmit
    Forwarded,
    ForwardedFragment,
    ForwardedIcmpError,
    /// <summary>A NAT reply from a real server, source rewritten to VIP:vport, sent to the client.</summary>
    ForwardedReply,
    /// <summary>
    /// An ICMP error from a NAT real server (or a router beside it) about a client's packet: outer source, quoted
    /// destination address and port translated back to VIP:vport, sent to the client.
    /// </summary>
    ForwardedReplyIcmpError,
    /// <summary>An IP-in-IP packet larger than the path MTU, without DF: sent as two outer fragments.</summary>
    ForwardedAsFragments,
    /// <summary>
    /// For a real server on the balancer itself (an address of its own, 127.0.0.0/8 or ::1): handed unchanged to the
    /// balancer's own stack, as IPVS does when the route to the server is local (<see cref="EngineOptions.LocalLink"/>).
    /// </summary>
    DeliveredLocally,

    // Reply
    ArpReply,
    IcmpTimeExceeded,
    IcmpPortUnreachable,
    /// <summary>A packet with DF for a tunnel server did not fit the path MTU with the outer header: the client is told the MTU.</summary>
    IcmpFragmentationNeeded,
    /// <summary>An IPv6 packet larger than the MTU of its server's link: the sender is told the MTU (IPv6 is never fragmented on the way).</summary>
    Icmpv6PacketTooBig,
    /// <summary>A Neighbor Solicitation for a VIP, answered (the IPv6 form of --answer-arp).</summary>
    NeighborAdvertisement,
    /// <summary>
    /// A router reported a tunnelled packet too big (frag-needed to the balancer about an IP-in-IP packet): the
    /// client is told the MTU less the outer header, from the VIP.
    /// </summary>
    IcmpFragmentationNeededFromTunnel,

    // Pass
    NotIp,
    NotForThisHost,
    NotForVirtualAddress,
    NoVirtualService,
    ArpNotForVirtualAddress,
    IcmpForVirtualAddress,
    IcmpErrorNotTracked,
    /// <summary>A Neighbor Solicitation for an address that is not a VIP (or udr does not answer for VIPs): the kernel's.</summary>
    NeighborSolicitationNotForVirtualAddress,
    OtherProtocol,

    // Drop
    EthernetTruncated,
    ArpMalformed,
    IpTruncated,
    IpVersionInvalid,
    IpHeaderLengthInvalid,
    IpTotalLengthInvalid,
    IpChecksumInvalid,
    TransportTruncated,
    TcpNotSyn,
    ConnectionTableFull,
    NeighborUnresolved,
    FragmentWithoutFirst,
    DestinationRemoved,
    ForwardingMethodUnavailable,
    SourceIsVirtualAddress,
    /// <summary>
    /// A NAT reply whose TTL would expire on the balancer, when no time-exceeded can be sent for it (a later fragment,
    /// or no address of the balancer's on the server's link to send it from).
    /// </summary>
    ReplyTtlExpired,
    /// <summary>The receive ring cut the frame short (it did not fit a ring slot): never forwarded, never parsed.</summary>
    TruncatedInRing,
    /// <summary>The receive path gave a link index the engine was not configured with.</summary>
    LinkUnknown,
    /// <summary>A frame for a tunnel server has less than 20 bytes of headroom for the outer IPv4 header.</summary>
    TunnelHeadroomMissing,
    /// <summary>A GSO super-frame for a tunnel server: the receive path must segment it before the engine sees it.</summary>
    TunnelGsoFrame,
    /// <summary>No outer source address for a tunnel server: neither the route (NextHop) nor the egress link has one.</summary>
    TunnelSourceAddressMissing,
    /// <summary>The path MTU to a tunnel server leaves under 68 bytes for the inner packet (as ip_vs_xmit.c drops).</summary>
    TunnelPathMtuTooSmall,
    /// <summary>An oversize IP-in-IP packet without DF, but the receive path gave no (or too small an) overflow frame for the second fragment.</summary>
    TunnelOverflowMissing,
    /// <summary>An oversize IP-in-IP packet without DF that would need more than two outer fragments.</summary>
    TunnelTooManyFragments,
    /// <summary>
    /// A frag-needed about a tunnelled packet whose client did not set DF: nothing to tell the client (the kernel
    /// consumes it the same way); later oversize packets are fragmented.
    /// </summary>
    TunnelIcmpWithoutDf,
    /// <summary>An ICMP error udr would translate or act on fails its ICMP checksum.</summary>
    IcmpChecksumInvalid,
    /// <summary>An ICMP error udr relays whose TTL would expire on the balancer (no ICMP is ever sent about an ICMP error).</summary>
    IcmpErrorTtlExpired,
    /// <summary>
    /// A packet without DF (or an ICMP error) larger than the MTU of the link it would leave by: udr does not fragment
    /// plain packets (with DF set the sender gets fragmentation-needed instead).
    /// </summary>
    EgressMtuExceeded,
    /// <summary>An IPv6 payload length longer than the frame holds.</summary>
    Ipv6PayloadLengthInvalid,
    /// <summary>An IPv6 extension header (or the chain of them) runs past the end of the packet (ipv6_find_hdr fails).</summary>
    Ipv6ExtensionHeadersTruncated,
    /// <summary>A Neighbor Solicitation with a hop limit below 255: it crossed a router, so RFC 4861 §7.1.1 discards it.</summary>
    NdpHopLimitInvalid,
    /// <summary>A Neighbor Solicitation that fails RFC 4861's checks (code, length, options, checksum, multicast target).</summary>
    NdpMalformed,
    /// <summary>An ICMPv6 error for a VIP behind a Fragment header: IPVS drops it (ip_vs_in_icmp_v6) rather than reassemble it.</summary>
    Icmpv6ErrorFragmented,
    /// <summary>
    /// A NAT (-m) connection from outside to a real server on 127.0.0.0/8 or ::1 on the balancer itself: dropped, as
    /// IPVS drops it (ip_vs_nat_xmit: "stopping DNAT to loopback address").
    /// </summary>
    LocalServerMasquerade,
}

public static class FrameReasons
{
    public const int Count = (int)FrameReason.LocalServerMasquerade + 1;

    private static readonly string[] Names = BuildNames();

    public static Verdict VerdictOf(FrameReason reason) => reason switch
    {
        <= FrameReason.DeliveredLocally => Verdict.Transmit,
        <= FrameReason.IcmpFragmentationNeededFromTunnel => Verdict.Reply,
        <= FrameReason.OtherProtocol => Verdict.Pass,
        _ => Verdict.Drop,
    };

    /// <summary>kebab-case name used in counters and logs, e.g. "ip-checksum-invalid".</summary>
    public static string Name(FrameReason reason) => Names[(int)reason];

    private static string[] BuildNames()
    {
        var names = new string[Count];
        for (int i = 0; i < Count; i++)
        {
            names[i] = KebabCase.Of((FrameReason)i);
        }
        return names;
    }
}

/// <summary>Facts about a frame that the receive path knows and the bytes do not show.</summary>
[Flags]
public enum FrameFlags : byte
{
    None = 0,
    /// <summary>
    /// The L4 checksum is partial (TP_STATUS_CSUMNOTREADY / VIRTIO_NET_HDR_F_NEEDS_CSUM) and nothing after udr will
    /// finish it: the engine computes it in software before transmitting.
    /// </summary>
    ChecksumNotReady = 1,

    /// <summary>
    /// The receive path cannot tell (libpcap): the engine finishes the L4 checksum only when the field holds exactly
    /// the pseudo-header seed that checksum offload leaves behind. Recomputing a checksum that happens to be valid
    /// with that value rewrites the same value, so a correct frame is never changed.
    /// </summary>
    ChecksumUnknown = 2,

    /// <summary>
    /// The L4 checksum is partial and the kernel will finish it on transmit (the frame goes out with its
    /// virtio_net_hdr). Nothing to finish here, but a NAT rewrite must keep the pseudo-header seed in step.
    /// </summary>
    ChecksumPartial = 4,

    /// <summary>
    /// A GSO super-frame (several wire segments in one frame; the kernel segments it on transmit). Direct routing and
    /// NAT forward it as one; IP-in-IP cannot (the kernel cannot segment an encapsulated frame handed to it this way),
    /// so a receive path serving tunnelled servers segments such frames before the engine sees them.
    /// </summary>
    Gso = 8,
}
