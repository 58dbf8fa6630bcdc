using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// The PACKET_FANOUT_CBPF program that picks a worker for each frame by its client, so that both directions of a
/// NAT connection (and every connection of one persistence group) meet in the same worker's engine and table.
/// </summary>
/// <remarks>
/// <para>The client of a frame:</para>
/// <list type="bullet">
/// <item>to a VIP: its IPv4 source; but for ICMP to a VIP (an error about a reply the real server sent, VIP → client)
/// the quoted packet's destination;</item>
/// <item>anything else (a NAT reply RIP → client, an ICMP error a real server sends to the client): its destination;
/// but for ICMP that quotes an IP-in-IP, GRE, or (addressed to the balancer itself) GUE packet (fragmentation needed on
/// the way to a tunnelled server, quoting balancer → RIP) the inner packet's source, after the GRE or UDP and GUE
/// headers.</item>
/// </list>
/// <para>The client address, masked by the widest persistence netmask in force, is hashed (Fibonacci: × 0x9E3779B1,
/// the high half) and taken modulo the worker count; the kernel takes the result modulo the group size again. A
/// fanout program runs with skb->data at the network header (the MAC header is already pulled), so every load is
/// relative to SKF_NET_OFF, which means the network header wherever data points; an 802.1Q tag is never in the way
/// there (the receive path strips it into the skb before the taps run). An IPv6 frame's client is chosen the same way:
/// to an IPv6 VIP, its source, but for an ICMPv6 error right after the fixed header the quoted packet's destination;
/// anything else (a NAT reply, a NAT server's ICMPv6 error to the client) its destination. Neighbor Solicitations go
/// wherever their source puts them: any worker answers. The four words of the client, each masked by the widest IPv6
/// persistence prefix in force, are folded by XOR and hashed the same way. Frames of other EtherTypes go to worker 0;
/// a load past the end of a short frame ends the program with 0 too.</para>
/// <para>Spreading: by client address only, a single client's connections all land on one worker. That is the price
/// of steering both directions of NAT without shared state; with DR/TUN only, a 5-tuple hash would spread a few
/// clients better but could not keep persistence templates and ICMP errors with their connections.</para>
/// </remarks>
public static class FanoutSteering
{
    /// <summary>The Fibonacci hashing multiplier (2^32 / golden ratio), as the neighbour table uses.</summary>
    public const uint HashMultiplier = 0x9E3779B1;

    private const uint Net = ClassicBpfInstruction.NetworkOffset;
    private const uint EtherTypeIpv4 = 0x0800;
    private const uint EtherTypeIpv6 = 0x86DD;
    private const uint Ipv6SourceOffset = 8;
    private const uint Ipv6DestinationOffset = 24;
    private const uint Ipv6NextHeaderOffset = 6;
    private const uint Ipv6HeaderLength = 40;
    private const uint NextHeaderIcmpv6 = 58;
    private const uint ProtocolIcmp = 1;
    private const uint ProtocolIpip = 4;
    private const uint IcmpHeaderLength = 8;
    private const uint QuotedOuterHeaderLength = 20;
    private const uint ProtocolUdp = 17;
    private const uint ProtocolGre = 47;

    /// <summary>The UDP and GUE headers udr puts before a GUE server's inner packet (no GUE options).</summary>
    private const uint GueHeadersLength = 8 + 4;

    /// <param name="vips">Virtual service addresses, host byte order.</param>
    /// <param name="workers">Sockets in the group (1 to 256); the program returns 0 to workers − 1.</param>
    /// <param name="clientMask">Bits of the client address that count (the widest persistence netmask; all ones without persistence).</param>
    /// <param name="ipv6ClientPrefix">The IPv6 client bits that count (the widest IPv6 persistence prefix; 128 without).</param>
    /// <param name="ipv6Vips">IPv6 virtual service addresses.</param>
    /// <param name="ownAddresses">
    /// The balancer's own addresses: an ICMP error to one of them quoting UDP is about a GUE packet udr tunnelled (its
    /// inner source is the client), where one to anyone else quoting UDP is a NAT server's to the client.
    /// </param>
    public static ClassicBpfProgram Build(IEnumerable<uint> vips, int workers, uint clientMask = uint.MaxValue, int ipv6ClientPrefix = 128,
        IEnumerable<UInt128>? ipv6Vips = null, IEnumerable<uint>? ownAddresses = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ipv6ClientPrefix);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(ipv6ClientPrefix, 128);
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(workers, 256);
        uint[] addresses = [.. vips.Distinct().Order()];
        if (addresses.Length > ServiceTrafficFilter.MaxDestinations)
        {
            throw new ArgumentException($"at most {ServiceTrafficFilter.MaxDestinations} VIPs fit one steering program, not {addresses.Length}", nameof(vips));
        }
        UInt128[] ipv6Addresses = [.. (ipv6Vips ?? []).Distinct().Order()];
        uint[] own = [.. (ownAddresses ?? []).Distinct().Order()];
        if (own.Length > ServiceTrafficFilter.MaxDestinations)
        {
            throw new ArgumentException($"at most {ServiceTrafficFilter.MaxDestinations} own addresses fit one steering program, not {own.Length}", nameof(ownAddresses));
        }

