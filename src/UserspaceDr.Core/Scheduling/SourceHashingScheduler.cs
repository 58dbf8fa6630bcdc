using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>
/// sh (ip_vs_sh.c): a 256-bucket table keyed by the client address (and with sh-port, the client port). The table is
/// filled once per instance (ip_vs_sh_reassign): walking the list cyclically, each server takes weight consecutive
/// buckets (a weight-0 server still takes one) until all 256 are filled. A bucket whose server is unavailable gives
/// no server, unless sh-fallback probes on from it.
/// </summary>
public sealed class SourceHashingScheduler : Scheduler
{
    /// <summary>CONFIG_IP_VS_SH_TAB_BITS default.</summary>
    internal const int TableBits = 8;
    internal const int TableSize = 1 << TableBits;
    private const int TableMask = TableSize - 1;

    /// <summary>GOLDEN_RATIO_32 of include/linux/hash.h, the multiplier of hash_32.</summary>
    private const uint GoldenRatio32 = 0x61C88647;

    /// <summary>IP_VS_SVC_F_SCHED_SH_FALLBACK (flag-1).</summary>
    private const SchedulerFlags FallbackFlag = SchedulerFlags.Flag1;

    /// <summary>IP_VS_SVC_F_SCHED_SH_PORT (flag-2).</summary>
    private const SchedulerFlags PortFlag = SchedulerFlags.Flag2;

    private readonly RealServer?[] _buckets = new RealServer?[TableSize];

    public SourceHashingScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags) : base(destinations, flags)
    {
        if (destinations.IsEmpty)
        {
            TableDigest = DigestOf(_buckets, flags);
            return;
        }
        int index = 0;
        int taken = 0;
        for (int bucket = 0; bucket < TableSize; bucket++)
        {
            RealServer destination = destinations[index];
            _buckets[bucket] = destination;
            // Move on once the server has its weight's worth of buckets; "++count >= weight" also moves on after one
            // bucket for weight 0.
            if (++taken >= destination.Weight)
            {
                index = (index + 1) % destinations.Length;
                taken = 0;
            }
        }
        TableDigest = DigestOf(_buckets, flags);
    }

    public override ulong? TableDigest { get; }

    public override RealServer? Pick(in SchedulingKey key)
    {
        ushort port = (Flags & PortFlag) != 0 ? key.ClientPort : (ushort)0;
        uint hashInput = unchecked(port + key.ClientAddress);
        int home = Bucket(hashInput, 0);
        RealServer? destination = _buckets[home];
        if ((Flags & FallbackFlag) == 0)
        {
            return destination is not null && IsAvailable(destination) ? destination : null;
        }

        // ip_vs_sh_get_fallback: probe (offset + home) mod 256 as an extra term of the bucket number.
        if (destination is null)
        {
            return null;
        }
        if (IsAvailable(destination))
        {
            return destination;
        }
        for (int offset = 0; offset < TableSize; offset++)
        {
            int rotatedOffset = (offset + home) % TableSize;
            destination = _buckets[Bucket(hashInput, rotatedOffset)];
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

    /// <summary>The bucket reference table for tests: which server each bucket was given.</summary>
    internal ReadOnlySpan<RealServer?> Buckets => _buckets;

    /// <summary>ip_vs_sh_hashkey: (offset + hash_32(ntohs(port) + ntohl(addr), 8)) &amp; 255.</summary>
    internal static int Bucket(uint hashInput, int offset) =>
        (offset + (int)(unchecked(hashInput * GoldenRatio32) >> (32 - TableBits))) & TableMask;
}
