using System.Buffers.Binary;

namespace UserspaceDr.Core.Packets;

/// <summary>ICMPv6 message types and codes udr reads or writes (RFC 4443, RFC 4861).</summary>
public static class Icmpv6Type
{
    public const byte DestinationUnreachable = 1;
    public const byte PacketTooBig = 2;
    public const byte TimeExceeded = 3;
    public const byte ParameterProblem = 4;
    public const byte EchoRequest = 128;
    public const byte EchoReply = 129;
    public const byte NeighborSolicitation = 135;
    public const byte NeighborAdvertisement = 136;

    public const byte CodePortUnreachable = 4;
    public const byte CodeHopLimitExceeded = 0;

    /// <summary>Errors have the high bit clear (ICMPV6_INFOMSG_MASK); IPVS relates types 1–4 to a connection.</summary>
    public static bool IsError(byte type) => (type & 0x80) == 0;
}

/// <summary>The IPv6 pseudo-header (RFC 8200 §8.1) and the checksums computed over it.</summary>
public static class Ipv6Checksum
{
    /// <summary>Sum of the IPv6 pseudo-header: both addresses, the upper-layer length and the next header.</summary>
    public static ulong PseudoHeader(UInt128 source, UInt128 destination, byte nextHeader, int upperLayerLength) =>
        Words(source) + Words(destination) + (uint)upperLayerLength + nextHeader;

    /// <summary>The checksum of <paramref name="upperLayer"/> (its checksum field included as it stands).</summary>
    public static ushort Compute(UInt128 source, UInt128 destination, byte nextHeader, ReadOnlySpan<byte> upperLayer) =>
        (ushort)~Checksum.Fold(Checksum.Add(upperLayer, PseudoHeader(source, destination, nextHeader, upperLayer.Length)));

    /// <summary>True when <paramref name="upperLayer"/>'s stored checksum verifies.</summary>
    public static bool Valid(UInt128 source, UInt128 destination, byte nextHeader, ReadOnlySpan<byte> upperLayer) =>
        Checksum.Fold(Checksum.Add(upperLayer, PseudoHeader(source, destination, nextHeader, upperLayer.Length))) == 0xFFFF;

    /// <summary>Zeroes the 16-bit checksum at <paramref name="offset"/> and stores the computed one.</summary>
    public static void Store(UInt128 source, UInt128 destination, byte nextHeader, Span<byte> upperLayer, int offset)
    {
        BinaryPrimitives.WriteUInt16BigEndian(upperLayer[offset..], 0);
        BinaryPrimitives.WriteUInt16BigEndian(upperLayer[offset..], Compute(source, destination, nextHeader, upperLayer));
    }

    private static ulong Words(UInt128 address)
    {
        ulong high = (ulong)(address >> 64), low = (ulong)address;
        return (high >> 48) + ((high >> 32) & 0xFFFF) + ((high >> 16) & 0xFFFF) + (high & 0xFFFF) +
            (low >> 48) + ((low >> 32) & 0xFFFF) + ((low >> 16) & 0xFFFF) + (low & 0xFFFF);
    }
}

/// <summary>
/// Neighbour Discovery (RFC 4861) as udr speaks it: a Neighbor Solicitation's target and source link-layer address,
/// and the addresses NDP sends to. Every NDP message is sent with hop limit 255 and one that arrives with less came
/// through a router and is ignored (§7.1.1).
/// </summary>
public static class Ndp
{
    public const byte HopLimit = 255;

    /// <summary>Type, code, checksum, reserved/flags, 16-byte target: the fixed part of an NS or NA.</summary>
    public const int MessageLength = 24;

    public const byte SourceLinkLayerOption = 1;
    public const byte TargetLinkLayerOption = 2;

    /// <summary>NA flags: Router, Solicited, Override (the top three bits of the word after the checksum).</summary>
    public const uint SolicitedFlag = 0x4000_0000;
    public const uint OverrideFlag = 0x2000_0000;

    /// <summary>ff02::1, all nodes on the link: where an NA answering a DAD probe (from ::) goes.</summary>
    public static readonly UInt128 AllNodes = new(0xFF02_0000_0000_0000, 1);

    /// <summary>The solicited-node multicast group of <paramref name="target"/>: ff02::1:ff00:0/104 and its low 24 bits.</summary>
    public static UInt128 SolicitedNode(UInt128 target) => new(0xFF02_0000_0000_0000, 0x0000_0001_FF00_0000 | ((ulong)target & 0xFF_FFFF));

    /// <summary>The Ethernet multicast address of an IPv6 multicast group: 33:33 and its low 32 bits (RFC 2464 §7).</summary>
    public static MacAddress MulticastMac(UInt128 group) => new(0x3333_0000_0000UL | ((ulong)group & 0xFFFF_FFFF));

    public static bool IsMulticast(UInt128 address) => (byte)(address >> 120) == 0xFF;