        var asm = new ClassicBpfAssembler();
        asm.Emit(ClassicBpfInstruction.LoadWordAbsolute, ClassicBpfInstruction.AncillaryProtocol)
            .JumpIfEqual(EtherTypeIpv4, "ip")
            .JumpIfEqual(EtherTypeIpv6, "ip6")
            .Return(0)

            // IPv6: which address is the client's (as for IPv4), then X = its masked words folded by XOR, then the hash.
            .Label("ip6");
        for (int i = 0; i < ipv6Addresses.Length; i++)
        {
            string next = $"ip6-next-{i}";
            for (int word = 0; word < 4; word++)
            {
                asm.Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + Ipv6DestinationOffset + (uint)(4 * word))
                    .JumpIfEqual((uint)(ipv6Addresses[i] >> (96 - (32 * word))), null, next);
            }
            asm.Jump("to-vip6")
                .Label(next);
        }
        EmitIpv6Fold(asm, Ipv6DestinationOffset, ipv6ClientPrefix); // not to a VIP: a NAT reply or a server's error to the client
        asm.Label("to-vip6")
            .Emit(ClassicBpfInstruction.LoadByteAbsolute, Net + Ipv6NextHeaderOffset)
            .JumpIfEqual(NextHeaderIcmpv6, null, "to-vip6-source")
            .Emit(ClassicBpfInstruction.LoadByteAbsolute, Net + Ipv6HeaderLength)
            .Emit(ClassicBpfInstruction.AndConstant, 0x80)
            .JumpIfEqual(0, null, "to-vip6-source"); // informational (echo, NDP): the source
        EmitIpv6Fold(asm, Ipv6HeaderLength + IcmpHeaderLength + Ipv6DestinationOffset, ipv6ClientPrefix); // quoted VIP → client
        asm.Label("to-vip6-source");
        EmitIpv6Fold(asm, Ipv6SourceOffset, ipv6ClientPrefix);
        asm
            .Label("ip")
            // X = IPv4 header length (ihl × 4), for the loads from the transport header on.
            .Emit(ClassicBpfInstruction.LoadByteAbsolute, Net)
            .Emit(ClassicBpfInstruction.AndConstant, 0x0F)
            .Emit(ClassicBpfInstruction.LeftShiftConstant, 2)
            .Emit(ClassicBpfInstruction.AccumulatorToIndex)
            .Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + 16);
        foreach (uint vip in addresses)
        {
            asm.JumpIfEqual(vip, "to-vip");
        }
        asm.Jump("not-vip")

            .Label("to-vip")
            .Emit(ClassicBpfInstruction.LoadByteAbsolute, Net + 9)
            .JumpIfEqual(ProtocolIcmp, "to-vip-icmp")
            .Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + 12) // a request: the client is the source
            .Jump("hash")
            .Label("to-vip-icmp")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Net + IcmpHeaderLength + 16) // quoted VIP → client
            .Jump("hash")

            .Label("not-vip")
            .Emit(ClassicBpfInstruction.LoadByteAbsolute, Net + 9)
            .JumpIfEqual(ProtocolIcmp, "not-vip-icmp")
            .Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + 16) // a NAT reply: the client is the destination
            .Jump("hash")
            .Label("not-vip-icmp")
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Net + IcmpHeaderLength + 9)
            .JumpIfEqual(ProtocolIpip, "quoted-tunnel")
            .JumpIfEqual(ProtocolGre, "quoted-gre")
            .JumpIfEqual(ProtocolUdp, "quoted-udp")
            .Jump("to-client")
            .Label("quoted-udp")
            // To the balancer's own address: about a GUE packet (UDP and GUE headers, then the inner one); else a NAT
            // server's error to the client. (Classic BPF jumps only forward: every branch below ends in "hash".)
            .Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + 16);
        foreach (uint address in own)
        {
            asm.JumpIfEqual(address, "quoted-gue");
        }
        asm.Jump("to-client")
            .Label("quoted-gue")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Net + IcmpHeaderLength + QuotedOuterHeaderLength + GueHeadersLength + 12)
            .Jump("hash")
            .Label("quoted-gre")
            // The GRE header: 4 bytes, 8 with the checksum (C bit); then the inner header, whose source is the client.
            .Emit(ClassicBpfInstruction.LoadByteIndirect, Net + IcmpHeaderLength + QuotedOuterHeaderLength)
            .Emit(ClassicBpfInstruction.AndConstant, 0x80)
            .JumpIfEqual(0, null, "quoted-gre-checksum")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Net + IcmpHeaderLength + QuotedOuterHeaderLength + 4 + 12)
            .Jump("hash")
            .Label("quoted-gre-checksum")
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Net + IcmpHeaderLength + QuotedOuterHeaderLength + 8 + 12)
            .Jump("hash")
            .Label("quoted-tunnel")
            // Quoted outer IPIP header (20 bytes, as udr builds it), then the inner header: its source is the client.
            .Emit(ClassicBpfInstruction.LoadWordIndirect, Net + IcmpHeaderLength + QuotedOuterHeaderLength + 12)
            .Jump("hash")
            .Label("to-client")
            .Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + 16) // an error a real server sends to the client

            .Label("hash");
        if (clientMask != uint.MaxValue)
        {
            asm.Emit(ClassicBpfInstruction.AndConstant, clientMask);
        }
        asm.Label("mix")
            .Emit(ClassicBpfInstruction.MultiplyConstant, HashMultiplier)
            .Emit(ClassicBpfInstruction.RightShiftConstant, 16)
            .Emit(ClassicBpfInstruction.ModuloConstant, (uint)workers)
            .Emit(ClassicBpfInstruction.ReturnAccumulator);
        return asm.Build();
    }

    /// <summary>A = the IPv6 address at <paramref name="offset"/> (from the network header), its masked words folded by XOR; then to the hash.</summary>
    private static void EmitIpv6Fold(ClassicBpfAssembler asm, uint offset, int prefix)
    {
        asm.Emit(ClassicBpfInstruction.LoadIndexImmediate, 0);
        for (int word = 0; word < 4; word++)
        {
            uint mask = PrefixWordMask(prefix, word);
            if (mask == 0)
            {
                break;
            }
            asm.Emit(ClassicBpfInstruction.LoadWordAbsolute, Net + offset + (uint)(4 * word));
            if (mask != uint.MaxValue)
            {
                asm.Emit(ClassicBpfInstruction.AndConstant, mask);
            }
            asm.Emit(ClassicBpfInstruction.XorIndex)
                .Emit(ClassicBpfInstruction.AccumulatorToIndex);
        }
        asm.Emit(ClassicBpfInstruction.IndexToAccumulator)
            .Jump("mix");
    }

    /// <summary>The worker the program picks for <paramref name="client"/> (what tests and diagnostics compare against).</summary>
    public static int WorkerOf(uint client, int workers, uint clientMask = uint.MaxValue) =>
        (int)((((client & clientMask) * HashMultiplier) >> 16) % (uint)workers);

    /// <summary>The worker the program picks for an IPv6 <paramref name="client"/>.</summary>
    public static int WorkerOf(UInt128 client, int workers, int ipv6ClientPrefix = 128)
    {
        uint fold = 0;
        for (int word = 0; word < 4; word++)
        {
            fold ^= (uint)(client >> (96 - (32 * word))) & PrefixWordMask(ipv6ClientPrefix, word);
        }
        return (int)(((fold * HashMultiplier) >> 16) % (uint)workers);
    }

    /// <summary>The bits of address word <paramref name="word"/> (0 = most significant) that a /<paramref name="prefix"/> keeps.</summary>
    private static uint PrefixWordMask(int prefix, int word)
    {
        int bits = Math.Clamp(prefix - (32 * word), 0, 32);
        return bits == 0 ? 0 : uint.MaxValue << (32 - bits);
    }
}
