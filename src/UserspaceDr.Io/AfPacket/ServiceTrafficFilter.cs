namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// Builds the socket filter of a balancer's RX ring: accept ARP, and IPv4 whose destination is a VIP or one of
/// the extra destinations (the balancer's own addresses that NAT replies come back to); drop everything else in
/// the kernel, before it costs a ring slot.
/// </summary>
/// <remarks>
/// The kernel strips a received 802.1Q tag before packet sockets see the frame (it shows up in tp_vlan_tci, not in
/// the bytes the filter reads), so such frames match the untagged branch. The tagged branch covers frames whose
/// tag is still in-band (a driver without VLAN acceleration in the path, or a QinQ outer tag left in place).
/// </remarks>
public static class ServiceTrafficFilter
{
    /// <summary>A conditional jump reaches at most 255 instructions ahead; each address is one compare.</summary>
    public const int MaxDestinations = 255;

    private const ushort EtherTypeOffset = 12;
    private const ushort TaggedEtherTypeOffset = 16;
    private const ushort Ipv4DestinationOffset = 14 + 16;
    private const ushort TaggedIpv4DestinationOffset = 18 + 16;
    private const uint EtherTypeArp = 0x0806;
    private const uint EtherTypeIpv4 = 0x0800;
    private const uint EtherTypeVlan = 0x8100;

    /// <summary>Return value that keeps the whole frame (the ring's own slot size still applies).</summary>
    private const uint AcceptWholeFrame = uint.MaxValue;
    private const uint Drop = 0;

    /// <param name="vips">Virtual service addresses, host byte order (as <c>Ipv4Address.TryParse</c> gives them).</param>
    /// <param name="extraDestinations">Further destinations to accept, host byte order.</param>
    public static ClassicBpfProgram Build(IEnumerable<uint> vips, IEnumerable<uint> extraDestinations)
    {
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentNullException.ThrowIfNull(extraDestinations);
        uint[] destinations = [.. vips.Concat(extraDestinations).Distinct().Order()];
        if (destinations.Length > MaxDestinations)
        {
            throw new ArgumentException($"at most {MaxDestinations} destinations fit one filter, not {destinations.Length}", nameof(vips));
        }

        // Layout (all jumps forward, as classic BPF requires):
        //   0  ldh [12]
        //   1  jeq ARP        → acceptEarly
        //   2  jeq IPv4       → untagged
        //   3  jeq 802.1Q     → tagged, else dropEarly
        //   4  tagged:   ldh [16]
        //   5            jeq ARP  → acceptEarly
        //   6            jeq IPv4 → 7, else dropEarly
        //   7            ld [34]
        //   8            ja compare
        //   9  untagged: ld [30]
        //  10            ja compare
        //  11  dropEarly:   ret 0
        //  12  acceptEarly: ret whole frame
        //  13  compare: jeq d[0] → accept … jeq d[n-1] → accept
        //  13+n  ret 0
        //  14+n  accept: ret whole frame
        const byte dropEarly = 11, acceptEarly = 12, compare = 13;
        var program = new List<ClassicBpfInstruction>(compare + destinations.Length + 2)
        {
            new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, EtherTypeOffset),
            Jeq(1, EtherTypeArp, acceptEarly, 2),
            Jeq(2, EtherTypeIpv4, 9, 3),
            Jeq(3, EtherTypeVlan, 4, dropEarly),
            new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, TaggedEtherTypeOffset),
            Jeq(5, EtherTypeArp, acceptEarly, 6),
            Jeq(6, EtherTypeIpv4, 7, dropEarly),
            new(ClassicBpfInstruction.LoadWordAbsolute, 0, 0, TaggedIpv4DestinationOffset),
            new(ClassicBpfInstruction.JumpAlways, 0, 0, compare - 9),
            new(ClassicBpfInstruction.LoadWordAbsolute, 0, 0, Ipv4DestinationOffset),
            new(ClassicBpfInstruction.JumpAlways, 0, 0, compare - 11),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, Drop),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, AcceptWholeFrame),
        };
        int accept = compare + destinations.Length + 1;
        for (int i = 0; i < destinations.Length; i++)
        {
            int pc = compare + i;
            program.Add(Jeq(pc, destinations[i], accept, pc + 1));
        }
        program.Add(new(ClassicBpfInstruction.ReturnConstant, 0, 0, Drop));
        program.Add(new(ClassicBpfInstruction.ReturnConstant, 0, 0, AcceptWholeFrame));
        return new ClassicBpfProgram(program);
    }

    /// <summary>A "jeq #k" at <paramref name="pc"/> with absolute targets, turned into the relative offsets BPF wants.</summary>
    private static ClassicBpfInstruction Jeq(int pc, uint k, int whenTrue, int whenFalse) =>
        new(ClassicBpfInstruction.JumpIfEqual, checked((byte)(whenTrue - pc - 1)), checked((byte)(whenFalse - pc - 1)), k);
}
