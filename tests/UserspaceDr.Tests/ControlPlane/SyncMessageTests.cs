using System.Buffers.Binary;
using System.Net;
using UserspaceDr.ControlPlane.Sync;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.ControlPlane;

/// <summary>
/// IPVS sync messages, version 1: what the writer sends, checked against a decoder written here from the kernel's
/// struct definitions (include/net/ip_vs.h, ip_vs_sync.c: struct ip_vs_sync_mesg, ip_vs_sync_v4/v6, the options),
/// independent of udr's reader; and what the reader does with hostile input.
/// </summary>
public class SyncMessageTests
{
    private static readonly IPAddress Client = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress Vip = IPAddress.Parse("198.18.0.100");
    private static readonly IPAddress Server = IPAddress.Parse("198.18.0.11");

    private static SyncEntry Tcp(ushort clientPort, ushort state = 1, SyncConnectionFlags flags = (SyncConnectionFlags)3) =>
        new(6, flags, state, Client, clientPort, Vip, 80, Server, 80, 0, 900);

    [Test]
    public void The_writer_lays_out_header_and_IPv4_entries_as_the_kernel_defines_them()
    {
        var writer = new SyncMessageWriter(syncId: 7);
        Assert.That(writer.TryAppend(Tcp(40000) with { Flags = (SyncConnectionFlags)3 | SyncConnectionFlags.Hashed }), Is.True);
        Assert.That(writer.TryAppend(new SyncEntry(17, 0, 0, Client, 5353, Vip, 53, Server, 5353, 0, 300)), Is.True);
        DecodedSyncMessage m = SyncWireDecoder.Decode(writer.Message);
        Assert.Multiple(() =>
        {
            Assert.That((m.Reserved, m.SyncId, m.Size, m.Count, m.Version, m.Spare), Is.EqualTo((0, 7, 8 + 36 + 36, 2, 1, 0)));
            Assert.That(writer.Message.Length, Is.EqualTo(80));
            DecodedSyncEntry first = m.Entries[0];
            Assert.That((first.Offset, first.Type, first.Protocol, first.VerSize, first.Flags, first.State), Is.EqualTo((8, 0, 6, 36, 3u, 1)),
                "type 0 (IPv4), ver_size = version 0 and 36 bytes, flags without HASHED");
            Assert.That((first.ClientPort, first.VirtualPort, first.DestinationPort, first.FirewallMark, first.Timeout), Is.EqualTo((40000, 80, 80, 0u, 900u)));
            Assert.That((first.ClientAddress, first.VirtualAddress, first.DestinationAddress), Is.EqualTo(("198.18.0.1", "198.18.0.100", "198.18.0.11")));
            Assert.That((m.Entries[1].Offset, m.Entries[1].Protocol, m.Entries[1].VirtualPort, m.Entries[1].Timeout), Is.EqualTo((44, 17, 53, 300u)));
        });
    }

