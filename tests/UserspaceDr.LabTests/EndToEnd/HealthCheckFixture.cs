using System.Diagnostics;
using System.Text.Json;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// What the health-check lab tests share: `udr run --config` with a control socket in the lab's directory, `udr adm`
/// and `udr checks` against it, and waiting for a server's logged transition within keepalived's bound.
/// </summary>
public abstract class HealthCheckFixture : EndToEndFixture
{
    /// <summary>`udr run` arguments beyond the lab's (a second interface for the NAT servers).</summary>
    protected virtual string[] UdrArguments => [];

    protected const string Backend = "afpacket";
    protected static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    protected string ConfigPath => Path.Combine(Lab.Directory, "keepalived.conf");
    protected string ControlPath => Path.Combine(Lab.Directory, "udr.sock");

    private protected UdrDaemon StartUdr(string config, params string[] extraArguments)
    {
        File.WriteAllText(ConfigPath, config);
        return Lab.StartUdrWithConfig(Backend, ConfigPath, ["--control", ControlPath, .. UdrArguments, .. extraArguments]);
    }

    protected string Adm(params string[] arguments) => Udr(["adm", "--control", ControlPath, .. arguments]);

    /// <summary>
    /// <see cref="EndToEndSupport.AssertSplit"/>, and when a connection failed, what the daemon saw first (in the test's
    /// log): its drop reasons (`udr top --once`) and its connection entries (`udr adm -L -c -n`). A connection that
    /// times out here now and then is a defect to find; this is what finding it needs.
    /// </summary>
    protected void AssertSplit(JsonElement split, int count, IReadOnlyDictionary<string, double> shares)
    {
        if (split.GetProperty("errors").GetInt32() != 0)
        {
            foreach (string[] arguments in (string[][])[["top", "--once", "--control", ControlPath], ["adm", "--control", ControlPath, "-L", "-c", "-n"]])
            {
                CommandResult result = ProcessRunner.Run(UdrBinary.Executable, arguments, TimeSpan.FromSeconds(30));
                Lab.Step($"after a failed connection, udr {string.Join(' ', arguments)}:\n{result.Output.TrimEnd()}{result.Error.TrimEnd()}");
            }
        }
        EndToEndSupport.AssertSplit(split, count, shares);
    }

    protected string Udr(string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(UdrBinary.Executable, arguments, TimeSpan.FromSeconds(30));
        Assert.That(result.ExitCode, Is.Zero, $"udr {string.Join(' ', arguments)}: {result}");
        Lab.Step($"udr {string.Join(' ', arguments)}:\n{result.Output.TrimEnd()}");
        return result.Output;
    }

    /// <summary>The log line of <paramref name="what"/> happening to <paramref name="server"/>, and how long after <paramref name="since"/> it came.</summary>
    private protected static TimeSpan AwaitTransition(UdrDaemon udr, string server, string what, Stopwatch since, TimeSpan bound, string service = "TCP 198.18.0.100:80")
    {
        string marker = $"real server {(server.Contains(':', StringComparison.Ordinal) ? server : server + ":80")} of {service} is {what}";
        string? line = udr.WaitForLine(l => l.Contains(marker, StringComparison.Ordinal), bound + TimeSpan.FromSeconds(10));
        TimeSpan elapsed = since.Elapsed;
        Assert.That(line, Is.Not.Null, $"no '{marker}' line:\n{udr.Output}");
        Assert.That(elapsed, Is.LessThanOrEqualTo(bound), $"'{marker}' came after {elapsed.TotalSeconds:F1} s, the bound is {bound.TotalSeconds} s");
        return elapsed;
    }

    /// <summary>Polls `udr checks` until <paramref name="wanted"/> holds for its output (15 s at most).</summary>
    protected string AwaitChecks(Func<string, bool> wanted)
    {
        var patience = System.Diagnostics.Stopwatch.StartNew();
        string output = "";
        while (patience.Elapsed < TimeSpan.FromSeconds(15))
        {
            output = Udr(["checks", "--control", ControlPath]);
            if (wanted(output))
            {
                return output;
            }
            Thread.Sleep(500);
        }
        Assert.Fail($"udr checks did not show it within 15 s:\n{output}");
        return output;
    }
}
