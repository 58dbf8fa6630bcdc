using System.Globalization;
using System.Text.RegularExpressions;
using UserspaceDr.Tests.TestSupport;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>What `udr run` left behind when it stopped.</summary>
internal sealed record UdrExit(int ExitCode, string? TotalsLine, IReadOnlyDictionary<string, long> Totals, string Output)
{
    public long Count(string reason) => Totals.TryGetValue(reason, out long count) ? count : 0;

    /// <summary>The lookup-table digest the daemon logged last for <paramref name="service"/> ("TCP 198.18.0.100:7000"), or null.</summary>
    public string? TableDigest(string service) =>
        Output.Split('\n').LastOrDefault(l => l.Contains($"{service} ", StringComparison.Ordinal) && l.Contains(" lookup table digest ", StringComparison.Ordinal))
            is string line ? line[(line.IndexOf(" lookup table digest ", StringComparison.Ordinal) + 21)..].Split(' ')[0] : null;
}

/// <summary>
/// `artifacts/udr/udr run` inside the lab's balancer namespace. <see cref="Start"/> returns once it logged
/// "udr serving" (neighbours resolved, workers running); <see cref="Dispose"/> always ends it (SIGTERM, then kill).
/// </summary>
internal sealed partial class UdrDaemon : IDisposable
{
    private static readonly TimeSpan StartPatience = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan StopPatience = TimeSpan.FromSeconds(20);

    private readonly NamespacedProcess _process;
    private UdrExit? _exit;
    private bool _disposed;

    private readonly Action<string> _log;

    private UdrDaemon(NamespacedProcess process, Action<string> log)
    {
        _process = process;
        _log = log;
    }

    public string Output => _process.Output;

    /// <summary>The daemon's pid (for /proc: its memory, its descriptors).</summary>
    public int ProcessId => _process.Id;

    /// <summary>
    /// Starts `udr run` on <paramref name="balancer"/> (Lb, or Lb2 of a pair) with <paramref name="ruleSource"/>
    /// (--rules FILE or --config FILE) and the lab's other settings.
    /// </summary>
    public static UdrDaemon Start(LabNetwork lab, LabHost balancer, string backend, IReadOnlyList<string> ruleSource, Action<string> log, params string[] extraArguments)
    {
        ArgumentNullException.ThrowIfNull(lab);
        string[] command =
        [
            UdrBinary.Executable, "run", "--interface", "eth0", .. ruleSource, "--backend", backend,
            // Two workers unless the test says otherwise.
            .. extraArguments.Contains("--workers") ? Array.Empty<string>() : ["--workers", "2"],
            .. extraArguments,
        ];
        NamespacedProcess process = NamespacedProcess.Start(lab.Namespace(balancer), $"udr on {LabNetwork.HostName(balancer)}", null, false, command);
        if (process.WaitForLine(l => l.Contains("udr serving", StringComparison.Ordinal), StartPatience) == null)
        {
            process.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(5));
            string output = process.Output;
            process.Dispose();
            throw new InvalidOperationException($"udr did not log 'udr serving' within {StartPatience.TotalSeconds}s:\n{output}");
        }
        return new UdrDaemon(process, log);
    }

    /// <summary>How many of the daemon's lines so far match (to wait for the next one with <see cref="WaitForLine"/>).</summary>
    public int CountLines(Func<string, bool> predicate) => _process.CountLines(predicate);

    /// <summary>The first matching line after the first <paramref name="skip"/> matching ones, or null after <paramref name="timeout"/>.</summary>
    public string? WaitForLine(Func<string, bool> predicate, TimeSpan timeout, int skip = 0) => _process.WaitForLine(predicate, timeout, skip);

    /// <summary>SIGKILL: the daemon ends at once, as in a crash (nothing it would do on SIGTERM happens).</summary>
    public void Kill()
    {
        _process.Signal(NamespacedProcess.SigKill);
        _process.WaitForExit(TimeSpan.FromSeconds(10));
    }

    /// <summary>SIGSTOP, sent from this process (no helper process to start, so the stall begins now).</summary>
    public void Pause() => _process.Signal(NamespacedProcess.SigStop);

    /// <summary>SIGCONT.</summary>
    public void Resume() => _process.Signal(NamespacedProcess.SigCont);

    /// <summary>SIGHUP, then waits for the daemon's answer: the "rules applied" or "reload refused" line it logs.</summary>
    public string Reload()
    {
        static bool IsReloadAnswer(string line) =>
            line.Contains("rules applied", StringComparison.Ordinal) || line.Contains("reload refused", StringComparison.Ordinal);
        int answered = _process.CountLines(IsReloadAnswer);
        _process.Signal(NamespacedProcess.SigHup);
        return _process.WaitForLine(IsReloadAnswer, TimeSpan.FromSeconds(20), skip: answered)
            ?? throw new InvalidOperationException($"udr did not answer SIGHUP:\n{_process.Output}");
    }

    /// <summary>SIGTERM and waits for the exit; fails the test when it has to be killed.</summary>
    public UdrExit Stop()
    {
        if (_exit != null)
        {
            return _exit;
        }
        bool ended = _process.Stop(NamespacedProcess.SigTerm, StopPatience);
        string output = _process.Output;
        if (!ended)
        {
            throw new AssertionException($"udr did not stop within {StopPatience.TotalSeconds}s of SIGTERM and was killed:\n{output}");
        }
        string? totalsLine = output.Split('\n').LastOrDefault(l => l.Contains("stopped; totals:", StringComparison.Ordinal));
        var totals = new Dictionary<string, long>();
        if (totalsLine != null)
        {
            foreach (Match match in CounterPattern().Matches(totalsLine[(totalsLine.IndexOf("totals:", StringComparison.Ordinal) + 7)..]))
            {
                totals[match.Groups[1].Value] = long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
            }
        }
        _exit = new UdrExit(_process.ExitCode, totalsLine, totals, output);
        _log($"udr exited with {_exit.ExitCode}: {totalsLine?.Trim()}");
        return _exit;
    }

    /// <summary>Ends the daemon whatever happened (SIGTERM, then kill); never throws.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            _process.Stop(NamespacedProcess.SigTerm, TimeSpan.FromSeconds(10));
        }
        finally
        {
            _process.Dispose();
        }
    }

    [GeneratedRegex(@"([a-z][a-z0-9-]*)=(\d+)")] // names may hold digits (icmpv6-packet-too-big)
    private static partial Regex CounterPattern();
}
