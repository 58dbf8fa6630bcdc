using System.Buffers.Binary;

namespace UserspaceDr.Io.CaptureFiles;

/// <summary>One captured frame: its timestamp (microseconds since the epoch) and bytes.</summary>
public readonly record struct PcapRecord(long TimestampMicroseconds, byte[] Data);

/// <summary>
/// Classic libpcap capture files (the format tcpdump -w writes), Ethernet link type only. Small and dependency-free:
/// offline replay needs no libpcap. Reads both byte orders and the nanosecond variant; writes microsecond
/// little-endian.
/// </summary>
public static class PcapFile
{
    public const uint LinkTypeEthernet = 1;
    private const uint MagicMicroseconds = 0xA1B2C3D4;
    private const uint MagicNanoseconds = 0xA1B23C4D;
    private const int GlobalHeaderLength = 24;
    private const int RecordHeaderLength = 16;
    private const int MaxSnapLength = 262_144;

    public static IReadOnlyList<PcapRecord> Read(string path) => Read(File.ReadAllBytes(path));

    /// <summary>Parses a capture; throws <see cref="InvalidDataException"/> with the reason when it is not one udr reads.</summary>
    public static IReadOnlyList<PcapRecord> Read(ReadOnlySpan<byte> file)
    {
        if (file.Length < GlobalHeaderLength)
        {
            throw new InvalidDataException("not a pcap file: shorter than the 24-byte header");
        }
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(file);
        bool bigEndian;
        bool nanoseconds;
        if (magic is MagicMicroseconds or MagicNanoseconds)
        {
            bigEndian = false;
            nanoseconds = magic == MagicNanoseconds;
        }
        else
        {
            uint swapped = BinaryPrimitives.ReverseEndianness(magic);
            if (swapped is not (MagicMicroseconds or MagicNanoseconds))
            {
                throw new InvalidDataException("not a pcap file: unknown magic number (pcapng is not supported)");
            }
            bigEndian = true;
            nanoseconds = swapped == MagicNanoseconds;
        }
        uint linkType = ReadUInt32(file[20..], bigEndian) & 0x0FFF_FFFF;
        if (linkType != LinkTypeEthernet)
        {
            throw new InvalidDataException($"pcap link type {linkType} is not Ethernet (1)");
        }

        var records = new List<PcapRecord>();
        int offset = GlobalHeaderLength;
        while (offset < file.Length)
        {
            if (file.Length - offset < RecordHeaderLength)
            {
                throw new InvalidDataException($"truncated record header at byte {offset}");
            }
            ReadOnlySpan<byte> header = file.Slice(offset, RecordHeaderLength);
            long seconds = ReadUInt32(header, bigEndian);
            long fraction = ReadUInt32(header[4..], bigEndian);
            uint capturedLength = ReadUInt32(header[8..], bigEndian);
            if (capturedLength > MaxSnapLength || capturedLength > file.Length - offset - RecordHeaderLength)
            {
                throw new InvalidDataException($"record at byte {offset} claims {capturedLength} bytes, more than the file holds");
            }
            offset += RecordHeaderLength;
            long micros = (seconds * 1_000_000) + (nanoseconds ? fraction / 1000 : fraction);
            records.Add(new PcapRecord(micros, file.Slice(offset, (int)capturedLength).ToArray()));
            offset += (int)capturedLength;
        }
        return records;
    }

    private static uint ReadUInt32(ReadOnlySpan<byte> bytes, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt32LittleEndian(bytes);

    public static void Write(string path, IEnumerable<PcapRecord> records)
    {
        using FileStream stream = File.Create(path);
        Write(stream, records);
    }

    public static void Write(Stream stream, IEnumerable<PcapRecord> records)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(records);
        Span<byte> header = stackalloc byte[GlobalHeaderLength];
        BinaryPrimitives.WriteUInt32LittleEndian(header, MagicMicroseconds);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(header[16..], MaxSnapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(header[20..], LinkTypeEthernet);
        stream.Write(header);

        Span<byte> recordHeader = stackalloc byte[RecordHeaderLength];
        foreach (PcapRecord record in records)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(recordHeader, (uint)(record.TimestampMicroseconds / 1_000_000));
            BinaryPrimitives.WriteUInt32LittleEndian(recordHeader[4..], (uint)(record.TimestampMicroseconds % 1_000_000));
            BinaryPrimitives.WriteUInt32LittleEndian(recordHeader[8..], (uint)record.Data.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(recordHeader[12..], (uint)record.Data.Length);
            stream.Write(recordHeader);
            stream.Write(record.Data);
        }
    }
}
