namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// What became of one received IP-in-IP packet: <see cref="Delivered"/>, or the named reason it was dropped. The
/// reasons are counted and logged by name (<see cref="DecapsulationOutcomes.Name"/>), so an operator can tell a
/// balancer that encapsulates wrongly from a stranger's packets.
/// </summary>
public enum DecapsulationOutcome
{
    /// <summary>Sane outer and inner headers, inner destination a VIP: the inner packet goes to the local stack.</summary>
    Delivered,

    /// <summary>Fewer than 20 bytes: no room for an outer IPv4 header.</summary>
    OuterTruncated,

    /// <summary>The outer header's version nibble is not 4.</summary>
    OuterBadVersion,

    /// <summary>The outer IHL is below 5 or runs past the packet.</summary>
    OuterBadHeaderLength,

    /// <summary>The outer total length is shorter than its header or longer than what arrived.</summary>
    OuterBadTotalLength,

    /// <summary>The outer header checksum does not verify.</summary>
    OuterBadChecksum,

    /// <summary>An outer fragment (the kernel reassembles before a raw socket sees it, so this is never expected).</summary>
    OuterFragment,

    /// <summary>The outer protocol (next header) is not the one this endpoint decapsulates: 4 or 41 (IP-in-IP), 47 (GRE).</summary>
    OuterNotIpip,

    /// <summary>The outer destination is not one of this node's own addresses (a VIP, a broadcast, a stranger's).</summary>
    OuterNotLocal,

    /// <summary>The outer payload has no room for an inner IPv4 (20 bytes) or IPv6 (40) header, or the inner extension headers run past it.</summary>
    InnerTruncated,

    /// <summary>The inner version nibble is not 4.</summary>
    InnerBadVersion,

    /// <summary>The inner IHL is below 5 or runs past the outer payload.</summary>
    InnerBadHeaderLength,

    /// <summary>The inner total (IPv6: payload) length is shorter than its header or longer than the outer payload.</summary>
    InnerBadTotalLength,

    /// <summary>The inner header checksum does not verify.</summary>
    InnerBadChecksum,

    /// <summary>The inner destination is not one of the VIPs this endpoint serves.</summary>
    InnerNotVip,

    /// <summary>The inner source cannot be a client: 0.0.0.0/8, loopback, multicast/reserved/broadcast, or a VIP.</summary>
    InnerBadSource,

    /// <summary>The outer header says congestion was experienced but the inner packet is not ECN-capable (RFC 6040: drop).</summary>
    InnerEcnNotCapable,

    /// <summary>
    /// An unfragmented inner TCP/UDP packet whose transport checksum does not verify: the local stack would drop it
    /// silently. Typical cause: the balancer encapsulated a packet whose checksum the client's offload left unfinished.
    /// </summary>
    InnerBadTransportChecksum,

    /// <summary>
    /// A GUE or GRE header this endpoint does not take: too short, another version, a GUE control message or inner
    /// protocol other than 4 and 41, GRE routing, key or sequence fields (IPVS sets none), or an inner protocol type
    /// other than IPv4 and IPv6.
    /// </summary>
    EncapsulationBadHeader,

    /// <summary>A GRE packet whose checksum (C bit) does not verify over the GRE header and what it carries.</summary>
    EncapsulationBadChecksum,
}

public static class DecapsulationOutcomes
{
    /// <summary>Every outcome, in declaration order (index = (int)outcome).</summary>
    public static IReadOnlyList<DecapsulationOutcome> All { get; } = Enum.GetValues<DecapsulationOutcome>();

    public static int Count => All.Count;

    /// <summary>The counter name: "delivered", "outer-not-local", "inner-not-vip", …</summary>
    public static string Name(DecapsulationOutcome outcome) => outcome switch
    {
        DecapsulationOutcome.Delivered => "delivered",
        DecapsulationOutcome.OuterTruncated => "outer-truncated",
        DecapsulationOutcome.OuterBadVersion => "outer-bad-version",
        DecapsulationOutcome.OuterBadHeaderLength => "outer-bad-header-length",
        DecapsulationOutcome.OuterBadTotalLength => "outer-bad-total-length",
        DecapsulationOutcome.OuterBadChecksum => "outer-bad-checksum",
        DecapsulationOutcome.OuterFragment => "outer-fragment",
        DecapsulationOutcome.OuterNotIpip => "outer-not-ipip",
        DecapsulationOutcome.OuterNotLocal => "outer-not-local",
        DecapsulationOutcome.InnerTruncated => "inner-truncated",
        DecapsulationOutcome.InnerBadVersion => "inner-bad-version",
        DecapsulationOutcome.InnerBadHeaderLength => "inner-bad-header-length",
        DecapsulationOutcome.InnerBadTotalLength => "inner-bad-total-length",
        DecapsulationOutcome.InnerBadChecksum => "inner-bad-checksum",
        DecapsulationOutcome.InnerNotVip => "inner-not-vip",
        DecapsulationOutcome.InnerBadSource => "inner-bad-source",
        DecapsulationOutcome.InnerEcnNotCapable => "inner-ecn-not-capable",
        DecapsulationOutcome.InnerBadTransportChecksum => "inner-bad-transport-checksum",
        DecapsulationOutcome.EncapsulationBadHeader => "encapsulation-bad-header",
        DecapsulationOutcome.EncapsulationBadChecksum => "encapsulation-bad-checksum",
        _ => throw new ArgumentOutOfRangeException(nameof(outcome), outcome, null),
    };
}
