using System.Buffers.Binary;

namespace UserspaceDr.Core.Packets;

public static class IpProtocol
{
    public const byte Icmp = 1;
    public const byte IpInIp = 4;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte Gre = 47;
}

/// <summary>
/// View of an IPv4 header. Construction checks only that the fixed 20 bytes are present; callers validate
/// version, IHL and lengths with the properties before trusting the rest.
/// </summary>
public readonly ref struct Ipv4Header
{
    public const int MinLength = 20;
    public const ushort DontFragment = 0x4000;
    public const ushort MoreFragments = 0x2000;
    public const ushort OffsetMask = 0x1FFF;

    private readonly Span<byte> _bytes;

    public Ipv4Header(Span<byte> bytes)
    {
        if (bytes.Length < MinLength)
        {
            throw new ArgumentException("An IPv4 header needs 20 bytes.", nameof(bytes));
        }
        _bytes = bytes;
    }

    public static bool TryCreate(Span<byte> bytes, out Ipv4Header header)
    {
        header = bytes.Length >= MinLength ? new Ipv4Header(bytes) : default;
        return bytes.Length >= MinLength;
    }

    public Span<byte> Bytes => _bytes;
    public int Version => _bytes[0] >> 4;
    public int HeaderLength => (_bytes[0] & 0x0F) * 4;
    public byte TypeOfService { get => _bytes[1]; set => _bytes[1] = value; }
    public ushort TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_bytes[2..]);
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_bytes[4..]);
    public ushort FlagsAndOffset => BinaryPrimitives.ReadUInt16BigEndian(_bytes[6..]);
    public bool DontFragmentSet => (FlagsAndOffset & DontFragment) != 0;
    public bool IsFragment => (FlagsAndOffset & (MoreFragments | OffsetMask)) != 0;
    public bool IsFirstFragment => (FlagsAndOffset & OffsetMask) == 0;
    public byte TimeToLive { get => _bytes[8]; set => _bytes[8] = value; }
    public byte Protocol => _bytes[9];

    public ushort HeaderChecksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[10..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[10..], value);
    }

    public uint Source
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_bytes[12..]);
        set => BinaryPrimitives.WriteUInt32BigEndian(_bytes[12..], value);
    }

    public uint Destination
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_bytes[16..]);
        set => BinaryPrimitives.WriteUInt32BigEndian(_bytes[16..], value);
    }

    /// <summary>True when the stored header checksum verifies (the sum over the header folds to 0xFFFF).</summary>
    public bool HeaderChecksumValid => Checksum.Fold(Checksum.Add(_bytes[..HeaderLength])) == 0xFFFF;

    public void RecomputeHeaderChecksum()
    {
        HeaderChecksum = 0;
        HeaderChecksum = Checksum.Compute(_bytes[..HeaderLength]);
    }

    /// <summary>Decrements TTL and patches the checksum incrementally (TTL shares a 16-bit word with protocol).</summary>
    public void DecrementTimeToLive()
    {
        ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(_bytes[8..]);
        _bytes[8]--;
        ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(_bytes[8..]);
        HeaderChecksum = Checksum.Update(HeaderChecksum, oldWord, newWord);
    }

    /// <summary>The transport bytes (from the end of the header to the end of the datagram).</summary>
    public Span<byte> Payload => _bytes[HeaderLength..TotalLength];
}
