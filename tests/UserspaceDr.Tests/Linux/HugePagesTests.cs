using UserspaceDr.Core.Connections;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.Linux;

/// <summary>The connection table's huge-page advice: its memory, aligned to huge pages, is marked whole, and the table still works.</summary>
public class HugePagesTests
{
    [Test]
    public void A_tables_aligned_memory_is_advised_and_the_table_still_works()
    {
        var table = new ConnectionTable<uint>(200_000); // 2^19 slots of 64 bytes: 32 MiB
        (nint address, long length) = table.SlotMemory;
        long advised = HugePages.Back(address, length);
        Assume.That(advised, Is.Not.EqualTo(-22), "a kernel without transparent huge pages refuses the advice (EINVAL)");
        Assert.Multiple(() =>
        {
            Assert.That(length, Is.EqualTo(table.SlotCount * 64L));
            Assert.That(advised, Is.EqualTo(length), "the table starts on a huge page and fills whole ones");
        });
        var key = new ConnectionKey<uint>(6, 0xC6120001, 40000, 0xC6120064, 80);
        int slot = table.TryInsert(key);
        Assert.That(slot, Is.Not.EqualTo(-1));
        Assert.That(table.Find(key), Is.EqualTo(slot));
    }

    [Test]
    public void A_range_without_a_whole_aligned_huge_page_is_left_alone() =>
        Assert.That(HugePages.Back((nint)(HugePages.Size + 4096), HugePages.Size), Is.Zero);
}
