using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Engine;

namespace UserspaceDr.Io.CaptureFiles;

/// <summary>What an offline replay produced: every frame udr would send, and why each input frame ended as it did.</summary>
public sealed record ReplayResult(
    IReadOnlyList<PcapRecord> Output,
    IReadOnlyList<FrameReason> Reasons,
    WorkerCounters Counters,
    RuleSet Rules);

/// <summary>
/// Runs the forwarding engine over a capture, as one worker would: same engine, same rule set, time taken from the
/// capture's timestamps (so connection expiry follows the capture). Transmitted frames and replies are written out
/// in the order they would leave, stamped with the input frame's time.
/// </summary>
public static class PcapReplay
{
    /// <summary>The largest path MTU a replayed next hop may have (jumbo frames); sizes the second-fragment buffer.</summary>
    private const int MaxPathMtu = 9216;

    public static ReplayResult Run(RuleSet rules, NeighborTable neighbors, EngineOptions options, IReadOnlyList<PcapRecord> input,
        int connectionCapacity = 1 << 16, FrameFlags flags = FrameFlags.None)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(input);
        var state = new DataPlaneState();
        state.Update(_ => new EngineSnapshot(rules, neighbors, options.Timeouts));
        // Expiry at every frame, a little at a time, on the capture's clock.
        var host = new EngineHost(state, options, connectionCapacity, new ExpiryPolicy(IntervalMs: 0, Budget: 256));
        var output = new List<PcapRecord>();
        var reasons = new List<FrameReason>(input.Count);
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        byte[] overflow = new byte[FrameBuffer.OverflowLengthFor(MaxPathMtu)];
        foreach (PcapRecord record in input)
        {
            long nowMs = record.TimestampMicroseconds / 1000;
            host.Housekeeping(nowMs);
            // With headroom in front, as the live rings give it, so that IP-in-IP is encapsulated in place here too.
            byte[] buffer = new byte[FrameBuffer.RecommendedHeadroom + record.Data.Length];
            record.Data.CopyTo(buffer, FrameBuffer.RecommendedHeadroom);
            var packet = new FrameBuffer(buffer, FrameBuffer.RecommendedHeadroom, record.Data.Length, flags, 0, overflow);
            var sink = new RecordSink(output, record);
            reasons.Add(host.Forward(ref packet, nowMs, reply, ref sink));
        }
        return new ReplayResult(output, reasons, host.Counters, rules);
    }

    /// <summary>Writes what would leave as records stamped with the input frame's time, in the order they would leave.</summary>
    private readonly struct RecordSink(List<PcapRecord> output, PcapRecord input) : IFrameSink
    {
        public void Transmit(ref FrameBuffer packet)
        {
            output.Add(input with { Data = packet.Frame.ToArray() });
            if (packet.OverflowLength > 0)
            {
                output.Add(input with { Data = packet.Overflow[..packet.OverflowLength].ToArray() });
            }
        }

        public void Reply(ReadOnlySpan<byte> reply, byte link) => output.Add(input with { Data = reply.ToArray() });
    }
}
