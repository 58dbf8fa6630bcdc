using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.AfPacket;

/// <summary>PACKET_FANOUT_* modes: how the kernel spreads one interface's frames over the group's sockets.</summary>
public enum FanoutMode : ushort
{
    /// <summary>By flow hash (skb rxhash over the 5-tuple or addresses); one flow always lands on one socket.</summary>
    Hash = 0,
    LoadBalance = 1,

    /// <summary>By the CPU that received the frame.</summary>
    Cpu = 2,
    Rollover = 3,
    Random = 4,
    QueueMapping = 5,

    /// <summary>A classic BPF program returns the socket index (see <see cref="FanoutOptions.Program"/>).</summary>
    ClassicBpf = 6,
}

[Flags]
public enum FanoutFlags : ushort
{
    None = 0,
    Rollover = 0x1000,
    UniqueId = 0x2000,
    IgnoreOutgoing = 0x4000,

    /// <summary>Reassemble IP fragments before hashing, so all fragments of a datagram reach the same socket.</summary>
    Defragment = 0x8000,
}

/// <summary>Joins a PACKET_FANOUT group: every socket bound to the same interface with the same id shares the frames.</summary>
public sealed record FanoutOptions(ushort GroupId, FanoutMode Mode, FanoutFlags Flags = FanoutFlags.None)
{
    /// <summary>The steering program for <see cref="FanoutMode.ClassicBpf"/> (PACKET_FANOUT_DATA); ignored for other modes.</summary>
    public ClassicBpfProgram? Program { get; init; }
}
