using System.Buffers.Binary;

namespace UserspaceDr.Core.Packets;

/// <summary>IPv6 next-header values udr reads (RFC 8200 §4, IANA protocol numbers).</summary>
public static class Ipv6NextHeader
{
    public const byte HopByHop = 0;
    public const byte Ipv4 = 4;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Ipv6 = 41;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    public const byte Authentication = 51;
    public const byte Icmpv6 = 58;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;

    /// <summary>The kernel's ipv6_ext_hdr(): the headers ipv6_find_hdr walks over (No Next Header ends the walk).</summary>
    public static bool IsExtension(byte nextHeader) => nextHeader is HopByHop or Routing or Fragment or Authentication or
        NoNextHeader or DestinationOptions;
}

/// <summary>
/// View of the fixed 40-byte IPv6 header. Construction checks only that the 40 bytes are present; callers check
/// <see cref="Version"/> and <see cref="PayloadLength"/> before trusting the rest. Addresses are read as one 128-bit
/// number, most significant bit first (the form <see cref="InetAddress.IPv6"/> takes).
/// </summary>
public readonly ref struct Ipv6Header
{
    public const int Length = 40;

    /// <summary>The smallest MTU every IPv6 link has (RFC 8200 §5): no Packet Too Big ever reports less.</summary>
    public const int MinimumMtu = 1280;

    private readonly Span<byte> _bytes;

    public Ipv6Header(Span<byte> bytes)
    {
        if (bytes.Length < Length)
        {
            throw new ArgumentException("An IPv6 header needs 40 bytes.", nameof(bytes));
        }
        _bytes = bytes;
    }

    public static bool TryCreate(Span<byte> bytes, out Ipv6Header header)
    {
        header = bytes.Length >= Length ? new Ipv6Header(bytes) : default;
        return bytes.Length >= Length;
    }

    public Span<byte> Bytes => _bytes;
    public int Version => _bytes[0] >> 4;

    /// <summary>The traffic class (DSCP and ECN), which straddles the first two bytes.</summary>
    public byte TrafficClass => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_bytes) >> 4) & 0xFF);

    public uint FlowLabel => BinaryPrimitives.ReadUInt32BigEndian(_bytes) & 0x000F_FFFF;

    /// <summary>The bytes after the fixed header (extension headers included).</summary>
    public ushort PayloadLength
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[4..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[4..], value);
    }

    public byte NextHeader => _bytes[6];

    /// <summary>No header checksum covers it, and no pseudo-header either: a decrement needs no checksum update.</summary>
    public byte HopLimit { get => _bytes[7]; set => _bytes[7] = value; }

    public UInt128 Source
    {
        get => BinaryPrimitives.ReadUInt128BigEndian(_bytes[8..]);
        set => BinaryPrimitives.WriteUInt128BigEndian(_bytes[8..], value);
    }

    public UInt128 Destination
    {
        get => BinaryPrimitives.ReadUInt128BigEndian(_bytes[24..]);
        set => BinaryPrimitives.WriteUInt128BigEndian(_bytes[24..], value);
    }

    /// <summary>
    /// Writes a fixed header: version 6, <paramref name="trafficClass"/>, flow label 0 (what IPVS's tunnels send),
    /// the given lengths and addresses.
    /// </summary>
    public static void Write(Span<byte> bytes, byte trafficClass, ushort payloadLength, byte nextHeader, byte hopLimit, UInt128 source, UInt128 destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(bytes, (6u << 28) | ((uint)trafficClass << 20));
        BinaryPrimitives.WriteUInt16BigEndian(bytes[4..], payloadLength);
        bytes[6] = nextHeader;
        bytes[7] = hopLimit;
        BinaryPrimitives.WriteUInt128BigEndian(bytes[8..], source);
        BinaryPrimitives.WriteUInt128BigEndian(bytes[24..], destination);
    }
}

/// <summary>How a walk of an IPv6 extension-header chain ended.</summary>
public enum Ipv6ChainEnd : byte
{
    /// <summary>An upper-layer header was found (<see cref="Ipv6Transport.Protocol"/> at <see cref="Ipv6Transport.Offset"/>).</summary>
    Found,

