using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>Per-engine settings. The sysctl-like knobs carry IPVS's names and defaults.</summary>
public sealed record EngineOptions
{
    /// <summary>The balancer interface's MAC: the source of every frame udr sends, and "frames for this host".</summary>
    public required MacAddress LocalMac { get; init; }

    /// <summary>
    /// The interfaces udr serves, indexed by <see cref="FrameBuffer.Link"/>. Empty means one link: <see cref="LocalMac"/>
    /// with the default MTU.
    /// </summary>
    public IReadOnlyList<EngineLink> Links { get; init; } = [];

    /// <summary>
    /// The link (an index into <see cref="Links"/>) that stands for the balancer's own stack: a real server whose next
    /// hop is on it is on the balancer itself, and its frames go there unchanged (<see cref="FrameReason.DeliveredLocally"/>).
    /// -1: none (no local real servers).
    /// </summary>
    public int LocalLink { get; init; } = -1;

    /// <summary>Answer ARP for VIPs (when the kernel does not own them, e.g. offline replay). Default: leave it to the kernel.</summary>
    public bool AnswerArpForVirtualAddresses { get; init; }

    /// <summary>sloppy_tcp: schedule a new connection on any non-RST packet, not only on SYN.</summary>
    public bool SloppyTcp { get; init; }

    /// <summary>conn_reuse_mode (default 1): a SYN that hits a TIME_WAIT/CLOSE entry is scheduled anew; bit 2 adds FIN_WAIT on DR/TUN.</summary>
    public int ConnectionReuseMode { get; init; } = 1;

    /// <summary>expire_nodest_conn: a packet for a connection whose server was deleted expires it (1) instead of being dropped (0).</summary>
    public bool ExpireNoDestinationConnection { get; init; }

    /// <summary>expire_quiescent_template: a persistence template pointing at a weight-0 server is not reused.</summary>
    public bool ExpireQuiescentTemplate { get; init; }

    public Timeouts Timeouts { get; init; } = Timeouts.Default;

    /// <summary>
    /// drop_entry: when the connection table is full, a new connection takes the place of a half-open TCP one (SYN_RECV,
    /// or a persistence template only such connections made) instead of being refused. IPVS drops such entries at random
    /// once a second while memory is short (values 1-3); udr's table is bounded, so it acts exactly when the table is
    /// full. On by default, where IPVS's is 0: without it a SYN flood fills the table and refuses every new client.
    /// </summary>
    public bool DropEntry { get; init; } = true;

    /// <summary>
    /// secure_tcp: 0 off; 1 or 2, while the table is fuller than <see cref="DefenseThresholdPercent"/>; 3 always. While
    /// on, a new TCP connection's SYN_RECV lasts <see cref="Connections.Timeouts.SynRecvDefenseSeconds"/> instead of 60 s,
    /// so the half-open entries of a flood leave within seconds of its end (IPVS's secure_tcp switches to its stricter
    /// state table at the same moment, chosen by amemthresh).
    /// </summary>
    public int SecureTcp { get; init; } = 1;

    /// <summary>How full the table is (in percent of its capacity) when secure_tcp 1/2 turns on: udr's amemthresh.</summary>
    public int DefenseThresholdPercent { get; init; } = 75;
}
