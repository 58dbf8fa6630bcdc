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
}
