using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Node.Tunnel;

/// <summary>Which tunnel endpoint `udr node tunnel` runs.</summary>
public enum TunnelMode
{
    /// <summary>The kernel's when the ipip module is there and every VIP is IPv4, else the user-space one.</summary>
    Auto,

    /// <summary>The kernel's ipip device (tunl0): udr brings it up, sets the sysctls, and waits.</summary>
    Kernel,

    /// <summary>udr's own: raw sockets in (protocol 4 and 41, over IPv4 and IPv6; 47 for GRE) or a UDP socket (GUE), a TUN device out.</summary>
    User,
}

/// <summary>What `udr node tunnel` is asked to do.</summary>
public sealed record TunnelOptions(IReadOnlyList<InetAddress> Vips)
{
    /// <summary>The kernel's fallback ipip device, which takes every IP-in-IP packet addressed to the node.</summary>
    public const string KernelDefaultDevice = "tunl0";

    /// <summary>The TUN device the user-space endpoint creates (and that vanishes with it).</summary>
    public const string UserDefaultDevice = "udrtun0";

    public TunnelMode Mode { get; init; } = TunnelMode.Auto;

    /// <summary>Kernel mode: an existing ipip device (default tunl0). User mode: the TUN device to create (default udrtun0).</summary>
    public string? Device { get; init; }

    /// <summary>What the balancer wraps the packets in (its --tun-type): IP-in-IP, GUE to <see cref="GuePort"/>, or GRE.</summary>
    public TunnelType Type { get; init; } = TunnelType.Ipip;

    /// <summary>The UDP port GUE arrives on (the balancer's --tun-port); required for GUE, refused otherwise.</summary>
    public ushort GuePort { get; init; }

    /// <summary>
    /// The user-space endpoint's queues: a multi-queue TUN device with a thread per queue, each taking its share of the
    /// flows (<see cref="TunnelQueueFilter"/>). 1 (the default) is one thread and a single-queue device.
    /// </summary>
    public int Queues { get; init; } = 1;

    /// <summary>
    /// The user-space endpoint's busy polling, in µs (0, the default: none): for so long after its last packets a queue
    /// spins on its sockets instead of sleeping (<see cref="Linux.Host.BusyPoll"/>). 0 to 1000.
    /// </summary>
    public int BusyPollMicroseconds { get; init; }

    /// <summary>How often the user-space endpoint logs its counters (only when they changed); zero: only at exit.</summary>
    public TimeSpan StatsInterval { get; init; } = TimeSpan.FromSeconds(60);
}

/// <summary>The decided endpoint: kernel or user (never auto), the device, why, and what to tell the operator.</summary>
public sealed record TunnelPlan(TunnelMode Mode, string Device, string Reason, IReadOnlyList<string> Notes);
