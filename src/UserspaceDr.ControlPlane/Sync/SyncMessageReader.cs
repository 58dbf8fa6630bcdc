using System.Buffers.Binary;
using System.Net;

namespace UserspaceDr.ControlPlane.Sync;

/// <summary>What became of a received sync message as a whole.</summary>
public enum SyncMessageOutcome
{
    /// <summary>A version 1 message of our syncid; its entries were read (some may have been skipped).</summary>
    Read,

    /// <summary>Shorter than the smallest header (4 bytes): dropped.</summary>
    TooShort,

    /// <summary>The header's size is not the datagram's length: dropped.</summary>
    SizeMismatch,

    /// <summary>Another syncid than the backup's (which is not 0): ignored.</summary>
    OtherSyncId,

    /// <summary>Not version 1 (a version 0 message, or reserved/spare not 0): dropped; udr speaks version 1 only.</summary>
    NotVersion1,
}

/// <summary>Why an entry of a version 1 message was not taken (each counted under its name).</summary>
public enum SyncEntryDrop
{
    /// <summary>The entry (or its fixed part) runs past the message: it and the rest are dropped.</summary>
    Truncated,

    /// <summary>The entry's version (ver_size's high four bits) is not 0: it and the rest are dropped.</summary>
    UnknownEntryVersion,

    /// <summary>A type other than IPv4 (0) or IPv6 (1): it and the rest are dropped.</summary>
    UnknownType,

    /// <summary>An option with length 0, past the entry, or a known option malformed or repeated: it and the rest are dropped.</summary>
    MalformedOption,

    /// <summary>An option type the receiver does not know and that is not marked optional: the entry is skipped.</summary>
    UnknownMandatoryOption,

    /// <summary>A protocol other than TCP and UDP (for a connection, not a template): the entry is skipped.</summary>
    UnsupportedProtocol,

    /// <summary>A state beyond the protocol's states: the entry is skipped.</summary>
    InvalidState,

    /// <summary>Persistence engine data (udr has no persistence engines): the entry is skipped.</summary>
    PersistenceEngine,
}

/// <summary>The outcome of reading one message: the whole message's, the entries taken, and the first drop reason of the others.</summary>
public readonly record struct SyncReadResult(SyncMessageOutcome Outcome, int EntriesRead, int EntriesSkipped, SyncEntryDrop? RestDropped);

/// <summary>
/// Reads IPVS sync messages as the kernel's backup does (ip_vs_sync.c ip_vs_process_message, ip_vs_proc_sync_conn):
/// the same checks in the same order, with each refusal named. Entries are handed over with the flags a backup keeps
/// (<see cref="SyncConnectionFlags.BackupMask"/> plus <see cref="SyncConnectionFlags.Sync"/>). Never throws for
/// what the datagram holds.
/// </summary>
public static class SyncMessageReader
{
    private const int Version0HeaderLength = 4;
    private const byte OptionalFlag = 0x40; // IPVS_OPT_F_PARAM
    private const byte PersistenceEngineDataOption = 2;
    private const byte PersistenceEngineNameOption = 3;
    private const int PersistenceEngineDataMax = 255;
    private const int PersistenceEngineNameMax = 16;
    private const int TcpStates = 11; // IP_VS_TCP_S_LAST
    private const int UdpStates = 1; // IP_VS_UDP_S_LAST

    /// <summary>
    /// Reads <paramref name="datagram"/> for a backup with <paramref name="syncId"/> (0 takes every syncid), adding
    /// the entries it takes to <paramref name="entries"/> and counting what it skips in <paramref name="drops"/>
    /// (indexed by <see cref="SyncEntryDrop"/>).
    /// </summary>
    public static SyncReadResult Read(ReadOnlySpan<byte> datagram, byte syncId, ICollection<SyncEntry> entries, long[] drops)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(drops);
        if (datagram.Length < Version0HeaderLength)
        {
            return new SyncReadResult(SyncMessageOutcome.TooShort, 0, 0, null);
        }
        if (datagram.Length != BinaryPrimitives.ReadUInt16BigEndian(datagram[2..]))
        {
            return new SyncReadResult(SyncMessageOutcome.SizeMismatch, 0, 0, null);
        }
        if (syncId != 0 && datagram[1] != syncId)
        {
            return new SyncReadResult(SyncMessageOutcome.OtherSyncId, 0, 0, null);
        }
        if (datagram.Length < SyncMessageWriter.HeaderLength || datagram[5] != SyncMessageWriter.Version || datagram[0] != 0 ||
            BinaryPrimitives.ReadUInt16BigEndian(datagram[6..]) != 0)
        {
            return new SyncReadResult(SyncMessageOutcome.NotVersion1, 0, 0, null);
        }

        int count = datagram[4];
        int read = 0;
        int skipped = 0;
        int position = SyncMessageWriter.HeaderLength;
        for (int i = 0; i < count; i++)
        {
            if (position + SyncMessageWriter.Ipv4EntryLength > datagram.Length)
            {
                return Stop(SyncEntryDrop.Truncated);
            }
            ushort verSize = BinaryPrimitives.ReadUInt16BigEndian(datagram[(position + 2)..]);
            int size = verSize & 0x0FFF;
            if (position + size > datagram.Length)
            {
                return Stop(SyncEntryDrop.Truncated);
            }
            if (verSize >> 12 != 0)
            {
                return Stop(SyncEntryDrop.UnknownEntryVersion);
            }
            (SyncEntry? entry, SyncEntryDrop? drop, bool rest) = ReadEntry(datagram[position..], size);
            if (rest)
            {
                return Stop(drop!.Value);
            }
            if (entry is not null)
            {
                entries.Add(entry);
                read++;
            }
            else
            {
                drops[(int)drop!.Value]++;
                skipped++;
            }
            position += (size + 3) & ~3;
        }
        return new SyncReadResult(SyncMessageOutcome.Read, read, skipped, null);

