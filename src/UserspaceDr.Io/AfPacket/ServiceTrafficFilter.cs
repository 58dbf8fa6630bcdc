using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// Builds the socket filter of a balancer's RX ring; the kernel drops everything else before it costs a ring slot.
/// It accepts:
/// <list type="bullet">
/// <item>ARP;</item>
/// <item>IPv4 whose destination is a VIP or an extra destination;</item>
/// <item>IPv4 TCP, UDP and ICMP whose source is a NAT real server (its replies, and the ICMP errors it sends about
/// them, which must reach the engine to be translated back);</item>
/// <item>ICMP addressed to one of the balancer's own link addresses (fragmentation-needed about the outer packets of
/// tunnelled traffic, which carry the balancer's address as their source);</item>
/// <item>IPv6 whose destination is an IPv6 VIP; IPv6 TCP, UDP, ICMPv6 and fragments from an IPv6 NAT real server (its
/// replies and errors); and, when there are IPv6 VIPs, ICMPv6 Neighbor Solicitations right after the fixed header (the
/// engine answers those for a VIP and leaves the rest to the kernel).</item>
/// </list>
/// </summary>
/// <remarks>
/// A socket filter sees the frame from its MAC header. The kernel strips a received 802.1Q tag before packet sockets
/// see the frame (it shows up in tp_vlan_tci, not in the bytes the filter reads), so such frames match the untagged
/// branch. The tagged branch covers frames whose tag is still in-band (a driver without VLAN acceleration in the
/// path, or a QinQ outer tag left in place): the IPv4 header is then 4 bytes later, held in X for indirect loads.
/// </remarks>
public static class ServiceTrafficFilter
{
    /// <summary>A conditional jump reaches at most 255 instructions ahead; each address of one list is one compare.</summary>
    public const int MaxDestinations = 255;

    private const uint EtherTypeOffset = 12;
    private const uint TaggedEtherTypeOffset = 16;
    private const uint Ipv4Offset = 14;
    private const uint EtherTypeArp = 0x0806;
    private const uint EtherTypeIpv4 = 0x0800;
    private const uint EtherTypeVlan = 0x8100;
    private const uint EtherTypeIpv6 = 0x86DD;
    private const uint Ipv6NextHeaderOffset = 14 + 6;
    private const uint Ipv6SourceOffset = 14 + 8;
    private const uint Ipv6DestinationOffset = 14 + 24;
    private const uint NextHeaderFragment = 44;
    private const uint Icmpv6TypeOffset = 14 + 40;
    private const uint NextHeaderIcmpv6 = 58;
    private const uint NeighborSolicitation = 135;
    private const uint ProtocolIcmp = 1;
    private const uint ProtocolTcp = 6;
    private const uint ProtocolUdp = 17;

    /// <summary>From an ICMP header to the destination address of the IPv4 header it quotes.</summary>
    private const uint QuotedDestinationOffset = 8 + 16;

    /// <summary>Return value that keeps the whole frame (the ring's own slot size still applies).</summary>
    private const uint AcceptWholeFrame = uint.MaxValue;
    private const uint Drop = 0;

    /// <param name="vips">Virtual service addresses, host byte order (as <c>Ipv4Address.TryParse</c> gives them).</param>
    /// <param name="extraDestinations">Further destinations to accept, host byte order.</param>
    public static ClassicBpfProgram Build(IEnumerable<uint> vips, IEnumerable<uint> extraDestinations) =>
        Build(vips, extraDestinations, [], []);

