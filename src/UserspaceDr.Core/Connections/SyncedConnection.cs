using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Connections;

/// <summary>
/// A connection (or persistence template) as a master balancer's sync message describes it, in the data plane's terms:
/// what <see cref="ConnectionTracker{TAddress}.ApplySync"/> enters in a backup's table.
/// </summary>
public readonly record struct SyncedConnection(
    byte Protocol,
    bool IsTemplate,
    bool IsInactive,
    ushort State,
    InetAddress ClientAddress,
    ushort ClientPort,
    InetAddress VirtualAddress,
    ushort VirtualPort,
    InetAddress DestAddress,
    ushort DestPort,
    uint TimeoutSeconds)
{
    /// <summary>The forwarding method (IPVS's FWD bits: masquerade 0, tunnel 2, route 3); what a master sends.</summary>
    public Services.ForwardingMethod Method { get; init; }

    /// <summary>The firewall mark of the connection's service (0: an address/port service): a backup finds the service by it.</summary>
    public uint FirewallMark { get; init; }
}

/// <summary>What a backup did with one synced connection (ip_vs_proc_conn), each counted under its name.</summary>
public enum SyncApplyOutcome
{
    /// <summary>A new entry, bound to its real server.</summary>
    Created,

    /// <summary>The existing entry updated: state, timer, active/inactive.</summary>
    Updated,

    /// <summary>The entry was bound to another real server: expired and made anew on the sent one.</summary>
    Replaced,

    /// <summary>An inactive update for a connection already replaced on another server: ignored, as the kernel does.</summary>
    Stale,

    /// <summary>No service here for its protocol, VIP and port: skipped.</summary>
    UnknownService,

    /// <summary>Its real server is not in the service here: skipped (the kernel keeps it unbound; udr cannot forward it).</summary>
    UnknownServer,

    /// <summary>The table is full: skipped, as a new connection would be refused.</summary>
    TableFull,

    /// <summary>A TCP state IPVS does not have: skipped.</summary>
    InvalidState,
}

/// <summary>
/// A master's sync queue for one worker (single producer: the worker; single consumer: the sync sender): the worker
/// posts the connections <see cref="ConnectionTracker{TAddress}.CountForSync"/> picks, without locks or allocation; the sender
/// drains them into messages. Bounded: when the sender falls behind, posts are counted as overflows and dropped (the
/// next sync of the same connection carries its state again).
/// </summary>
public sealed class SyncOutbox
{
    /// <summary>Entries the ring holds (a power of two).</summary>
    public const int Capacity = 4096;

    /// <summary>sync_threshold's defaults: the 3rd packet, and every 50th after.</summary>
    public const int Threshold = 3;
    public const int Period = 50;

    private readonly SyncedConnection[] _ring = new SyncedConnection[Capacity];
    private long _head;
    private long _tail;
    private long _overflows;
    private volatile bool _enabled;

    /// <summary>This balancer is a sync master: its workers count packets and post connections.</summary>
    public bool Enabled
    {
        get => _enabled;
        set => _enabled = value;
    }

    /// <summary>Posts dropped because the ring was full.</summary>
    public long Overflows => Volatile.Read(ref _overflows);

    /// <summary>Worker side.</summary>
    public void Post(in SyncedConnection connection)
    {
        long tail = _tail;
        if (tail - Volatile.Read(ref _head) >= Capacity)
        {
            Volatile.Write(ref _overflows, _overflows + 1);
            return;
        }
        _ring[tail & (Capacity - 1)] = connection;
        Volatile.Write(ref _tail, tail + 1);
    }

    /// <summary>Sender side: moves what is waiting into <paramref name="into"/>; returns how many.</summary>
    public int Drain(List<SyncedConnection> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        long head = _head;
        long tail = Volatile.Read(ref _tail);
        for (long i = head; i < tail; i++)
        {
            into.Add(_ring[i & (Capacity - 1)]);
        }
        Volatile.Write(ref _head, tail);
        return (int)(tail - head);
    }
}
