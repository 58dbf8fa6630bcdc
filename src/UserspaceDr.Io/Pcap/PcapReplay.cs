using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Io.Pcap;

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
    public static ReplayResult Run(RuleSet rules, NeighborTable neighbors, EngineOptions options, IReadOnlyList<PcapRecord> input,
        int connectionCapacity = 1 << 16, FrameFlags flags = FrameFlags.None)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(input);
        var engine = new ForwardingEngine(options, new ConnectionTable(connectionCapacity))
        {
            Rules = rules,
            Neighbors = neighbors,
            Timeouts = options.Timeouts,
        };
        var output = new List<PcapRecord>();
        var reasons = new List<FrameReason>(input.Count);
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        foreach (PcapRecord record in input)
        {
            long nowMs = record.TimestampMicroseconds / 1000;
            engine.ExpireConnections(nowMs, budget: 256);
            byte[] frame = (byte[])record.Data.Clone();
            FrameReason reason = engine.ProcessWithReason(frame, flags, nowMs, reply, out int replyLength);
            reasons.Add(reason);
            switch (FrameReasons.VerdictOf(reason))
            {
                case Verdict.Transmit:
                    output.Add(record with { Data = frame });
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