    /// <summary>
    /// Reads an NS or NA: its target, and the link-layer address of the option of <paramref name="optionType"/> (Source-LL
    /// in an NS, Target-LL in an NA), zero when absent. False when the message is short or an option has length 0 or
    /// runs past the end (§7.1.1: such a message is discarded).
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> message, byte optionType, out UInt128 target, out MacAddress linkLayerAddress)
    {
        target = 0;
        linkLayerAddress = MacAddress.Zero;
        if (message.Length < MessageLength)
        {
            return false;
        }
        target = BinaryPrimitives.ReadUInt128BigEndian(message[8..]);
        for (int offset = MessageLength; offset < message.Length;)
        {
            if (message.Length - offset < 2)
            {
                return false;
            }
            int length = message[offset + 1] * 8;
            if (length == 0 || length > message.Length - offset)
            {
                return false;
            }
            if (message[offset] == optionType && length >= 8)
            {
                linkLayerAddress = MacAddress.Read(message.Slice(offset + 2, 6));
            }
            offset += length;
        }
        return true;
    }

    /// <summary>An NS or NA with its one link-layer option: 24 + 8 bytes.</summary>
    public const int MessageWithOptionLength = MessageLength + 8;

    /// <summary>Ethernet, IPv6 and an NS with the Source-LL option.</summary>
    public const int SolicitationFrameLength = EthernetFrame.HeaderLength + Ipv6Header.Length + MessageWithOptionLength;

    /// <summary>
    /// An IPv6 packet carrying an NS or NA of <paramref name="type"/> about <paramref name="target"/>, with one link-layer
    /// option (<paramref name="optionType"/>, <paramref name="mac"/>), hop limit 255 and its checksum; returns its length.
    /// </summary>
    public static int WritePacket(Span<byte> packet, byte type, uint flags, UInt128 source, UInt128 destination, UInt128 target,
        byte optionType, MacAddress mac)
    {
        Ipv6Header.Write(packet, 0, MessageWithOptionLength, Ipv6NextHeader.Icmpv6, HopLimit, source, destination);
        Span<byte> icmp = packet.Slice(Ipv6Header.Length, MessageWithOptionLength);
        icmp[0] = type;
        icmp[1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], flags);
        BinaryPrimitives.WriteUInt128BigEndian(icmp[8..], target);
        icmp[24] = optionType;
        icmp[25] = 1; // in units of 8 bytes
        mac.Write(icmp[26..]);
        Ipv6Checksum.Store(source, destination, Ipv6NextHeader.Icmpv6, icmp, 2);
        return Ipv6Header.Length + MessageWithOptionLength;
    }

    /// <summary>
    /// A Neighbor Solicitation frame for <paramref name="target"/> from <paramref name="source"/> (an address of the sending
    /// link), to the target's solicited-node group (RFC 4861 §7.2.2), with the Source-LL option; returns its length.
    /// </summary>
    public static int WriteSolicitationFrame(Span<byte> frame, MacAddress senderMac, UInt128 source, UInt128 target)
    {
        UInt128 group = SolicitedNode(target);
        MulticastMac(group).Write(frame);
        senderMac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Ipv6);
        return EthernetFrame.HeaderLength + WritePacket(frame[EthernetFrame.HeaderLength..], Icmpv6Type.NeighborSolicitation, 0, source, group,
            target, SourceLinkLayerOption, senderMac);
    }

    /// <summary>
    /// Reads a Neighbor Advertisement frame as a resolver may believe it (§7.1.2): IPv6 straight to ICMPv6, hop limit 255,
    /// code 0, a valid checksum, well-formed options, and a unicast Target-LL address. False for anything else.
    /// </summary>
    public static bool TryReadAdvertisementFrame(ReadOnlySpan<byte> frame, out UInt128 target, out MacAddress mac)
    {
        target = 0;
        mac = MacAddress.Zero;
        if (frame.Length < EthernetFrame.HeaderLength + Ipv6Header.Length + MessageLength ||
            BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != EtherTypes.Ipv6)
        {
            return false;
        }
        ReadOnlySpan<byte> packet = frame[EthernetFrame.HeaderLength..];
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(packet[4..]);
        if ((packet[0] >> 4) != 6 || packet[6] != Ipv6NextHeader.Icmpv6 || packet[7] != HopLimit ||
            payloadLength < MessageLength || payloadLength > packet.Length - Ipv6Header.Length)
        {
            return false;
        }
        ReadOnlySpan<byte> message = packet.Slice(Ipv6Header.Length, payloadLength);
        UInt128 source = BinaryPrimitives.ReadUInt128BigEndian(packet[8..]);
        UInt128 destination = BinaryPrimitives.ReadUInt128BigEndian(packet[24..]);
        return message[0] == Icmpv6Type.NeighborAdvertisement && message[1] == 0 &&
            Ipv6Checksum.Valid(source, destination, Ipv6NextHeader.Icmpv6, message) &&
            TryRead(message, TargetLinkLayerOption, out target, out mac) &&
            mac != MacAddress.Zero && (mac.Value & 0x0100_0000_0000) == 0 && !IsMulticast(target);
    }

    /// <summary>Ethernet, IPv6 and an NA with the Target-LL option.</summary>
    public const int AdvertisementFrameLength = SolicitationFrameLength;

    /// <summary>
    /// An unsolicited Neighbor Advertisement for <paramref name="target"/> to all nodes, override set and solicited clear
    /// (§7.2.6): what a balancer that answers for a VIP sends when it starts to, so that neighbours learn where the VIP
    /// now is at once (IPv6's gratuitous ARP). Returns its length.
    /// </summary>
    public static int WriteUnsolicitedAdvertisementFrame(Span<byte> frame, MacAddress senderMac, UInt128 target)
    {
        MulticastMac(AllNodes).Write(frame);
        senderMac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Ipv6);
        return EthernetFrame.HeaderLength + WritePacket(frame[EthernetFrame.HeaderLength..], Icmpv6Type.NeighborAdvertisement, OverrideFlag,
            target, AllNodes, target, TargetLinkLayerOption, senderMac);
    }
}
