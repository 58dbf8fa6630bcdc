using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// One frame on its way through the engine's stages: the headers parsed from it so far, what the receive path knows
/// of its checksum and offload, and where a reply goes. Built once per frame by
/// <see cref="ForwardingEngine.Process(ref FrameBuffer, long, Span{byte}, out int)"/> and passed by reference, so a
/// stage takes the frame and only what is its own to decide. A stack value: nothing of it outlives the frame.
/// <para>
/// The buffer itself (<see cref="FrameBuffer"/>: the frame, its room, its link; on transmit, what to send and by which
/// link) is the caller's and travels beside the context by reference, never inside it: a copy into the context and
/// back was two wide loads of freshly written fields per frame, store-forwarding stalls that cost 15–20 ns
/// (bench/README.md, the restructure's side-by-side table).
/// </para>
/// </summary>
internal ref struct FrameContext
{
    public FrameContext(FrameFlags flags, long nowMs, Span<byte> reply)
    {
        Flags = flags;
        NowMs = nowMs;
        Reply = reply;
    }

    /// <summary>The Ethernet header (valid from classification on).</summary>
    public EthernetFrame Ethernet;

    /// <summary>The IPv4 header (valid once the frame is known to be IPv4 with a sound header).</summary>
    public Ipv4Header Ip;

    /// <summary>The transport header and payload within the IPv4 total length; empty for a later fragment.</summary>
    public Span<byte> Transport;

    /// <summary>What is known about the frame's offload state; a stage clears what stops being true.</summary>
    public FrameFlags Flags;

    /// <summary>The frame's time, in milliseconds.</summary>
    public readonly long NowMs;

    /// <summary>Where a reply (ARP, ICMP error) is written; <see cref="ReplyLength"/> says how much of it.</summary>
    public readonly Span<byte> Reply;

    public int ReplyLength;
}

/// <summary>Where a packet of a connection goes: its real server (null for none known), that server's address and port, and how.</summary>
internal readonly struct ForwardingTarget
{
    public ForwardingTarget(RealServer? server, uint address, ushort port, ForwardingMethod method)
    {
        Server = server;
        Address = address;
        Port = port;
        Method = method;
    }

    public RealServer? Server { get; }
    public uint Address { get; }
    public ushort Port { get; }
    public ForwardingMethod Method { get; }
}
