using System.Buffers.Binary;
using System.Collections.Immutable;
using System.IO.Hashing;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>What a scheduler may look at: the new connection's addresses (host order).</summary>
public readonly record struct SchedulingKey(uint ClientAddress, ushort ClientPort, uint VirtualAddress, ushort VirtualPort);

/// <summary>
/// One IPVS scheduler bound to one service's destination list (kernel order, newest first). A new instance is
/// built whenever the list or a weight changes (the kernel's update_service); <see cref="Pick"/> runs on every
/// worker at once and must be lock-free. It is called once per new connection, never per frame.
/// </summary>
public abstract class Scheduler
{
    protected Scheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags)
    {
        Destinations = destinations;
        Flags = flags;
    }

    public ImmutableArray<RealServer> Destinations { get; }
    public SchedulerFlags Flags { get; }

    /// <summary>The chosen real server, or null when none is available (IPVS then answers port-unreachable).</summary>
    public abstract RealServer? Pick(in SchedulingKey key);

    /// <summary>
    /// For a scheduler that picks from a lookup table by hash (mh, sh): a digest of that table, slot by slot (each
    /// slot's server address and port). The table depends only on the servers, their weights, their order and the
    /// scheduler's flags, so balancers with the same rules have the same digest and pick the same server for a flow
    /// without sharing state (the ECMP scale-out); a balancer whose digest differs would split flows, and the log and
    /// the metrics show it. Null for the schedulers that keep no such table.
    /// </summary>
    public virtual ulong? TableDigest => null;

    /// <summary>XxHash3 of the table (per slot the server's family, address (16 bytes) and port, or zeros for none) and the flags.</summary>
    protected static ulong DigestOf(ReadOnlySpan<RealServer?> table, SchedulerFlags flags)
    {
        const int SlotBytes = 1 + 16 + 2;
        var hash = new XxHash3();
        Span<byte> slot = stackalloc byte[SlotBytes];
        foreach (RealServer? server in table)
        {
            slot.Clear();
            if (server is not null)
            {
                slot[0] = (byte)(server.Address.IsIPv4 ? 4 : 6);
                BinaryPrimitives.WriteUInt128BigEndian(slot[1..], server.Address.IsIPv4 ? server.Address.IPv4 : server.Address.IPv6);
                BinaryPrimitives.WriteUInt16BigEndian(slot[17..], server.Port);
            }
            hash.Append(slot);
        }
        BinaryPrimitives.WriteUInt16BigEndian(slot, (ushort)flags); // flag-2 (hash the port too) changes every pick
        hash.Append(slot[..2]);
        return hash.GetCurrentHashAsUInt64();
    }

    /// <summary>
    /// Whether a server may take a new connection: weight 0 means quiesced and IP_VS_DEST_F_OVERLOAD means the upper
    /// threshold was reached. Every scheduler here applies this (the kernel's is_unavailable in ip_vs_sh.c/ip_vs_mh.c,
    /// and the same two tests written out inline in the others).
    /// </summary>
    internal static bool IsAvailable(RealServer destination) => destination.Weight > 0 && !destination.Overloaded;
}
