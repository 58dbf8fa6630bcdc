using System.Buffers.Binary;

namespace UserspaceDr.Core.Packets;

public static class TcpFlags
{
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Rst = 0x04;
    public const byte Psh = 0x08;
    public const byte Ack = 0x10;
}

/// <summary>View of a TCP header (at least 20 bytes).</summary>
public readonly ref struct TcpHeader
{
    public const int MinLength = 20;
    public const int ChecksumOffset = 16;
    private readonly Span<byte> _bytes;

    private TcpHeader(Span<byte> bytes) => _bytes = bytes;

    public static bool TryCreate(Span<byte> bytes, out TcpHeader header)
    {
        header = bytes.Length >= MinLength ? new TcpHeader(bytes) : default;
        return bytes.Length >= MinLength;
    }

    public ushort SourcePort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes, value);
    }

    public ushort DestinationPort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[2..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[2..], value);
    }

    public int HeaderLength => (_bytes[12] >> 4) * 4;
    public byte Flags => _bytes[13];

    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[ChecksumOffset..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[ChecksumOffset..], value);
    }
}

/// <summary>View of a UDP header (8 bytes).</summary>
public readonly ref struct UdpHeader
{
    public const int Length = 8;
    public const int ChecksumOffset = 6;
    private readonly Span<byte> _bytes;

    private UdpHeader(Span<byte> bytes) => _bytes = bytes;

    public static bool TryCreate(Span<byte> bytes, out UdpHeader header)
    {
        header = bytes.Length >= Length ? new UdpHeader(bytes) : default;
        return bytes.Length >= Length;
    }

    public ushort SourcePort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes, value);
    }

    public ushort DestinationPort
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[2..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[2..], value);
    }

    public ushort DatagramLength => BinaryPrimitives.ReadUInt16BigEndian(_bytes[4..]);

    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[ChecksumOffset..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[ChecksumOffset..], value);
    }
}

public static class IcmpType
{
    public const byte EchoReply = 0;
    public const byte DestinationUnreachable = 3;
    public const byte SourceQuench = 4;
    public const byte EchoRequest = 8;
    public const byte TimeExceeded = 11;
    public const byte ParameterProblem = 12;

    public const byte CodePortUnreachable = 3;
    public const byte CodeFragmentationNeeded = 4;
    public const byte CodeTtlExceeded = 0;

    /// <summary>The ICMP errors IPVS relates to a connection (ip_vs_in_icmp).</summary>
    public static bool IsErrorIpvsTracks(byte type) =>
        type is DestinationUnreachable or SourceQuench or TimeExceeded;
}

/// <summary>View of an ICMP header (8 bytes: type, code, checksum, rest-of-header).</summary>
public readonly ref struct IcmpHeader
{
    public const int Length = 8;
    private readonly Span<byte> _bytes;

    private IcmpHeader(Span<byte> bytes) => _bytes = bytes;

    public static bool TryCreate(Span<byte> bytes, out IcmpHeader header)
    {
        header = bytes.Length >= Length ? new IcmpHeader(bytes) : default;
        return bytes.Length >= Length;
    }

    public byte Type => _bytes[0];
    public byte Code => _bytes[1];

    public ushort Checksum
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[2..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[2..], value);
    }

    /// <summary>For errors: the quoted original datagram (IP header + at least 8 bytes).</summary>
    public Span<byte> Quoted => _bytes[Length..];
}

public static class ArpOperation
{
    public const ushort Request = 1;
    public const ushort Reply = 2;
}

/// <summary>View of an Ethernet/IPv4 ARP packet (28 bytes).</summary>
public readonly ref struct ArpPacket
{
    public const int Length = 28;
    private readonly Span<byte> _bytes;

    private ArpPacket(Span<byte> bytes) => _bytes = bytes;

    /// <summary>False when too short, or not Ethernet (htype 1) / IPv4 (ptype 0x0800) with 6/4 address lengths.</summary>
    public static bool TryCreate(Span<byte> bytes, out ArpPacket arp)
    {
        arp = default;
        if (bytes.Length < Length || BinaryPrimitives.ReadUInt16BigEndian(bytes) != 1 ||
            BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]) != EtherTypes.Ipv4 || bytes[4] != 6 || bytes[5] != 4)
        {
            return false;
        }
        arp = new ArpPacket(bytes);
        return true;
    }

    public ushort Operation
    {
        get => BinaryPrimitives.ReadUInt16BigEndian(_bytes[6..]);
        set => BinaryPrimitives.WriteUInt16BigEndian(_bytes[6..], value);
    }

    public MacAddress SenderMac { get => MacAddress.Read(_bytes[8..]); set => value.Write(_bytes[8..]); }

    public uint SenderAddress
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_bytes[14..]);
        set => BinaryPrimitives.WriteUInt32BigEndian(_bytes[14..], value);
    }

    public MacAddress TargetMac { get => MacAddress.Read(_bytes[18..]); set => value.Write(_bytes[18..]); }

    public uint TargetAddress
    {
        get => BinaryPrimitives.ReadUInt32BigEndian(_bytes[24..]);
        set => BinaryPrimitives.WriteUInt32BigEndian(_bytes[24..], value);
    }

    /// <summary>The length of a broadcast ARP request frame: Ethernet's 60-byte minimum (the ARP packet padded).</summary>
    public const int RequestFrameLength = 60;

    /// <summary>
    /// Writes a broadcast "who has <paramref name="targetAddress"/>, tell <paramref name="senderAddress"/>" frame from
    /// <paramref name="senderMac"/> into <paramref name="frame"/> (at least <see cref="RequestFrameLength"/> bytes);
    /// returns its length.
    /// </summary>
    public static int WriteRequestFrame(Span<byte> frame, MacAddress senderMac, uint senderAddress, uint targetAddress)
    {
        frame = frame[..RequestFrameLength];
        frame.Clear();
        MacAddress.Broadcast.Write(frame);
        senderMac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Arp);
        Span<byte> bytes = frame[EthernetFrame.HeaderLength..];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, 1); // Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], EtherTypes.Ipv4);
        bytes[4] = 6;
        bytes[5] = 4;
        var arp = new ArpPacket(bytes);
        arp.Operation = ArpOperation.Request;
        arp.SenderMac = senderMac;
        arp.SenderAddress = senderAddress;
        arp.TargetMac = MacAddress.Zero;
        arp.TargetAddress = targetAddress;
        return RequestFrameLength;
    }
}