    [Test]
    public void Entries_after_an_option_start_on_a_4_byte_boundary_with_zeroed_padding_counted_in_the_size()
    {
        var writer = new SyncMessageWriter(0);
        SyncEntry withSequences = Tcp(1) with
        {
            Flags = SyncConnectionFlags.SequenceMask,
            Sequences = (new SyncSequence(1000, 5, 0), new SyncSequence(2000, 0xFFFF_FFF0, 1)),
        };
        writer.TryAppend(withSequences);
        writer.TryAppend(Tcp(2));
        ReadOnlySpan<byte> m = writer.Message;
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(m[10..]), Is.EqualTo(62), "36 + SEQ_DATA (2 + 24)");
        Assert.That(m[8 + 36], Is.EqualTo(1), "option type SEQ_DATA");
        Assert.That(m[8 + 37], Is.EqualTo(24), "option length");
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(m[(8 + 38)..]), Is.EqualTo(1000u));
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(m[(8 + 38 + 16)..]), Is.EqualTo(0xFFFF_FFF0u), "out_seq.delta");
        Assert.That(m.Slice(8 + 62, 2).ToArray(), Is.EqualTo(new byte[2]), "two bytes of zero padding");
        Assert.That(SyncWireDecoder.Decode(m).Entries[1].Offset, Is.EqualTo(72));
        Assert.That(BinaryPrimitives.ReadUInt16BigEndian(m[2..]), Is.EqualTo(72 + 36));
    }

    [Test]
    public void IPv6_entries_are_72_bytes_with_type_1()
    {
        var writer = new SyncMessageWriter(0);
        writer.TryAppend(new SyncEntry(6, (SyncConnectionFlags)3, 1, IPAddress.Parse("2001:2::1"), 40000, IPAddress.Parse("2001:2::100"), 80,
            IPAddress.Parse("2001:2::11"), 80, 0, 900));
        DecodedSyncEntry entry = SyncWireDecoder.Decode(writer.Message).Entries.Single();
        Assert.That((entry.Type, entry.VerSize, entry.ClientAddress, entry.VirtualAddress, entry.DestinationAddress), Is.EqualTo((1, 72, "2001:2::1", "2001:2::100", "2001:2::11")));
    }

    [Test]
    public void A_message_fills_up_to_sync_maxlen()
    {
        var writer = new SyncMessageWriter(0);
        int appended = 0;
        while (writer.TryAppend(Tcp((ushort)(1000 + appended))))
        {
            appended++;
        }
        Assert.That(appended, Is.EqualTo((1472 - 8) / 36), "40 IPv4 entries in 1472 bytes");
        Assert.That(writer.Message.Length, Is.LessThanOrEqualTo(1472));
        writer.Reset();
        Assert.That((writer.Count, writer.Message.Length), Is.EqualTo((0, 8)));
    }

    [Test]
    public void The_reader_takes_back_what_the_writer_wrote_with_the_flags_a_backup_keeps()
    {
        var writer = new SyncMessageWriter(3);
        SyncEntry template = new(6, SyncConnectionFlags.Template | (SyncConnectionFlags)3, 0, Client, 0, Vip, 80, Server, 80, 0, 360);
        writer.TryAppend(Tcp(40000, flags: (SyncConnectionFlags)3 | SyncConnectionFlags.Inactive | SyncConnectionFlags.OnePacket));
        writer.TryAppend(template);
        var entries = new List<SyncEntry>();
        long[] drops = new long[8];
        SyncReadResult result = SyncMessageReader.Read(writer.Message, 3, entries, drops);
        Assert.That(result, Is.EqualTo(new SyncReadResult(SyncMessageOutcome.Read, 2, 0, null)));
        Assert.That(entries[0].Flags, Is.EqualTo((SyncConnectionFlags)3 | SyncConnectionFlags.Inactive | SyncConnectionFlags.Sync), "ONE_PACKET is not a backup's");
        Assert.That(entries[0] with { Flags = 0 }, Is.EqualTo(Tcp(40000) with { Flags = 0 }));
        Assert.That(entries[1].IsTemplate, Is.True);
    }

    private static SyncReadResult ReadOne(byte[] message, byte syncId, out long[] drops, out List<SyncEntry> entries)
    {
        drops = new long[8];
        entries = [];
        return SyncMessageReader.Read(message, syncId, entries, drops);
    }

    private static byte[] TwoEntries()
    {
        var writer = new SyncMessageWriter(5);
        writer.TryAppend(Tcp(1));
        writer.TryAppend(Tcp(2));
        return writer.Message.ToArray();
    }

    [Test]
    public void Hostile_or_foreign_messages_are_refused_whole_with_a_named_outcome()
    {
        byte[] good = TwoEntries();
        Assert.That(ReadOne(good[..3], 0, out _, out _).Outcome, Is.EqualTo(SyncMessageOutcome.TooShort));
        byte[] lying = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(lying.AsSpan(2), 200);
        Assert.That(ReadOne(lying, 0, out _, out _).Outcome, Is.EqualTo(SyncMessageOutcome.SizeMismatch), "a size that lies");
        Assert.That(ReadOne(good, 6, out _, out _).Outcome, Is.EqualTo(SyncMessageOutcome.OtherSyncId));
        Assert.That(ReadOne(good, 0, out _, out List<SyncEntry> any).EntriesRead, Is.EqualTo(2), "syncid 0 takes every syncid");
        Assert.That(any, Has.Count.EqualTo(2));
        byte[] version2 = (byte[])good.Clone();
        version2[5] = 2;
        Assert.That(ReadOne(version2, 0, out _, out _).Outcome, Is.EqualTo(SyncMessageOutcome.NotVersion1));
        byte[] reserved = (byte[])good.Clone();
        reserved[0] = 1;
        Assert.That(ReadOne(reserved, 0, out _, out _).Outcome, Is.EqualTo(SyncMessageOutcome.NotVersion1), "a version 0 header");
    }

    [Test]
    public void A_count_that_promises_more_entries_than_the_message_holds_drops_the_rest()
    {
        byte[] message = TwoEntries();
        message[4] = 3;
        SyncReadResult result = ReadOne(message, 0, out long[] drops, out List<SyncEntry> entries);
        Assert.That((result.EntriesRead, result.RestDropped), Is.EqualTo((2, (SyncEntryDrop?)SyncEntryDrop.Truncated)));
        Assert.That(drops[(int)SyncEntryDrop.Truncated], Is.EqualTo(1));
        Assert.That(entries, Has.Count.EqualTo(2));
    }

    [TestCase(2, 0x10, 0x24, SyncEntryDrop.UnknownEntryVersion, TestName = "an entry version other than 0")]
    [TestCase(0, 2, -1, SyncEntryDrop.UnknownType, TestName = "an unknown entry type")]
    [TestCase(2, 0, 0x30, SyncEntryDrop.Truncated, TestName = "an entry size beyond the message")]
    [TestCase(2, 0, 0x10, SyncEntryDrop.Truncated, TestName = "an entry size below the fixed part")]
    public void A_malformed_first_entry_drops_the_whole_rest(int offset, int high, int low, SyncEntryDrop expected)
    {
        byte[] message = TwoEntries();
        message[8 + offset] = (byte)high;
        if (low >= 0)
        {
            message[8 + offset + 1] = (byte)low;
        }
        SyncReadResult result = ReadOne(message, 0, out long[] drops, out List<SyncEntry> entries);
        Assert.That((result.Outcome, result.EntriesRead, result.RestDropped), Is.EqualTo((SyncMessageOutcome.Read, 0, (SyncEntryDrop?)expected)));
        Assert.That(drops[(int)expected], Is.EqualTo(1));
        Assert.That(entries, Is.Empty);
    }

    /// <summary>A message of one IPv4 entry followed by the given option bytes (sizes set to fit).</summary>
    private static byte[] WithOption(params byte[] option)
    {
        var writer = new SyncMessageWriter(0);
        writer.TryAppend(Tcp(1));
        byte[] entry = [.. writer.Message[8..], .. option];
        BinaryPrimitives.WriteUInt16BigEndian(entry.AsSpan(2), (ushort)entry.Length);
        byte[] message = [.. writer.Message[..8], .. entry];
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), (ushort)message.Length);
        return message;
    }

    [Test]
    public void Options_unknown_optional_ones_are_passed_over_unknown_mandatory_ones_skip_the_entry_malformed_ones_drop_it()
    {
        Assert.That(ReadOne(WithOption(0x40 | 9, 2, 0xAA, 0xBB), 0, out _, out _).EntriesRead, Is.EqualTo(1), "optional (0x40): passed over");
        SyncReadResult mandatory = ReadOne(WithOption(9, 2, 0xAA, 0xBB), 0, out long[] drops, out _);
        Assert.That((mandatory.EntriesRead, mandatory.EntriesSkipped, drops[(int)SyncEntryDrop.UnknownMandatoryOption]), Is.EqualTo((0, 1, 1L)));
        Assert.That(ReadOne(WithOption(0x40 | 9, 0), 0, out _, out _).RestDropped, Is.EqualTo(SyncEntryDrop.MalformedOption), "length 0");
        Assert.That(ReadOne(WithOption(1, 4, 0, 0, 0, 0), 0, out _, out _).RestDropped, Is.EqualTo(SyncEntryDrop.MalformedOption), "SEQ_DATA not 24 bytes");
        Assert.That(ReadOne(WithOption(3, 3, (byte)'s', (byte)'i', (byte)'p'), 0, out drops, out _).EntriesSkipped, Is.EqualTo(1));
        Assert.That(drops[(int)SyncEntryDrop.PersistenceEngine], Is.EqualTo(1), "a persistence engine udr does not have");
    }

    [Test]
    public void Connections_of_other_protocols_or_impossible_states_are_skipped_and_the_rest_is_read()
    {
        var writer = new SyncMessageWriter(0);
        writer.TryAppend(Tcp(1) with { Protocol = 132 });
        writer.TryAppend(Tcp(2, state: 11));
        writer.TryAppend(new SyncEntry(17, 0, 1, Client, 3, Vip, 53, Server, 53, 0, 300));
        writer.TryAppend(Tcp(4, state: 10));
        SyncReadResult result = ReadOne(writer.Message.ToArray(), 0, out long[] drops, out List<SyncEntry> entries);
        Assert.That((result.EntriesRead, result.EntriesSkipped), Is.EqualTo((1, 3)));
        Assert.That(entries.Single().ClientPort, Is.EqualTo(4));
        Assert.That((drops[(int)SyncEntryDrop.UnsupportedProtocol], drops[(int)SyncEntryDrop.InvalidState]), Is.EqualTo((1L, 2L)));
    }

    [Test]
    public void Random_bytes_never_throw()
    {
        var random = new Random(20261206);
        var entries = new List<SyncEntry>();
        long[] drops = new long[8];
        byte[] good = TwoEntries();
        for (int i = 0; i < 20000; i++)
        {
            byte[] message = (byte[])good.Clone();
            for (int flips = random.Next(1, 6); flips > 0; flips--)
            {
                message[random.Next(message.Length)] = (byte)random.Next(256);
            }
            Assert.DoesNotThrow(() => SyncMessageReader.Read(message, 0, entries, drops));
            Assert.DoesNotThrow(() => SyncMessageReader.Read(message.AsSpan(0, random.Next(message.Length)), 0, entries, drops));
        }
    }
}
