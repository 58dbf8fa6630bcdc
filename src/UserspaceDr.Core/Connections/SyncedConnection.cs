namespace UserspaceDr.Core.Connections;

/// <summary>
/// A connection (or persistence template) as a master balancer's sync message describes it, in the data plane's terms:
/// what <see cref="ConnectionTracker.ApplySync"/> enters in a backup's table.
/// </summary>
public readonly record struct SyncedConnection(
    byte Protocol,
    bool IsTemplate,
    bool IsInactive,
    ushort State,
    uint ClientAddress,
    ushort ClientPort,
    uint VirtualAddress,
    ushort VirtualPort,
    uint DestAddress,
    ushort DestPort,
    uint TimeoutSeconds);

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
