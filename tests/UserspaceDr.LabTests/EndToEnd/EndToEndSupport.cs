using System.Text.Json;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>What every end-to-end fixture shares: the tools and the published daemon, and the split assertion.</summary>
internal static class EndToEndSupport
{
    /// <summary>Returns the Python interpreter's own path (a version manager's shim on PATH costs a second a start).</summary>
    public static string EnsureToolsAndDaemon()
    {
        LabNetwork.RequireRoot();
        foreach (string tool in new[] { "python3", "tcpdump", "nft" })
        {
            Assert.That(Run("sh", "-c", $"command -v {tool}").ExitCode, Is.Zero, $"the end-to-end tests need {tool} on PATH");
        }
        (int pythonExit, string pythonPath) = Run("python3", "-c", "import sys; print(sys.executable)");
        string python = pythonPath.Trim();
        Assert.That(pythonExit == 0 && File.Exists(python), Is.True, $"python3 does not say where it is: {pythonPath}");
        UdrBinary.Ensure();
        return python;
    }


    /// <summary>
    /// A client.py split: every connection answered, by the servers named in <paramref name="shares"/> only, each
    /// with its expected share of <paramref name="count"/> within <paramref name="tolerance"/>.
    /// </summary>
    public static void AssertSplit(JsonElement split, int count, IReadOnlyDictionary<string, double> shares, double tolerance = 0.05)
    {
        int errors = split.GetProperty("errors").GetInt32();
        JsonElement counts = split.GetProperty("counts");
        string what = $"{count} connections: {counts}, {errors} failed {split.GetProperty("error_samples")}";
        Assert.That(errors, Is.Zero, what);
        Assert.That(counts.EnumerateObject().Select(p => p.Name), Is.SubsetOf(shares.Keys), $"only the expected servers answer: {what}");
        Assert.That(counts.EnumerateObject().Sum(p => p.Value.GetInt32()), Is.EqualTo(count), what);
        foreach ((string server, double share) in shares)
        {
            int served = counts.TryGetProperty(server, out JsonElement n) ? n.GetInt32() : 0;
            Assert.That((double)served / count, Is.EqualTo(share).Within(tolerance), $"{server}'s share of {what}");
        }
    }

    public static (int ExitCode, string Output) Run(string program, params string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(program, arguments);
        return (result.TimedOut ? -1 : result.ExitCode, result.Combined);
    }

    /// <summary>
    /// Frames reaching the client (not sent by it) that are a TCP RST cutting a connection short (see
    /// <see cref="ConnectionResets"/>) or any ICMP.
    /// </summary>
    public static IEnumerable<CapturedPacket> KernelAnswers(EndToEndLab lab, IReadOnlyList<CapturedPacket> atClient)
    {
        HashSet<CapturedPacket> resets = new(ConnectionResets(atClient), ReferenceEqualityComparer.Instance);
        return atClient.Where(p => p.SourceMac != lab.ClientMac && (resets.Contains(p) || p.IsIcmp));
    }

    /// <summary>
    /// The TCP RSTs of a capture (in capture order, both directions) that cut a connection short: every RST but one
    /// that comes after a FIN each way on its connection. That one answers a stray segment after both ends had
    /// closed: a network that reorders (the lab's veths queue a frame on the sending CPU's backlog, so two segments a
    /// host sends from two CPUs microseconds apart may swap) can deliver a retransmitted FIN or a duplicate ACK after
    /// the ACK that closed the socket, and the closed end answers it with an RST, as it must (RFC 9293 3.10.7.1). The
    /// connection had ended whole; a balancer kernel that resets service traffic resets the SYN, so stays caught.
    /// </summary>
    public static IEnumerable<CapturedPacket> ConnectionResets(IEnumerable<CapturedPacket> capture)
    {
        // A connection by its two ends (either order) → the ends that sent a FIN; a SYN starts the connection afresh.
        Dictionary<(string, string), HashSet<string>> finishedBy = [];
        foreach (CapturedPacket p in capture.Where(p => p.IsTcp))
        {
            string from = $"{p.Source}:{p.SourcePort}";
            string to = $"{p.Destination}:{p.DestinationPort}";
            (string, string) connection = string.CompareOrdinal(from, to) < 0 ? (from, to) : (to, from);
            if (p.Syn && !p.Ack)
            {
                finishedBy.Remove(connection);
            }
            if (p.Fin)
            {
                (finishedBy.TryGetValue(connection, out HashSet<string>? ends) ? ends : finishedBy[connection] = []).Add(from);
            }
            if (p.Rst && !(finishedBy.TryGetValue(connection, out HashSet<string>? closed) && closed.Count == 2))
            {
                yield return p;
            }
        }
    }

    /// <summary>The RSTs and ICMP that came from the balancer: its MAC, or its own address as source.</summary>
    public static IEnumerable<CapturedPacket> AnswersFromBalancer(EndToEndLab lab, IReadOnlyList<CapturedPacket> atClient) =>
        KernelAnswers(lab, atClient).Where(p => p.SourceMac == lab.LbMac || p.Source is LabNetwork.LbAddress);

    /// <summary>
    /// No RST and no ICMP reached the client: above all none from the balancer (the detector the isolation test
    /// shows catching the balancer's kernel), and none from a real server either (that would be a broken flow too).
    /// <paramref name="expected"/> names the ICMP a test provokes on purpose (udr's own, or a translated one).
    /// </summary>
    public static void AssertKernelQuiet(EndToEndLab lab, IReadOnlyList<CapturedPacket> atClient, Func<CapturedPacket, bool>? expected = null)
    {
        Func<CapturedPacket, bool> provoked = expected ?? (_ => false);
        Assert.That(atClient.Count(p => p.SourceMac == lab.ClientMac), Is.Positive, "the capture holds the run's traffic");
        Assert.That(AnswersFromBalancer(lab, atClient).Where(p => !provoked(p)), Is.Empty,
            "the balancer's kernel answered service traffic (RST/ICMP from the balancer)");
        Assert.That(KernelAnswers(lab, atClient).Where(p => !provoked(p)), Is.Empty, "no RST or ICMP reaches the client");
    }

    public static void AssertCleanExit(EndToEndLab lab, UdrExit exit, long minimumForwarded)
    {
        Assert.That(exit.ExitCode, Is.Zero, $"udr exit code:\n{exit.Output}");
        Assert.That(exit.Count("forwarded"), Is.GreaterThanOrEqualTo(minimumForwarded), $"forwarded total: {exit.TotalsLine}");
        Assert.That(lab.BalancerRuleset(), Does.Not.Contain("udr_"), "no udr_ table left in the balancer");
    }
}
