using UserspaceDr.Core.Forwarding;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// Where a backend puts what the engine produced (<see cref="EngineHost.Forward"/>). Implemented by structs and used
/// as a generic constraint, so the calls are direct, never an interface dispatch per frame.
/// </summary>
public interface IFrameSink
{
    /// <summary>
    /// Sends <see cref="FrameBuffer.Frame"/> by <see cref="FrameBuffer.Link"/> with <see cref="FrameBuffer.Flags"/>, then
    /// <see cref="FrameBuffer.Overflow"/>[..<see cref="FrameBuffer.OverflowLength"/>] when that is not empty.
    /// </summary>
    void Transmit(ref FrameBuffer packet);

    /// <summary>Sends a reply the engine wrote (ARP, ICMP), complete with checksums, by <paramref name="link"/>.</summary>
    void Reply(ReadOnlySpan<byte> reply, byte link);
}
