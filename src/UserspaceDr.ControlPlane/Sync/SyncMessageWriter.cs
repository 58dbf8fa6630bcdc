using System.Buffers.Binary;
using System.Net;

namespace UserspaceDr.ControlPlane.Sync;

/// <summary>
/// Builds IPVS sync messages, version 1, as the kernel's master does (ip_vs_sync.c ip_vs_sync_conn): an 8-byte header
/// (reserved 0, syncid, size, nr_conns, version 1, spare 0), then entries, each starting on a 4-byte boundary (the
/// padding before an entry is zeroed and counted in the size; none follows the last). Entries are appended until the
/// next would pass <see cref="MaxLength"/> (sync_maxlen) or the 255 a one-byte count can hold; then the message is
/// sent and the writer reset. One writer per sender thread; not thread-safe.
/// </summary>
public sealed class SyncMessageWriter
{
    public const int HeaderLength = 8;
    public const int Ipv4EntryLength = 36;
    public const int Ipv6EntryLength = 72;

    /// <summary>The SEQ_DATA option: type, length, two struct ip_vs_seq of three be32 each.</summary>
    public const int SequenceOptionLength = 2 + 24;

    /// <summary>sync_maxlen on an IPv4 master with a 1500-byte MTU: 1500 − 20 (IP) − 8 (UDP).</summary>
    public const int DefaultMaxLength = 1472;

    public const byte Version = 1;
    public const byte SequenceDataOption = 1;
    public const byte StypeInet6 = 1;

    private const int MaxEntries = byte.MaxValue;

    private readonly byte[] _buffer;
    private int _length;

    public SyncMessageWriter(byte syncId, int maxLength = DefaultMaxLength)
    {
        if (maxLength < HeaderLength + Ipv6EntryLength + SequenceOptionLength || maxLength > ushort.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, $"sync_maxlen must be {HeaderLength + Ipv6EntryLength + SequenceOptionLength} to {ushort.MaxValue}");
        }
        SyncId = syncId;
        MaxLength = maxLength;
        _buffer = new byte[maxLength];
        Reset();
    }

    public byte SyncId { get; }

    public int MaxLength { get; }

    /// <summary>Entries in the message so far.</summary>
    public int Count => _buffer[4];

    /// <summary>The message as it stands (header included), ready to send when <see cref="Count"/> is above 0.</summary>
    public ReadOnlySpan<byte> Message => _buffer.AsSpan(0, _length);

    /// <summary>Starts an empty message (ip_vs_sync_buff_create).</summary>
    public void Reset()
    {
        Array.Clear(_buffer);
        _buffer[1] = SyncId;
        _buffer[5] = Version;
        _length = HeaderLength;
        WriteSize();
    }

    /// <summary>The length <paramref name="entry"/> takes, options included, padding not.</summary>
    public static int EntryLength(SyncEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return (entry.IsIpv6 ? Ipv6EntryLength : Ipv4EntryLength) + (entry.Sequences is null ? 0 : SequenceOptionLength);
    }

    /// <summary>
    /// Appends <paramref name="entry"/>; false when it does not fit (send <see cref="Message"/>, <see cref="Reset"/>, and
    /// append it again). A persistence engine's data is not carried: udr has no persistence engines.
    /// </summary>
    public bool TryAppend(SyncEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        bool ipv6 = entry.IsIpv6;
        if (entry.VirtualAddress.AddressFamily != entry.ClientAddress.AddressFamily ||
            entry.DestinationAddress.AddressFamily != entry.ClientAddress.AddressFamily)
        {
            throw new ArgumentException("a sync entry's three addresses are of one family", nameof(entry));
        }
        int length = EntryLength(entry);
        int pad = (4 - _length) & 3;
        if (Count == MaxEntries || _length + pad + length > MaxLength)
        {
            return false;
        }
        _length += pad; // the buffer is zeroed: the padding is
        Span<byte> s = _buffer.AsSpan(_length, length);
        s[0] = ipv6 ? StypeInet6 : (byte)0;
        s[1] = entry.Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(s[2..], (ushort)(length & 0x0FFF)); // version 0 in the high four bits
        BinaryPrimitives.WriteUInt32BigEndian(s[4..], (uint)(entry.Flags & ~SyncConnectionFlags.Hashed));
        BinaryPrimitives.WriteUInt16BigEndian(s[8..], entry.State);
        BinaryPrimitives.WriteUInt16BigEndian(s[10..], entry.ClientPort);
        BinaryPrimitives.WriteUInt16BigEndian(s[12..], entry.VirtualPort);
        BinaryPrimitives.WriteUInt16BigEndian(s[14..], entry.DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(s[16..], entry.FirewallMark);
        BinaryPrimitives.WriteUInt32BigEndian(s[20..], entry.TimeoutSeconds);
        int addressLength = ipv6 ? 16 : 4;
        int offset = 24;
        foreach (IPAddress address in (IPAddress[])[entry.ClientAddress, entry.VirtualAddress, entry.DestinationAddress])
        {
            address.TryWriteBytes(s.Slice(offset, addressLength), out _);
            offset += addressLength;
        }
        if (entry.Sequences is ({ } inSequence, { } outSequence))
        {
            s[offset] = SequenceDataOption;
            s[offset + 1] = 24;
            offset += 2;
            foreach (SyncSequence sequence in (SyncSequence[])[inSequence, outSequence])
            {
                BinaryPrimitives.WriteUInt32BigEndian(s[offset..], sequence.InitialSequence);
                BinaryPrimitives.WriteUInt32BigEndian(s[(offset + 4)..], sequence.Delta);
                BinaryPrimitives.WriteUInt32BigEndian(s[(offset + 8)..], sequence.PreviousDelta);
                offset += 12;
            }
        }
        _length += length;
        _buffer[4]++;
        WriteSize();
        return true;
    }

    private void WriteSize() => BinaryPrimitives.WriteUInt16BigEndian(_buffer.AsSpan(2), (ushort)_length);
}
