using System.Globalization;
using System.Text;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// What one queue of the user-space endpoint did, by outcome. One thread (that queue's loop) writes; the periodic log
/// sums every queue's (<see cref="Sum"/>) from queue 0's thread, reading aligned 64-bit fields that may be a moment
/// old, and the final report is summed after every loop has ended. Plain fields, no atomics.
/// </summary>
public sealed class TunnelCounters
{
    private readonly long[] _outcomes = new long[DecapsulationOutcomes.Count];

    /// <summary>Packets the raw socket handed over.</summary>
    public long Received { get; private set; }

    public long ReceivedBytes { get; private set; }

    /// <summary>Inner bytes written to the TUN device.</summary>
    public long DeliveredBytes { get; private set; }

    /// <summary>Inner packets that passed every check but the TUN device refused (write failed).</summary>
    public long TunWriteErrors { get; private set; }

    /// <summary>recv() failures other than "nothing there" and interruptions.</summary>
    public long ReceiveErrors { get; private set; }

    /// <summary>TUN writes that carried several TCP segments merged into one (user-space GRO), and the segments in them.</summary>
    public long Merges { get; private set; }

    public long MergedSegments { get; private set; }

    public long this[DecapsulationOutcome outcome] => _outcomes[(int)outcome];

    public long Dropped => Received - this[DecapsulationOutcome.Delivered];

    public void Count(DecapsulationOutcome outcome, int receivedLength, int innerLength)
    {
        Received++;
        ReceivedBytes += receivedLength;
        _outcomes[(int)outcome]++;
        if (outcome == DecapsulationOutcome.Delivered)
        {
            DeliveredBytes += innerLength;
        }
    }

    public void CountTunWriteError() => TunWriteErrors++;

    public void CountReceiveError() => ReceiveErrors++;

    public void CountMerged(int segments)
    {
        if (segments > 1)
        {
            Merges++;
            MergedSegments += segments;
        }
    }

    /// <summary>The queues' counters added up.</summary>
    public static TunnelCounters Sum(IReadOnlyList<TunnelCounters> queues)
    {
        ArgumentNullException.ThrowIfNull(queues);
        var total = new TunnelCounters();
        foreach (TunnelCounters queue in queues)
        {
            total.Received += queue.Received;
            total.ReceivedBytes += queue.ReceivedBytes;
            total.DeliveredBytes += queue.DeliveredBytes;
            total.TunWriteErrors += queue.TunWriteErrors;
            total.ReceiveErrors += queue.ReceiveErrors;
            total.Merges += queue.Merges;
            total.MergedSegments += queue.MergedSegments;
            for (int i = 0; i < total._outcomes.Length; i++)
            {
                total._outcomes[i] += queue._outcomes[i];
            }
        }
        return total;
    }

    /// <summary>A cheap fingerprint: changes whenever anything was counted (for "log only when something happened").</summary>
    public long Version => Received + TunWriteErrors + ReceiveErrors;

    /// <summary>
    /// One line: "received 12 (1.2 KB) delivered 10 (840 B) dropped 2: outer-not-local=1 inner-not-vip=1; tun-write-errors=0".
    /// Every drop reason that occurred is named; those that did not are left out.
    /// </summary>
    public string Format()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture,
            $"received {Received} ({ReceivedBytes} bytes), delivered {this[DecapsulationOutcome.Delivered]} ({DeliveredBytes} bytes), dropped {Dropped}");
        string separator = ": ";
        foreach (DecapsulationOutcome outcome in DecapsulationOutcomes.All)
        {
            if (outcome != DecapsulationOutcome.Delivered && this[outcome] != 0)
            {
                text.Append(CultureInfo.InvariantCulture, $"{separator}{DecapsulationOutcomes.Name(outcome)}={this[outcome]}");
                separator = " ";
            }
        }
        text.Append(CultureInfo.InvariantCulture, $"; tun-write-errors={TunWriteErrors} receive-errors={ReceiveErrors} merged={MergedSegments} segments in {Merges} writes");
        return text.ToString();
    }
}
