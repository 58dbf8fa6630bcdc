using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

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
        ArgumentNullException.ThrowIfNull(input);
        var engine = new ForwardingEngine(options, new ConnectionTable(connectionCapacity))
        {
            Snapshot = new EngineSnapshot(rules, neighbors, options.Timeouts),
        };
        var output = new List<PcapRecord>();
        var reasons = new List<FrameReason>(input.Count);
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        byte[] overflow = new byte[FrameBuffer.OverflowLengthFor(MaxPathMtu)];
        foreach (PcapRecord record in input)
        {
            long nowMs = record.TimestampMicroseconds / 1000;
            engine.ExpireConnections(nowMs, budget: 256);
            // With headroom in front, as the live rings give it, so that IP-in-IP is encapsulated in place here too.
            byte[] buffer = new byte[FrameBuffer.RecommendedHeadroom + record.Data.Length];
            record.Data.CopyTo(buffer, FrameBuffer.RecommendedHeadroom);
            var packet = new FrameBuffer(buffer, FrameBuffer.RecommendedHeadroom, record.Data.Length, flags) { Overflow = overflow };
            FrameReason reason = engine.ProcessWithReason(ref packet, nowMs, reply, out int replyLength);
            reasons.Add(reason);
            switch (FrameReasons.VerdictOf(reason))
            {
                case Verdict.Transmit:
                    output.Add(record with { Data = packet.Frame.ToArray() });
                    if (packet.OverflowLength > 0)
                    {
                        output.Add(record with { Data = overflow[..packet.OverflowLength] });
                    }
                    break;
                case Verdict.Reply:
                    output.Add(record with { Data = reply[..replyLength] });
                    break;
                default:
                    break;
            }
        }
        return new ReplayResult(output, reasons, engine.Counters, rules);
    }
}
