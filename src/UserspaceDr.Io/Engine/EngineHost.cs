using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Stats;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Engine;

/// <summary>How often an <see cref="EngineHost"/> sweeps its connection table, and how much of it per sweep.</summary>
/// <param name="IntervalMs">Time between sweeps (0: every call).</param>
/// <param name="Budget">Slots looked at per sweep; null: a twentieth of the table, so a full pass takes about 20 sweeps.</param>
public sealed record ExpiryPolicy(int IntervalMs, int? Budget = null)
{
    /// <summary>The live workers': a full sweep about every two seconds, however often the loop turns (a sweep step reads megabytes).</summary>
    public static ExpiryPolicy Live { get; } = new(100);
}

/// <summary>
/// The engine as every backend drives it (AF_PACKET rings, libpcap, capture files): one <see cref="ForwardingEngine"/>
/// with its own connection table, the snapshot it takes from <see cref="DataPlaneState"/> between batches, the
/// housekeeping it runs between batches (expiry, `ipvsadm -L -c` copies), and the verdict → output mapping through a
/// backend's <see cref="IFrameSink"/>. A backend keeps only its transport: where frames come from and how they leave.
/// Used by one thread at a time (a worker's, or several readers under one lock).
/// </summary>
public sealed class EngineHost
{
    private readonly DataPlaneState _state;
    private readonly int _expiryIntervalMs;
    private readonly int _expiryBudget;
    private long _nextExpiry = long.MinValue;
    private bool _ipv6TableBacked;

    public EngineHost(DataPlaneState state, EngineOptions options, int maxConnections, ExpiryPolicy expiry)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(expiry);
        _state = state;
        var table = new ConnectionTable<uint>(maxConnections);
        BackWithHugePages(table.SlotMemory);
        Engine = new ForwardingEngine(options, table);
        _expiryIntervalMs = expiry.IntervalMs;
        _expiryBudget = expiry.Budget ?? Math.Max(1024, table.SlotCount / 20);
        _state.ApplyTo(Engine);
    }

    public ForwardingEngine Engine { get; }

    public WorkerCounters Counters => Engine.Counters;

    /// <summary>Connections the table holds now.</summary>
    public int Connections => Engine.Connections.Count + (Engine.Ipv6Connections?.Count ?? 0);

    public int ConnectionCapacity => Engine.Connections.Capacity;

    /// <summary>Where another thread asks for a copy of the connections (answered in <see cref="Housekeeping"/>).</summary>
    public ConnectionSnapshotSlot Snapshots { get; } = new();

    /// <summary>Where the sync receiver leaves connections a master synced for this worker (applied between batches).</summary>
    public SyncInbox SyncInbox { get; } = new();

    /// <summary>Before a batch: the engine takes the snapshot in force (rules, neighbours, timeouts), whole.</summary>
    public void BeginBatch()
    {
        _state.ApplyTo(Engine);
        if (!_ipv6TableBacked && Engine.Ipv6Connections is { } ipv6)
        {
            BackWithHugePages(ipv6.SlotMemory); // made by the snapshot that brought the first IPv6 VIP, before any frame
            _ipv6TableBacked = true;
        }
    }

    /// <summary>
    /// The connection table in transparent huge pages: a cold lookup among a million flows then pays no page walk
    /// (bench/README.md: the established frame 10–13% faster at 1M flows). Advice only: refused, the table still works.
    /// </summary>
    private static void BackWithHugePages((nint Address, long Length) memory) => _ = HugePages.Back(memory.Address, memory.Length);

    /// <summary>
    /// How far ahead in a batch a worker calls <see cref="Prefetch"/>: with a million flows each lookup is a cold miss
    /// (~250 ns on the bench machine), and issuing it 8 frames early overlaps the misses (bench/README.md: 426 → 198 ns
    /// per established frame; 8 measured best of 4, 8 and 16).
    /// </summary>
    public const int PrefetchDistance = 8;

    /// <summary>The flow key and service of a frame processed a few frames later (<see cref="ForwardingEngine.Prefetch"/>).</summary>
    public FlowHint Prefetch(ReadOnlySpan<byte> frame) => Engine.Prefetch(frame);

    /// <summary>
    /// Runs one frame through the engine and hands what comes out to <paramref name="sink"/>: the rewritten frame (and
    /// a trailing fragment) on <see cref="Verdict.Transmit"/>, the reply on <see cref="Verdict.Reply"/>, nothing
    /// otherwise. <paramref name="reply"/> must hold <see cref="ReplyBuilder.MaxReplyLength"/> bytes.
    /// </summary>
    public FrameReason Forward<TSink>(ref FrameBuffer packet, long now, Span<byte> reply, ref TSink sink)
        where TSink : struct, IFrameSink
    {
        FrameReason reason = Engine.ProcessWithReason(ref packet, now, reply, out int replyLength);
        switch (FrameReasons.VerdictOf(reason))
        {
            case Verdict.Transmit when reason == FrameReason.DeliveredLocally:
                // A real server on the balancer itself: into its own stack, the same way from every backend.
                _state.LocalDelivery?.Deliver(ref packet);
                break;
            case Verdict.Transmit:
                sink.Transmit(ref packet);
                break;
            case Verdict.Reply:
                // Replies leave by packet.Link: the ingress link, except a frag-needed relayed to a client on another one.
                sink.Reply(reply[..replyLength], packet.Link);
                break;
            default:
                break;
        }
        return reason;
    }

    /// <summary>Between batches: an expiry sweep when one is due, a pending `-L -c` copy, synced connections waiting.</summary>
    public void Housekeeping(long now)
    {
        if (now >= _nextExpiry)
        {
            Engine.ExpireConnections(now, _expiryBudget);
            _nextExpiry = now + _expiryIntervalMs;
        }
        Snapshots.Serve(Engine.Connections, Engine.Ipv6Connections); // ipvsadm -L -c: copied between batches, never per frame
        SyncInbox.Serve(Engine, now); // a backup's synced connections, likewise
    }

    /// <summary>The backend's loop has ended: nothing answers a `-L -c` request from here on.</summary>
    public void Stop() => Snapshots.Close();

    /// <summary>Forgets every connection (releases the real servers' active/inactive counts).</summary>
    public void Clear()
    {
        Engine.Connections.Clear();
        Engine.Ipv6Connections?.Clear();
    }
}
