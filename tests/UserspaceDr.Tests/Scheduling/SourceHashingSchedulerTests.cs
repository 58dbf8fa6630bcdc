using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;
using static UserspaceDr.Tests.Scheduling.SchedulingFixtures;

namespace UserspaceDr.Tests.Scheduling;

public class SourceHashingSchedulerTests
{
    /// <summary>hash_32(value, 8) of include/linux/hash.h, written out independently of the scheduler.</summary>
    private static int HomeBucket(uint value) => (int)((value * 0x61C88647u) >> 24);

    [Test]
    public void Hash_is_the_top_byte_of_value_times_golden_ratio()
    {
        // 1 * 0x61C88647 -> top byte 0x61. 198.18.0.1 = 0xC6120001: 0xC6120000 * 0x61C88647 mod 2^32 = 0x5AFE0000
        // (the low 16 bits of the address are zero), plus 1 * 0x61C88647 = 0xBCC68647 -> 0xBC.
        Assert.That(SourceHashingScheduler.Bucket(1, 0), Is.EqualTo(0x61));
        Assert.That(SourceHashingScheduler.Bucket(0, 0), Is.Zero);
        Assert.That(SourceHashingScheduler.Bucket(0xC6120001, 0), Is.EqualTo(0xBC));
        Assert.That(SourceHashingScheduler.Bucket(1, 200), Is.EqualTo((0x61 + 200) & 255));
    }

    [Test]
    public void Buckets_are_filled_cyclically_weight_at_a_time_and_weight_zero_still_gets_one()
    {
        RealServer a = Server(1, 3), b = Server(2, 1), c = Server(3, 0);
        var sh = new SourceHashingScheduler(List(a, b, c), SchedulerFlags.None);
        RealServer?[] expectedCycle = [a, a, a, b, c];
        for (int bucket = 0; bucket < SourceHashingScheduler.TableSize; bucket++)
        {
            Assert.That(sh.Buckets[bucket], Is.SameAs(expectedCycle[bucket % 5]), $"bucket {bucket}");
        }
    }

    [Test]
    public void Bucket_share_follows_weights()
    {
        RealServer a = Server(1, 3), b = Server(2, 1);
        var sh = new SourceHashingScheduler(List(a, b), SchedulerFlags.None);
        int aBuckets = 0;
        foreach (RealServer? server in sh.Buckets)
        {
            aBuckets += ReferenceEquals(server, a) ? 1 : 0;
        }
        Assert.That(aBuckets, Is.EqualTo(192));

        int aPicks = 0;
        const int clients = 20_000;
        for (uint client = 0; client < clients; client++)
        {
            aPicks += ReferenceEquals(sh.Pick(Key(0x0B000000u + client)), a) ? 1 : 0;
        }
        Assert.That(aPicks / (double)clients, Is.EqualTo(0.75).Within(0.03));
    }

    [Test]
    public void Client_address_selects_the_bucket_and_port_only_with_sh_port()
    {
        // Two servers of weight 1: even buckets hold a, odd ones b.
        RealServer a = Server(1, 1), b = Server(2, 1);
        var plain = new SourceHashingScheduler(List(a, b), SchedulerFlags.None);
        var withPort = new SourceHashingScheduler(List(a, b), SchedulerFlags.Flag2);
        for (uint client = 0; client < 2000; client++)
        {
            uint address = 0xC0A80000u + client * 13;
            ushort port = (ushort)(1024 + client * 31);
            RealServer expectedPlain = HomeBucket(address) % 2 == 0 ? a : b;
            RealServer expectedWithPort = HomeBucket(address + port) % 2 == 0 ? a : b;
            Assert.That(plain.Pick(Key(address, port)), Is.SameAs(expectedPlain));
            Assert.That(plain.Pick(Key(address, 7)), Is.SameAs(expectedPlain), "port must not matter without sh-port");
            Assert.That(withPort.Pick(Key(address, port)), Is.SameAs(expectedWithPort));
        }
    }

    [Test]
    public void Same_client_gets_the_same_server_from_every_instance()
    {
        RealServer a = Server(1, 2), b = Server(2, 1), c = Server(3, 5);
        var first = new SourceHashingScheduler(List(a, b, c), SchedulerFlags.None);
        var second = new SourceHashingScheduler(List(a, b, c), SchedulerFlags.None);
        for (uint client = 0; client < 1000; client++)
        {
            uint address = 0x0B000000u + client * 101;
            Assert.That(second.Pick(Key(address)), Is.SameAs(first.Pick(Key(address))));
        }
    }

    [Test]
    public void Unavailable_home_bucket_gives_null_without_fallback_and_the_probed_server_with_it()
    {
        // Weights 1,1,1 over 256 buckets: bucket i holds server i mod 3. a is quiesced but keeps its buckets.
        RealServer a = Server(1, 0), b = Server(2, 1), c = Server(3, 1);
        RealServer[] byBucket = [a, b, c];
        var plain = new SourceHashingScheduler(List(a, b, c), SchedulerFlags.None);
        var fallback = new SourceHashingScheduler(List(a, b, c), SchedulerFlags.Flag1);
        int probed = 0;
        for (uint client = 0; client < 3000; client++)
        {
            uint address = 0x0B000000u + client * 7;
            int home = HomeBucket(address);
            RealServer homeServer = byBucket[home % 3];
            if (!ReferenceEquals(homeServer, a))
            {
                Assert.That(plain.Pick(Key(address)), Is.SameAs(homeServer));
                Assert.That(fallback.Pick(Key(address)), Is.SameAs(homeServer));
                continue;
            }
            // ip_vs_sh_get_fallback: offset o probes bucket ((o + home) mod 256 + hash_32) & 255 = (o + 2 home) & 255.
            RealServer expected = a;
            for (int offset = 0; ReferenceEquals(expected, a); offset++)
            {
                expected = byBucket[((offset + 2 * home) & 255) % 3];
            }
            Assert.That(plain.Pick(Key(address)), Is.Null);
            Assert.That(fallback.Pick(Key(address)), Is.SameAs(expected));
            probed++;
        }
        Assert.That(probed, Is.GreaterThan(500));
    }
}
