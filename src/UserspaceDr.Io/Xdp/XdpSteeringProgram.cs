using static UserspaceDr.Io.Xdp.EbpfRegister;

namespace UserspaceDr.Io.Xdp;

/// <summary>The maps the steering program looks addresses up in; each a BPF hash of network-order addresses.</summary>
/// <param name="Destinations">IPv4 destinations taken in (key 4 bytes, value 1 byte: <see cref="XdpSteeringProgram.ArpTarget"/> for a VIP).</param>
/// <param name="NatServers">IPv4 NAT real servers: their TCP, UDP and ICMP are taken in.</param>
/// <param name="OwnAddresses">The balancer's own IPv4 addresses: ICMP to them that quotes a tunnelled packet is taken in.</param>
/// <param name="Ipv6Destinations">IPv6 VIPs (key 16 bytes), and with them the Neighbor Solicitations for them.</param>
/// <param name="Ipv6NatServers">IPv6 NAT real servers: their TCP, UDP, ICMPv6 and fragments are taken in.</param>
/// <param name="Sockets">The XSKMAP: receive queue → AF_XDP socket.</param>
/// <param name="TunnelServers">
/// IPv4 GUE and GRE real servers (key 8 bytes, <see cref="XdpSteeringProgram.TunnelServerKey"/>): ICMP to the balancer
/// that quotes a packet udr encapsulated to one of them is taken in.
/// </param>
public readonly record struct XdpSteeringMaps(int Destinations, int NatServers, int OwnAddresses, int Ipv6Destinations, int Ipv6NatServers, int Sockets,
    int TunnelServers);

/// <summary>
/// The XDP program of the AF_XDP backend: what udr's engine handles goes to the receive queue's AF_XDP socket
/// (bpf_redirect_map on the XSKMAP), everything else to the kernel's stack (XDP_PASS). It takes in what the AF_PACKET
/// backend's socket filter (<see cref="AfPacket.ServiceTrafficFilter"/>) accepts, with one difference that follows from
/// XDP taking a frame instead of copying it: only what the engine answers is taken, so the kernel keeps the rest
/// (ARP and Neighbor Solicitations only for a VIP; ICMP to the balancer's own address only when it quotes an IP-in-IP or
/// IPv6-in-IPv4 packet, or a GRE packet or UDP datagram to a GUE or GRE real server's address (and GUE port): the
/// fragmentation-needed errors about tunnelled traffic; the kernel's own GRE and UDP to other hosts stay its own).
/// </summary>
/// <remarks>
/// Hand-assembled because it is short and its inputs are maps: a C source would need clang and a BPF toolchain on
/// every build machine for forty instructions. libbpf loads it. One 802.1Q tag is stepped over (XDP sees the tag
/// in-band when the driver does not strip it). A socket missing from the XSKMAP makes bpf_redirect_map return its
/// flags' fallback, XDP_PASS: a balancer whose socket is closed hands everything back to its kernel.
/// </remarks>
public static class XdpSteeringProgram
{
    /// <summary>The program's name in the kernel (bpftool, `ip -d link`).</summary>
    public const string ProgramName = "udr_steer";

    /// <summary>Value bit in the destinations maps: a VIP, whose ARP requests (or Neighbor Solicitations) are taken in.</summary>
    public const byte ArpTarget = 1;

    private const int HelperMapLookupElement = 1;
    private const int HelperRedirectMap = 51;
    private const int XdpPass = 2;

    // struct xdp_md
    private const short DataOffset = 0;
    private const short DataEndOffset = 4;
    private const short RxQueueIndexOffset = 16;

    // EtherTypes as a little-endian 16-bit load reads them from the wire.
    private const int EtherTypeIpv4 = 0x0008;
    private const int EtherTypeArp = 0x0608;
    private const int EtherTypeIpv6 = 0xDD86;
    private const int EtherTypeVlan = 0x0081;

    private const short Ethernet = 14;
    private const int ProtocolIcmp = 1;
    private const int ProtocolIpip = 4;
    private const int ProtocolTcp = 6;
    private const int ProtocolUdp = 17;
    private const int ProtocolIpv6 = 41;
    private const int ProtocolGre = 47;
    private const int NextHeaderFragment = 44;
    private const int NextHeaderIcmpv6 = 58;
    private const int NeighborSolicitation = 135;

