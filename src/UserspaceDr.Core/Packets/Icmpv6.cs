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

    /// <summary>An NA with the Target-LL option: what udr sends (32 bytes).</summary>
    public const int AdvertisementLength = MessageLength + 8;

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
}
