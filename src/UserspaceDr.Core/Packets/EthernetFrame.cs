using System.Buffers.Binary;

namespace UserspaceDr.Core.Packets;

public static class EtherTypes
{
    public const ushort Ipv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Vlan = 0x8100;
    public const ushort Ipv6 = 0x86DD;
}

/// <summary>View of an Ethernet II header with at most one 802.1Q tag.</summary>
public readonly ref struct EthernetFrame
{
    public const int HeaderLength = 14;
    public const int VlanTagLength = 4;

    private readonly Span<byte> _bytes;

    private EthernetFrame(Span<byte> bytes, int headerLength)
    {
        _bytes = bytes;
        PayloadOffset = headerLength;
    }

    /// <summary>Parses the header; false when the frame is too short for it (or its tag).</summary>
    public static bool TryParse(Span<byte> frame, out EthernetFrame ethernet)
    {
        ethernet = default;
        if (frame.Length < HeaderLength)
        {
            return false;
        }
        int headerLength = HeaderLength;
        if (BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan)
        {
            headerLength += VlanTagLength;
            if (frame.Length < headerLength)
            {
                return false;
            }
        }
        ethernet = new EthernetFrame(frame, headerLength);
        return true;
    }

    public Span<byte> Bytes => _bytes;
    public int PayloadOffset { get; }
    public bool HasVlanTag => PayloadOffset != HeaderLength;
    /// <summary>The payload's EtherType (after the 802.1Q tag, when there is one); set when a tunnel changes the outer family.</summary>
    public ushort EtherType
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[(PayloadOffset - 2)..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[(PayloadOffset - 2)..], value);
    }
    public Span<byte> Payload => _bytes[PayloadOffset..];

    public MacAddress Destination
    {
        get => MacAddress.Read(_bytes);
        set => value.Write(_bytes);
    }

    public MacAddress Source
    {
        get => MacAddress.Read(_bytes[6..]);
        set => value.Write(_bytes[6..]);
    }
}