    /// <summary>
    /// A tunnel server's key in <see cref="XdpSteeringMaps.TunnelServers"/>: its IPv4 address, then 17 (GUE, with its
    /// port) or 47 (GRE, port 0), a zero byte and the port, all as the quoted packet carries them.
    /// </summary>
    public static byte[] TunnelServerKey(uint address, byte protocol, ushort port)
    {
        byte[] key = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(key, address);
        key[4] = protocol;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(key.AsSpan(6), port);
        return key;
    }

    /// <summary>The program's instructions, referencing <paramref name="maps"/> by descriptor.</summary>
    public static ulong[] Build(XdpSteeringMaps maps)
    {
        // r6 = ctx, r7 = data (moved past a VLAN tag), r8 = data_end. r7 and r8 survive the helper calls.
        var asm = new EbpfAssembler();
        asm.Move(R6, R1)
            .LoadWord(R7, R6, DataOffset)
            .LoadWord(R8, R6, DataEndOffset)
            .Move(R1, R7).Add(R1, Ethernet).JumpIfGreater(R1, R8, "pass")
            .LoadHalf(R2, R7, 12)
            .JumpIfNotEqual(R2, EtherTypeVlan, "untagged")
            .Move(R1, R7).Add(R1, Ethernet + 4).JumpIfGreater(R1, R8, "pass")
            .LoadHalf(R2, R7, 16)
            .Add(R7, 4)
            .Label("untagged")
            .JumpIfEqual(R2, EtherTypeIpv4, "ipv4")
            .JumpIfEqual(R2, EtherTypeArp, "arp")
            .JumpIfEqual(R2, EtherTypeIpv6, "ipv6")
            .Goto("pass");

        // IPv4: to a destination; from a NAT server (TCP, UDP, ICMP); ICMP to the balancer quoting a tunnelled packet.
        const short ip = Ethernet;
        asm.Label("ipv4")
            .Move(R1, R7).Add(R1, ip + 20).JumpIfGreater(R1, R8, "pass");
        LookUpWord(asm, R7, ip + 16, maps.Destinations).JumpIfNotEqual(R0, 0, "redirect");
        LookUpWord(asm, R7, ip + 12, maps.NatServers).JumpIfEqual(R0, 0, "ipv4-own")
            .LoadByte(R1, R7, ip + 9)
            .JumpIfEqual(R1, ProtocolTcp, "redirect")
            .JumpIfEqual(R1, ProtocolUdp, "redirect")
            .JumpIfEqual(R1, ProtocolIcmp, "redirect")
            .Goto("pass")
            .Label("ipv4-own")
            .LoadByte(R1, R7, ip + 9).JumpIfNotEqual(R1, ProtocolIcmp, "pass")
            .LoadByte(R1, R7, ip).JumpIfNotEqual(R1, 0x45, "pass") // no options: the ICMP header is at a fixed place
            .Move(R1, R7).Add(R1, ip + 20 + 8 + 20).JumpIfGreater(R1, R8, "pass");
        LookUpWord(asm, R7, ip + 16, maps.OwnAddresses).JumpIfEqual(R0, 0, "pass")
            .LoadByte(R1, R7, ip + 20 + 8 + 9)
            .JumpIfEqual(R1, ProtocolIpip, "redirect")
            .JumpIfEqual(R1, ProtocolIpv6, "redirect")
            .JumpIfEqual(R1, ProtocolGre, "quoted-gre")
            .JumpIfNotEqual(R1, ProtocolUdp, "pass");

        // A quoted UDP datagram: GUE when its destination is a GUE server's address and port. The key is the quoted
        // destination, then the protocol, a zero and the port as on the wire (TunnelServerKey).
        const short quoted = ip + 20 + 8;
        asm.LoadByte(R1, R7, quoted).JumpIfNotEqual(R1, 0x45, "pass")
            .Move(R1, R7).Add(R1, quoted + 20 + 4).JumpIfGreater(R1, R8, "pass")
            .LoadWord(R1, R7, quoted + 16).StoreWord(R10, -8, R1)
            .Move(R1, ProtocolUdp).StoreWord(R10, -4, R1)
            .LoadHalf(R1, R7, quoted + 20 + 2).StoreHalf(R10, -2, R1)
            .Goto("tunnel-lookup")
            .Label("quoted-gre")
            .LoadWord(R1, R7, quoted + 16).StoreWord(R10, -8, R1)
            .Move(R1, ProtocolGre).StoreWord(R10, -4, R1)
            .Label("tunnel-lookup")
            .LoadMap(R1, maps.TunnelServers)
            .Move(R2, R10).Add(R2, -8)
            .Call(HelperMapLookupElement)
            .JumpIfNotEqual(R0, 0, "redirect")
            .Goto("pass");

        // ARP: a request or reply whose target protocol address is a VIP.
        asm.Label("arp")
            .Move(R1, R7).Add(R1, Ethernet + 28).JumpIfGreater(R1, R8, "pass");
        LookUpWord(asm, R7, Ethernet + 24, maps.Destinations).JumpIfEqual(R0, 0, "pass")
            .LoadByte(R1, R0, 0).And(R1, ArpTarget).JumpIfNotEqual(R1, 0, "redirect")
            .Goto("pass");

        // IPv6: to a VIP; from a NAT server (TCP, UDP, ICMPv6, fragments); a Neighbor Solicitation for a VIP.
        asm.Label("ipv6")
            .Move(R1, R7).Add(R1, Ethernet + 40).JumpIfGreater(R1, R8, "pass");
        LookUpAddress(asm, R7, Ethernet + 24, maps.Ipv6Destinations).JumpIfNotEqual(R0, 0, "redirect");
        LookUpAddress(asm, R7, Ethernet + 8, maps.Ipv6NatServers).JumpIfEqual(R0, 0, "ipv6-ns")
            .LoadByte(R1, R7, Ethernet + 6)
            .JumpIfEqual(R1, ProtocolTcp, "redirect")
            .JumpIfEqual(R1, ProtocolUdp, "redirect")
            .JumpIfEqual(R1, NextHeaderIcmpv6, "redirect")
            .JumpIfEqual(R1, NextHeaderFragment, "redirect")
            .Goto("pass")
            .Label("ipv6-ns")
            .LoadByte(R1, R7, Ethernet + 6).JumpIfNotEqual(R1, NextHeaderIcmpv6, "pass")
            .Move(R1, R7).Add(R1, Ethernet + 40 + 24).JumpIfGreater(R1, R8, "pass")
            .LoadByte(R1, R7, Ethernet + 40).JumpIfNotEqual(R1, NeighborSolicitation, "pass");
        LookUpAddress(asm, R7, Ethernet + 40 + 8, maps.Ipv6Destinations).JumpIfNotEqual(R0, 0, "redirect")
            .Goto("pass");

        asm.Label("redirect")
            .LoadMap(R1, maps.Sockets)
            .LoadWord(R2, R6, RxQueueIndexOffset)
            .Move(R3, XdpPass)
            .Call(HelperRedirectMap)
            .Exit()
            .Label("pass")
            .Move(R0, XdpPass)
            .Exit();
        return asm.Build();
    }

    /// <summary>r0 = the map's value for the 4 bytes at packet + offset (null when absent). Bounds are the caller's.</summary>
    private static EbpfAssembler LookUpWord(EbpfAssembler asm, EbpfRegister packet, int offset, int map) =>
        asm.LoadWord(R1, packet, (short)offset)
            .StoreWord(R10, -4, R1)
            .LoadMap(R1, map)
            .Move(R2, R10).Add(R2, -4)
            .Call(HelperMapLookupElement);

    /// <summary>r0 = the map's value for the 16 bytes at packet + offset (null when absent). Bounds are the caller's.</summary>
    private static EbpfAssembler LookUpAddress(EbpfAssembler asm, EbpfRegister packet, int offset, int map)
    {
        for (short word = 0; word < 4; word++)
        {
            asm.LoadWord(R1, packet, (short)(offset + (4 * word)))
                .StoreWord(R10, (short)(-16 + (4 * word)), R1);
        }
        return asm.LoadMap(R1, map)
            .Move(R2, R10).Add(R2, -16)
            .Call(HelperMapLookupElement);
    }
}