        SyncReadResult Stop(SyncEntryDrop drop)
        {
            drops[(int)drop]++;
            return new SyncReadResult(SyncMessageOutcome.Read, read, skipped, drop);
        }
    }

    /// <summary>
    /// One entry of <paramref name="size"/> bytes at the start of <paramref name="rest"/> (which holds at least an IPv4
    /// entry's fixed part, whatever the size says): taken, skipped (with why), or malformed so that the rest of the
    /// message goes too.
    /// </summary>
    private static (SyncEntry? Entry, SyncEntryDrop? Drop, bool DropRest) ReadEntry(ReadOnlySpan<byte> rest, int size)
    {
        byte type = rest[0];
        bool ipv6 = (type & SyncMessageWriter.StypeInet6) != 0;
        if (!ipv6 && type != 0)
        {
            return (null, SyncEntryDrop.UnknownType, true);
        }
        int fixedLength = ipv6 ? SyncMessageWriter.Ipv6EntryLength : SyncMessageWriter.Ipv4EntryLength;
        if (fixedLength > size)
        {
            return (null, SyncEntryDrop.Truncated, true);
        }
        ReadOnlySpan<byte> s = rest[..size];

        (SyncSequence, SyncSequence)? sequences = null;
        bool peData = false;
        bool peName = false;
        bool unknownMandatory = false;
        int p = fixedLength;
        while (p < s.Length)
        {
            if (p + 2 > s.Length)
            {
                return (null, SyncEntryDrop.MalformedOption, true);
            }
            byte optionType = s[p];
            int optionLength = s[p + 1];
            p += 2;
            if (optionLength == 0 || p + optionLength > s.Length)
            {
                return (null, SyncEntryDrop.MalformedOption, true);
            }
            ReadOnlySpan<byte> data = s.Slice(p, optionLength);
            switch (optionType & ~OptionalFlag)
            {
                case SyncMessageWriter.SequenceDataOption:
                    if (optionLength != 24 || sequences is not null)
                    {
                        return (null, SyncEntryDrop.MalformedOption, true);
                    }
                    sequences = (Sequence(data), Sequence(data[12..]));
                    break;
                case PersistenceEngineDataOption:
                    if (optionLength > PersistenceEngineDataMax || peData)
                    {
                        return (null, SyncEntryDrop.MalformedOption, true);
                    }
                    peData = true;
                    break;
                case PersistenceEngineNameOption:
                    if (optionLength > PersistenceEngineNameMax || peName)
                    {
                        return (null, SyncEntryDrop.MalformedOption, true);
                    }
                    peName = true;
                    break;
                default:
                    // The kernel stops at the first unknown mandatory option and skips the entry.
                    unknownMandatory |= (optionType & OptionalFlag) == 0;
                    break;
            }
            if (unknownMandatory)
            {
                return (null, SyncEntryDrop.UnknownMandatoryOption, false);
            }
            p += optionLength;
        }

        var flags = (SyncConnectionFlags)BinaryPrimitives.ReadUInt32BigEndian(s[4..]) & SyncConnectionFlags.BackupMask | SyncConnectionFlags.Sync;
        ushort state = BinaryPrimitives.ReadUInt16BigEndian(s[8..]);
        byte protocol = s[1];
        if ((flags & SyncConnectionFlags.Template) == 0)
        {
            int states = protocol switch
            {
                6 => TcpStates,
                17 => UdpStates,
                _ => 0,
            };
            if (states == 0)
            {
                return (null, SyncEntryDrop.UnsupportedProtocol, false);
            }
            if (state >= states)
            {
                return (null, SyncEntryDrop.InvalidState, false);
            }
        }
        if (peData || peName)
        {
            return (null, SyncEntryDrop.PersistenceEngine, false);
        }
        int addressLength = ipv6 ? 16 : 4;
        var entry = new SyncEntry(
            protocol, flags, state,
            new IPAddress(s.Slice(24, addressLength)), BinaryPrimitives.ReadUInt16BigEndian(s[10..]),
            new IPAddress(s.Slice(24 + addressLength, addressLength)), BinaryPrimitives.ReadUInt16BigEndian(s[12..]),
            new IPAddress(s.Slice(24 + (2 * addressLength), addressLength)), BinaryPrimitives.ReadUInt16BigEndian(s[14..]),
            BinaryPrimitives.ReadUInt32BigEndian(s[16..]), BinaryPrimitives.ReadUInt32BigEndian(s[20..]))
        {
            Sequences = sequences,
        };
        return (entry, null, false);
    }

    private static SyncSequence Sequence(ReadOnlySpan<byte> data) => new(
        BinaryPrimitives.ReadUInt32BigEndian(data), BinaryPrimitives.ReadUInt32BigEndian(data[4..]), BinaryPrimitives.ReadUInt32BigEndian(data[8..]));

    /// <summary>The counter name of a drop reason, e.g. "unknown-mandatory-option".</summary>
    public static string Name(SyncEntryDrop drop) => drop switch
    {
        SyncEntryDrop.Truncated => "truncated",
        SyncEntryDrop.UnknownEntryVersion => "unknown-entry-version",
        SyncEntryDrop.UnknownType => "unknown-type",
        SyncEntryDrop.MalformedOption => "malformed-option",
        SyncEntryDrop.UnknownMandatoryOption => "unknown-mandatory-option",
        SyncEntryDrop.UnsupportedProtocol => "unsupported-protocol",
        SyncEntryDrop.InvalidState => "invalid-state",
        _ => "persistence-engine",
    };
}
