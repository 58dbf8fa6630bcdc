using System.Globalization;
using System.Text.Json;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// `udr top` through a real terminal: tmux runs it at 80×24 against the lab's daemon right after a burst of
/// connections, the test captures the pane and reads what a person would see (the service, its servers with their
/// weights and connections, a connection rate, the drops and checkers lines, nothing beyond 80 columns or 24 rows),
/// then presses q and the view ends.
/// </summary>
[TestFixture("afpacket")]
[Category("Lab")]
[NonParallelizable]
public sealed class TopEndToEndTests(string backend) : EndToEndFixture
{
    private const string TmuxSocket = "udr-top-test";
    private static readonly TimeSpan ClientPatience = TimeSpan.FromSeconds(90);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    [Test]
    public void Top_shows_services_servers_weights_connections_and_rates_in_80_by_24_and_quits_on_q()
    {
        Assert.That(Tmux("-V").ExitCode, Is.Zero, "the top test needs tmux (./build.sh test installs it)");
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s wrr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
            -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1

            """);
        UdrDaemon udr = Lab.StartUdr(backend, "--control", Lab.ControlPath);
        try
        {
            JsonElement split = Lab.RunClient(ClientPatience, "split", "300", "8", "60");
            EndToEndSupport.AssertSplit(split, 300, new Dictionary<string, double> { ["rs1"] = 0.75, ["rs2"] = 0.25 });
            // The estimator's 2 s period must have seen the burst for a rate to show.
            Thread.Sleep(TimeSpan.FromSeconds(2.5));

            Assert.That(Tmux("new-session", "-d", "-s", "top", "-x", "80", "-y", "24",
                $"{UdrBinary.Executable} top --control {Lab.ControlPath}; sleep 30").ExitCode, Is.Zero);
            string screen = "";
            DateTime deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (DateTime.UtcNow < deadline && !screen.Contains("198.18.0.12:80", StringComparison.Ordinal))
            {
                Thread.Sleep(500);
                screen = Tmux("capture-pane", "-p", "-t", "top").Output;
            }
            TestContext.Out.WriteLine(screen);
            string[] lines = screen.TrimEnd('\n').Split('\n');
            string rs1 = lines.FirstOrDefault(l => l.Contains("-> 198.18.0.11:80", StringComparison.Ordinal)) ?? "";
            string rs2 = lines.FirstOrDefault(l => l.Contains("-> 198.18.0.12:80", StringComparison.Ordinal)) ?? "";
            Assert.Multiple(() =>
            {
                Assert.That(lines, Has.Length.LessThanOrEqualTo(24), "the view fits 24 rows");
                Assert.That(lines.Where(l => l.Length > 80), Is.Empty, "no line is wider than 80 columns");
                Assert.That(lines[0], Does.StartWith("udr ").And.Contain("eth0").And.Contain("conns"), "the header");
                Assert.That(lines.Where(l => l.Contains("TCP 198.18.0.100:80", StringComparison.Ordinal)).ToArray(), Has.One.Contains(" wrr "),
                    "the service and its scheduler on one row");
                Assert.That(Columns(rs1).FirstOrDefault(), Is.EqualTo("Route"), $"rs1's row: {rs1}");
                Assert.That(Numbers(rs1)[0], Is.EqualTo(3), $"rs1's weight: {rs1}");
                Assert.That(Numbers(rs2)[0], Is.EqualTo(1), $"rs2's weight: {rs2}");
                // Active + inactive: DR sees no FIN from the servers, so the 300 closed connections linger as active or inactive.
                Assert.That(Numbers(rs1)[1] + Numbers(rs1)[2], Is.EqualTo(225).Within(15), $"rs1's connections: {rs1}");
                Assert.That(Numbers(rs1)[3], Is.Positive, $"rs1's connections per second after the burst: {rs1}");
                Assert.That(screen, Does.Contain("Drops/s:").Or.Contain("Drops (total):"));
                Assert.That(screen, Does.Contain("Checkers: none"));
            });

            Assert.That(Tmux("send-keys", "-t", "top", "q").ExitCode, Is.Zero);
            string after = screen;
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (DateTime.UtcNow < deadline && after.Contains("-> 198.18.0.11:80", StringComparison.Ordinal))
            {
                Thread.Sleep(300);
                after = Tmux("capture-pane", "-p", "-t", "top").Output;
            }
            Assert.That(after, Does.Not.Contain("-> 198.18.0.11:80"), "q ends the view and the terminal's screen comes back");
        }
        finally
        {
            Tmux("kill-server");
            udr.Stop();
        }
    }

    /// <summary>The words of a row after the server's name.</summary>
    private static string[] Columns(string row) =>
        [.. row.Split(' ', StringSplitOptions.RemoveEmptyEntries).SkipWhile(w => w != "->").Skip(2)];

    /// <summary>The numeric columns of a server's row: weight, active, inactive, conn/s, ...</summary>
    private static long[] Numbers(string row)
    {
        long[] numbers = [.. Columns(row).Skip(1).Select(w => long.TryParse(w, NumberStyles.None, CultureInfo.InvariantCulture, out long n) ? n : -1)];
        return numbers.Length >= 4 ? numbers : [-1, -1, -1, -1];
    }

    private static Linux.Host.CommandResult Tmux(params string[] arguments) =>
        ProcessRunner.Run("tmux", ["-L", TmuxSocket, .. arguments], TimeSpan.FromSeconds(20), RepositoryPaths.Root,
            new Dictionary<string, string> { ["TERM"] = "xterm-256color" });
}
