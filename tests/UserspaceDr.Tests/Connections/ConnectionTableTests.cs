using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Connections;

public class ConnectionTableTests
{
    private static ConnectionKey<uint> Key(int i) => new(6, 0xC6120000u + (uint)(i / 60000), (ushort)(1 + (i % 60000)), 0xC6120064u, 80);

    [Test]
    public void Entries_are_one_cache_line()
    {
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<Connection<uint>>(), Is.EqualTo(64));
    }

    [Test]
    public void Ipv6_entries_are_112_bytes()
    {
        // The README's memory figure for the IPv6 table (slots × this) rests on it.
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<Connection<UInt128>>(), Is.EqualTo(112));
    }

    [Test]
    public void Slots_start_on_a_cache_line_and_a_table_of_huge_page_size_on_a_huge_page()
    {
        // One entry per line: a cold IPv4 lookup waits on one line, not two.
        var small = new ConnectionTable<uint>(100);
        var ipv6 = new ConnectionTable<UInt128>(100);
        var large = new ConnectionTable<uint>(40_000); // 2^16 slots of 64 bytes: 4 MiB
        Assert.Multiple(() =>
        {
            Assert.That(small.SlotMemory.Address % 64, Is.EqualTo((nint)0));
            Assert.That(ipv6.SlotMemory.Address % 64, Is.EqualTo((nint)0));
            Assert.That(large.SlotMemory.Address % (2 << 20), Is.EqualTo((nint)0));
            Assert.That(large.SlotMemory.Length, Is.EqualTo(4L << 20));
        });
    }

    [Test]
    public void A_table_refused_at_construction_is_finalized_without_harm()
    {
        // The finalizer frees the native slots; for a table whose constructor threw there is nothing to free, and an
        // exception thrown by a finalizer would end the test process here.
        Assert.That(() => new ConnectionTable<uint>(0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.That(new ConnectionTable<uint>(10).Capacity, Is.EqualTo(10));
    }

    [Test]
    public void A_new_table_is_empty_in_every_slot()
    {
        var table = new ConnectionTable<uint>(40_000);
        Assert.Multiple(() =>
        {
            Assert.That(table.Snapshot(), Is.Empty);
            Assert.That(table.Find(Key(1)), Is.EqualTo(-1));
            Assert.That(() => table.At(table.SlotCount), Throws.InstanceOf<ArgumentOutOfRangeException>());
            Assert.That(() => table.At(-1), Throws.InstanceOf<ArgumentOutOfRangeException>());
        });
    }

    [Test]
    public void Insert_find_and_remove_under_heavy_collision_keep_every_other_entry_reachable()
    {
        var table = new ConnectionTable<uint>(5000, seed: 7);
        var random = new Random(3);
        var live = new HashSet<int>();
        for (int round = 0; round < 40_000; round++)
        {
            int i = random.Next(8000);
            int slot = table.Find(Key(i));
            if (live.Contains(i))
            {
                Assert.That(slot, Is.GreaterThanOrEqualTo(0));
                Assert.That(table.At(slot).Key, Is.EqualTo(Key(i)));
                table.Remove(slot);
                live.Remove(i);
            }
            else
            {
                Assert.That(slot, Is.EqualTo(-1));
                int inserted = table.TryInsert(Key(i));
                if (live.Count < 5000)
                {
                    Assert.That(inserted, Is.GreaterThanOrEqualTo(0));
                    live.Add(i);
                }
                else
                {
                    Assert.That(inserted, Is.EqualTo(-1), "at capacity");
                }
            }
        }
        Assert.That(table.Count, Is.EqualTo(live.Count));
        for (int i = 0; i < 8000; i++)
        {
            Assert.That(table.Find(Key(i)) >= 0, Is.EqualTo(live.Contains(i)), $"key {i}");
        }
    }

    [Test]
    public void Expiry_removes_due_entries_releases_counters_and_keeps_controlling_templates()
    {
        var dest = new RealServer(InetAddress.FromIPv4(0xC612000B), 80, ForwardingMethod.Route, 1);
        var table = new ConnectionTable<uint>(100, seed: 1);
        int template = table.TryInsert(new ConnectionKey<uint>(6, 0xC6120001, 0, 0xC6120064, 80, Template: true));
        table.At(template).Dest = dest;
        table.At(template).ExpiresAtMs = 1000;
        dest.BindConnection(active: false, template: true);
        int conn = table.TryInsert(Key(1));
        ref Connection<uint> c = ref table.At(conn);
        c.Dest = dest;
        c.Flags |= ConnectionFlags.Controlled | ConnectionFlags.Inactive;
        c.TemplateClientAddress = 0xC6120001;
        c.TemplateVirtualPort = 80;
        c.ExpiresAtMs = 5000;
        table.At(template).ControlCount = 1;
        dest.BindConnection(active: false, template: false);

        Assert.That(table.Expire(2000, budget: table.SlotCount), Is.Zero, "the template controls a connection: re-armed");
        Assert.That(table.Count, Is.EqualTo(2));
        Assert.That(table.Expire(5000, budget: table.SlotCount), Is.EqualTo(1));
        Assert.That(dest.InactiveConnections, Is.Zero);
        Assert.That(table.At(table.Find(new ConnectionKey<uint>(6, 0xC6120001, 0, 0xC6120064, 80, Template: true))).ControlCount, Is.Zero);
        Assert.That(table.Expire(2000 + 60_000, budget: table.SlotCount), Is.EqualTo(1));
        Assert.That(dest.PersistentConnections, Is.Zero);
        Assert.That(table.Count, Is.Zero);
    }
}