    /// <param name="vips">Virtual service addresses, host byte order.</param>
    /// <param name="extraDestinations">Further destinations to accept (any protocol), host byte order.</param>
    /// <param name="natServers">Real servers of NAT (-m) destinations: their TCP, UDP and ICMP frames are accepted.</param>
    /// <param name="ownAddresses">The balancer's own addresses on its links: ICMP addressed to them is accepted.</param>
    /// <param name="ipv6Vips">IPv6 virtual service addresses (their 128 bits as a number, first byte most significant).</param>
    /// <param name="ipv6NatServers">IPv6 real servers of NAT destinations: their TCP, UDP, ICMPv6 and fragments are accepted.</param>
    public static ClassicBpfProgram Build(IEnumerable<uint> vips, IEnumerable<uint> extraDestinations,
        IEnumerable<uint> natServers, IEnumerable<uint> ownAddresses, IEnumerable<UInt128>? ipv6Vips = null, IEnumerable<UInt128>? ipv6NatServers = null)
    {
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentNullException.ThrowIfNull(extraDestinations);
        ArgumentNullException.ThrowIfNull(natServers);
        ArgumentNullException.ThrowIfNull(ownAddresses);
        uint[] destinations = Sorted(vips.Concat(extraDestinations), nameof(vips));
        uint[] sources = Sorted(natServers, nameof(natServers));
        uint[] own = Sorted(ownAddresses.Except(destinations), nameof(ownAddresses));
        UInt128[] ipv6Destinations = Sorted(ipv6Vips ?? [], nameof(ipv6Vips));
        UInt128[] ipv6Sources = Sorted(ipv6NatServers ?? [], nameof(ipv6NatServers));

        // All jumps go forward. Each address list is followed directly by its "hit" block, so a compare never jumps
        // further than its list is long (≤ 255), however many lists there are.
        var asm = new ClassicBpfAssembler();
        asm.Emit(ClassicBpfInstruction.LoadHalfAbsolute, EtherTypeOffset)
            .JumpIfEqual(EtherTypeArp, "accept")
            .JumpIfEqual(EtherTypeIpv4, "untagged")
            .JumpIfEqual(EtherTypeIpv6, "untagged6")
            .JumpIfEqual(EtherTypeVlan, "tagged", "drop")
            .Label("tagged")
            .Emit(ClassicBpfInstruction.LoadHalfAbsolute, TaggedEtherTypeOffset)
            .JumpIfEqual(EtherTypeArp, "accept")
            .Emit(ClassicBpfInstruction.LoadIndexImmediate, 4) // X = the tag's 4 bytes before the IP header
            .JumpIfEqual(EtherTypeIpv6, "ip6")
            .JumpIfEqual(EtherTypeIpv4, null, "drop")
            .Jump("ip") // beyond the IPv6 compares: an unconditional jump has no 255 limit
            .Label("untagged6")
            .Emit(ClassicBpfInstruction.LoadIndexImmediate, 0)
            .Jump("ip6")
            .Label("untagged")
            .Emit(ClassicBpfInstruction.LoadIndexImmediate, 0)
            .Jump("ip")
            .Label("drop")
            .Return(Drop)
            .Label("accept")
            .Return(AcceptWholeFrame)

            // IPv6: the destination's four words against each VIP's (a miss on any word moves to the next VIP).
            .Label("ip6");
        CompareIpv6List(asm, ipv6Destinations, Ipv6DestinationOffset, "ip6-destination-hit");
        asm.Jump("ip6-destination-miss")
            .Label("ip6-destination-hit")
            .Return(AcceptWholeFrame)

            // Source: an IPv6 NAT server; what can be a reply or an error (the upper layer right after the fixed header,
            // or a fragment of one).
            .Label("ip6-destination-miss");
        CompareIpv6List(asm, ipv6Sources, Ipv6SourceOffset, "ip6-source-hit");
        asm.Jump("ip6-source-miss")
            .Label("ip6-source-hit")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv6NextHeaderOffset)
            .JumpIfEqual(ProtocolTcp, "accept6")
            .JumpIfEqual(ProtocolUdp, "accept6")
            .JumpIfEqual(NextHeaderIcmpv6, "accept6")
            .JumpIfEqual(NextHeaderFragment, "accept6")
            .Return(Drop)
            .Label("accept6")
            .Return(AcceptWholeFrame)
            .Label("ip6-source-miss");
        if (ipv6Destinations.Length == 0)
        {
            asm.Return(Drop);
        }
        else
        {
            asm.Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv6NextHeaderOffset)
                .JumpIfEqual(NextHeaderIcmpv6, null, "drop6")
                .Emit(ClassicBpfInstruction.LoadByteIndirect, Icmpv6TypeOffset)
                .JumpIfEqual(NeighborSolicitation, null, "drop6")
                .Return(AcceptWholeFrame)
                .Label("drop6")
                .Return(Drop);
        }
        asm

            // Destination: a VIP or an extra destination, whatever the protocol.
            .Label("ip")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Ipv4Offset + 16);
        CompareList(asm, destinations, "destination-hit");
        asm.Jump("destination-miss")
            .Label("destination-hit")
            .Return(AcceptWholeFrame)

            // Destination: one of the balancer's own addresses, ICMP only (A still holds the destination).
            .Label("destination-miss");
        CompareList(asm, own, "own-hit");
        asm.Jump("own-miss")
            .Label("own-hit")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv4Offset + 9)
            .JumpIfEqual(ProtocolIcmp, "own-accept")
            .Return(Drop)
            .Label("own-accept")
            .Return(AcceptWholeFrame)

            // Source: a NAT real server, TCP/UDP/ICMP.
            .Label("own-miss")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Ipv4Offset + 12);
        CompareList(asm, sources, "source-hit");
        asm.Jump("source-miss")
            .Label("source-hit")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv4Offset + 9)
            .JumpIfEqual(ProtocolTcp, "source-accept")
            .JumpIfEqual(ProtocolUdp, "source-accept")
            .JumpIfEqual(ProtocolIcmp, "source-accept")
            .Return(Drop)
            .Label("source-accept")
            .Return(AcceptWholeFrame)

            // ICMP from anyone else (a router between the balancer and a NAT server) quoting a packet to a NAT
            // server: an error about a client's packet, which the client must get translated. X becomes the offset
            // of the ICMP header (tag + IPv4 header length); the quoted destination is 8 + 16 bytes into it.
            .Label("source-miss")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv4Offset + 9)
            .JumpIfEqual(ProtocolIcmp, "quoted")
            .Return(Drop)
            .Label("quoted")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Ipv4Offset)
            .Emit(ClassicBpfInstruction.AndConstant, 0x0F)
            .Emit(ClassicBpfInstruction.LeftShiftConstant, 2)
            .Emit(ClassicBpfInstruction.AddIndex)
            .Emit(ClassicBpfInstruction.AccumulatorToIndex)
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Ipv4Offset + QuotedDestinationOffset);
        CompareList(asm, sources, "quoted-hit");
        asm.Return(Drop)
            .Label("quoted-hit")
            .Return(AcceptWholeFrame);
        return asm.Build();
    }

    private static T[] Sorted<T>(IEnumerable<T> addresses, string parameter)
    {
        T[] sorted = [.. addresses.Distinct().Order()];
        if (sorted.Length > MaxDestinations)
        {
            throw new ArgumentException($"at most {MaxDestinations} addresses of one kind fit one filter, not {sorted.Length}", parameter);
        }
        return sorted;
    }

    /// <summary>
    /// Compares the IPv6 address at <paramref name="offset"/> (from X) with each of <paramref name="addresses"/>, four
    /// words each, jumping to <paramref name="hit"/> on a whole match (unconditional: no 255 limit) and falling through.
    /// </summary>
    private static void CompareIpv6List(ClassicBpfAssembler asm, UInt128[] addresses, uint offset, string hit)
    {
        for (int i = 0; i < addresses.Length; i++)
        {
            string next = $"{hit}-next-{i}";
            for (int word = 0; word < 4; word++)
            {
                asm.Emit(ClassicBpfInstruction.LoadWordIndirect, offset + (uint)(4 * word))
                    .JumpIfEqual((uint)(addresses[i] >> (96 - (32 * word))), null, next);
            }
            asm.Jump(hit)
                .Label(next);
        }
    }

    private static void CompareList(ClassicBpfAssembler asm, uint[] addresses, string hit)
    {
        foreach (uint address in addresses)
        {
            asm.JumpIfEqual(address, hit);
        }
    }
}