    /// <summary>
    /// A later fragment: <see cref="Ipv6Transport.Protocol"/> is what the Fragment header names, and there is no
    /// upper-layer header in this packet to read (ipv6_find_hdr's fragoffs case).
    /// </summary>
    LaterFragment,

    /// <summary>No upper-layer header at all: No Next Header, or a later fragment that names another extension header.</summary>
    NoTransport,

    /// <summary>An extension header runs past the end of the packet.</summary>
    Truncated,
}

/// <summary>Where an IPv6 packet's upper-layer header is, and what its Fragment header said (if it had one).</summary>
public readonly record struct Ipv6Transport(byte Protocol, int Offset, bool IsFragment, ushort FragmentOffset, bool MoreFragments, uint FragmentId)
{
    /// <summary>A fragment that starts the datagram (offset 0) carries the upper-layer header; only later ones do not.</summary>
    public bool IsLaterFragment => IsFragment && FragmentOffset != 0;
}

/// <summary>The extension-header walk IPVS does with ipv6_find_hdr(skb, &amp;offset, -1, &amp;fragoffs, &amp;flags).</summary>
public static class Ipv6ExtensionHeaders
{
    /// <summary>
    /// Walks Hop-by-Hop, Routing (every type), Fragment, Destination Options and Authentication headers from the
    /// fixed header's next header to the first upper-layer header, within <paramref name="packet"/> (fixed header
    /// first, cut to the payload length). A first fragment is walked through; a later fragment ends the walk at its
    /// Fragment header, whose next header it reports, as the kernel does. Offsets only grow, so every chain ends
    /// within the packet.
    /// </summary>
    public static Ipv6ChainEnd Walk(ReadOnlySpan<byte> packet, out Ipv6Transport transport)
    {
        transport = default;
        if (packet.Length < Ipv6Header.Length)
        {
            return Ipv6ChainEnd.Truncated;
        }
        byte next = packet[6];
        int offset = Ipv6Header.Length;
        bool isFragment = false, moreFragments = false;
        ushort fragmentOffset = 0;
        uint fragmentId = 0;
        while (Ipv6NextHeader.IsExtension(next))
        {
            if (next == Ipv6NextHeader.NoNextHeader)
            {
                return Ipv6ChainEnd.NoTransport;
            }
            if (packet.Length - offset < 2)
            {
                return Ipv6ChainEnd.Truncated;
            }
            byte following = packet[offset];
            int length;
            if (next == Ipv6NextHeader.Fragment)
            {
                if (packet.Length - offset < 8)
                {
                    return Ipv6ChainEnd.Truncated;
                }
                ushort offsetAndFlags = BinaryPrimitives.ReadUInt16BigEndian(packet[(offset + 2)..]);
                isFragment = true;
                fragmentOffset = (ushort)(offsetAndFlags & 0xFFF8);
                moreFragments = (offsetAndFlags & 1) != 0;
                fragmentId = BinaryPrimitives.ReadUInt32BigEndian(packet[(offset + 4)..]);
                if (fragmentOffset != 0)
                {
                    transport = new Ipv6Transport(following, offset, true, fragmentOffset, moreFragments, fragmentId);
                    return Ipv6NextHeader.IsExtension(following) ? Ipv6ChainEnd.NoTransport : Ipv6ChainEnd.LaterFragment;
                }
                length = 8;
            }
            else if (next == Ipv6NextHeader.Authentication)
            {
                length = (packet[offset + 1] + 2) << 2; // ipv6_authlen: in 4-byte units, less 2
            }
            else
            {
                length = (packet[offset + 1] + 1) << 3; // ipv6_optlen: in 8-byte units, less 1
            }
            if (packet.Length - offset < length)
            {
                return Ipv6ChainEnd.Truncated;
            }
            next = following;
            offset += length;
        }
        transport = new Ipv6Transport(next, offset, isFragment, fragmentOffset, moreFragments, fragmentId);
        return Ipv6ChainEnd.Found;
    }
}
