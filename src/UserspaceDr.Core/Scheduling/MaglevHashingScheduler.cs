using System.Collections.Immutable;
using System.Numerics;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>
/// mh (ip_vs_mh.c, Maglev hashing): a 4093-slot lookup table keyed by the client address (and with mh-port, the
/// client port). Each server has a preference order of slots (offset, then steps of skip, both hashed from its
/// address and port); servers take turns in list order claiming their next free preferred slots, turns in proportion
/// to last_weight, so a quiesced server keeps its slots and removing a server only moves the flows it had.
/// A slot whose server is unavailable gives no server, unless mh-fallback probes on from it.
/// </summary>
public sealed class MaglevHashingScheduler : Scheduler
{
    /// <summary>primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] with the default index 12.</summary>
    internal const int TableSize = 4093;

    /// <summary>IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2: weight/gcd is shifted down to at most this many bits,
    /// so no server gets a huge run of turns.</summary>
    private const int TurnBits = 6;

    /// <summary>generate_hash_secret: both words of hash1 (slot offsets and lookups).</summary>
    internal const ulong OffsetHashKey = 2654435761;

    /// <summary>generate_hash_secret: both words of hash2 (slot skips).</summary>
    internal const ulong SkipHashKey = 2654446892;

    /// <summary>IP_VS_SVC_F_SCHED_MH_FALLBACK (flag-1).</summary>
    private const SchedulerFlags FallbackFlag = SchedulerFlags.Flag1;

    /// <summary>IP_VS_SVC_F_SCHED_MH_PORT (flag-2).</summary>
    private const SchedulerFlags PortFlag = SchedulerFlags.Flag2;

    private readonly RealServer?[] _lookup = new RealServer?[TableSize];

    /// <exception cref="ArgumentException">More servers than table slots (ip_vs_mh_reassign returns -EINVAL).</exception>
    public MaglevHashingScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
        if (destinations.Length > TableSize)
        {
            throw new ArgumentException($"The mh scheduler takes at most {TableSize} real servers.", nameof(destinations));
        }
        Populate(destinations);
        TableDigest = DigestOf(_lookup, flags);
    }

    public override ulong? TableDigest { get; }

    public override RealServer? Pick(in SchedulingKey key)
    {
        ushort port = (Flags & PortFlag) != 0 ? key.ClientPort : (ushort)0;
        uint home = Hash(port, key.ClientAddress, 0, OffsetHashKey) % TableSize;
        RealServer? destination = _lookup[home];
        if ((Flags & FallbackFlag) == 0)
        {
            return destination is not null && IsAvailable(destination) ? destination : null;
        }

        // ip_vs_mh_get_fallback: rehash with (offset + home) mod M as the offset term.
        if (destination is null)
        {
            return null;
        }
        if (IsAvailable(destination))
        {
            return destination;
        }
        for (uint offset = 0; offset < TableSize; offset++)
        {
            uint rotatedOffset = (offset + home) % TableSize;
            destination = _lookup[Hash(port, key.ClientAddress, rotatedOffset, OffsetHashKey) % TableSize];
            if (destination is null)
            {
                break;
            }
            if (IsAvailable(destination))
            {
                return destination;
            }
        }
        return null;
    }

    /// <summary>The lookup table for tests: which server each slot was given.</summary>
    internal ReadOnlySpan<RealServer?> Lookup => _lookup;

    /// <summary>ip_vs_mh_hashkey: hsiphash of the host-order u32 offset + ntohs(port) + ntohl(addr).</summary>
    internal static uint Hash(ushort port, uint address, uint offset, ulong key) =>
        SipHash.KernelHsiphash(unchecked(offset + port + address), key, key);

    /// <summary>ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight, ip_vs_mh_permutate and ip_vs_mh_populate.</summary>
    private void Populate(ImmutableArray<RealServer> destinations)
    {
        int count = destinations.Length;
        int[] lastWeights = new int[count];
        for (int i = 0; i < count; i++)
        {
            lastWeights[i] = destinations[i].LastWeight;
        }
        int divisor = WeightMath.GreatestCommonDivisorOfPositive(lastWeights);
        if (divisor < 1)
        {
            // No server ever had a weight: the table stays empty and every lookup finds nothing.
            return;
        }
        int shift = Math.Max(0, BitLength(WeightMath.MaxOrZero(lastWeights) / divisor) - TurnBits);

        int[] nextSlot = new int[count];
        int[] skip = new int[count];
        int[] turns = new int[count];
        for (int i = 0; i < count; i++)
        {
            RealServer destination = destinations[i];
            nextSlot[i] = (int)(Hash(destination.Port, destination.Address.Fold(), 0, OffsetHashKey) % TableSize);
            skip[i] = (int)(Hash(destination.Port, destination.Address.Fold(), 0, SkipHashKey) % (TableSize - 1)) + 1;
            int scaled = (lastWeights[i] / divisor) >> shift;
            // A server with a last weight too small to survive the shift still gets one turn; one that never had a
            // weight gets none.
            turns[i] = scaled != 0 ? scaled : (lastWeights[i] != 0 ? 1 : 0);
        }

        bool[] claimed = new bool[TableSize];
        int filled = 0;
        while (true)
        {
            for (int i = 0; i < count; i++)
            {
                for (int turn = 0; turn < turns[i]; turn++)
                {
                    int slot = nextSlot[i];
                    while (claimed[slot])
                    {
                        slot += skip[i];
                        if (slot >= TableSize)
                        {
                            slot -= TableSize;
                        }
                    }
                    nextSlot[i] = slot;
                    claimed[slot] = true;
                    _lookup[slot] = destinations[i];
                    if (++filled == TableSize)
                    {
                        return;
                    }
                }
            }
        }
    }

    /// <summary>The kernel's fls(): the 1-based index of the highest set bit, 0 for 0.</summary>
    private static int BitLength(int value) => 32 - BitOperations.LeadingZeroCount((uint)value);
}
