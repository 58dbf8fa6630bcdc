using Microsoft.Extensions.Logging;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.ControlPlane;

/// <summary>
/// The monitor's decisions, driven result by result (<see cref="HealthMonitor.Observe(int, int, int, ProbeResult)"/>):
/// what reaches the rule set, what is logged. The checker loops with real sockets are tested in the lab.
/// </summary>
public class HealthMonitorTests
{
    private const string Config = """
        virtual_server 198.18.0.100 80 {
            lb_algo rr
            lb_kind NAT
            delay_loop 6
            quorum 1
            hysteresis 0
            sorry_server 198.18.1.99 8080
            real_server 198.18.1.11 80 {
                TCP_CHECK {
                    retry 1
                }
            }
            real_server 198.18.1.12 80 {
                inhibit_on_failure
                TCP_CHECK {
                    retry 0
                }
                MISC_CHECK {
                    misc_path "/bin/true"
                    misc_dynamic
                }
            }
        }
        virtual_server 198.18.0.101 80 {
            lb_algo rr
            lb_kind DR
            real_server 198.18.1.21 80 {
            }
        }
        """;

    private static readonly ProbeResult Pass = ProbeResult.Passed("connected");
    private static readonly ProbeResult Fail = ProbeResult.Failed("connect failed: connection refused");

    private sealed class Harness : IAsyncDisposable
    {
        public Harness(string config)
        {
            Monitor = new HealthMonitor(KeepalivedParser.Parse(config), change =>
            {
                RuleSetSpec next = change(Live);
                Publications += ReferenceEquals(next, Live) ? 0 : 1;
                Live = next;
            }, Log);
            Live = Monitor.Rules;
        }

        public HealthMonitor Monitor { get; }
        public RuleSetSpec Live { get; set; } = RuleSetSpec.Empty;
        public int Publications { get; private set; }
        public ListLogger Log { get; } = new();

        /// <summary>The first service's pool as "address:port weight" words.</summary>
        public string Pool(int service = 0) => string.Join(" ", Live.Services[service].RealServers.Select(s =>
            $"{s.Address}:{s.Port}/{s.Weight}"));

        public ValueTask DisposeAsync() => Monitor.DisposeAsync();
    }

    internal sealed class ListLogger : ILogger
    {
        public List<string> Lines { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Lines)
            {
                Lines.Add(formatter(state, exception));
            }
        }
    }

    [Test]
    public void Every_server_starts_alive_and_the_rule_set_is_keepalived_s()
    {
        var h = new Harness(Config);
        Assert.That(RulesFile.Save(h.Live), Is.EqualTo(
            "-A -t 198.18.0.100:80 -s rr\n" +
            "-a -t 198.18.0.100:80 -r 198.18.1.11:80 -m -w 1\n" +
            "-a -t 198.18.0.100:80 -r 198.18.1.12:80 -m -w 1\n" +
            "-A -t 198.18.0.101:80 -s rr\n" +
            "-a -t 198.18.0.101:80 -r 198.18.1.21:80 -g -w 1\n"));
    }

    [Test]
    public void A_server_leaves_after_retry_further_failures_and_returns_after_one_success()
    {
        var h = new Harness(Config);
        h.Monitor.Observe(0, 0, 0, Pass);
        h.Monitor.Observe(0, 0, 0, Fail);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/1"), "retry 1: the first failure is retried");
        Assert.That(h.Publications, Is.Zero);
        h.Monitor.Observe(0, 0, 0, Fail);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/1"), "removed");
        h.Monitor.Observe(0, 0, 0, Fail);
        Assert.That(h.Publications, Is.EqualTo(1), "a failed server failing again changes nothing");
        h.Monitor.Observe(0, 0, 0, Pass);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/1"), "back, in the file's order");
        Assert.That(h.Log.Lines.Count(l => l.Contains("198.18.1.11:80 of TCP 198.18.0.100:80 is down: TCP_CHECK connect failed: connection refused", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(h.Log.Lines.Count(l => l.Contains("198.18.1.11:80 of TCP 198.18.0.100:80 is up", StringComparison.Ordinal)), Is.EqualTo(1));
    }

    [Test]
    public void An_inhibited_server_stays_at_weight_0_and_a_server_is_up_only_while_all_its_checkers_are()
    {
        var h = new Harness(Config);
        h.Monitor.Observe(0, 1, 1, Pass);
        h.Monitor.Observe(0, 1, 0, Fail); // retry 0, before its first success: down at once
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/0"));
        h.Monitor.Observe(0, 1, 1, ProbeResult.Failed("exit 1"));
        h.Monitor.Observe(0, 1, 0, Pass);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/0"), "the MISC_CHECK still fails");
        h.Monitor.Observe(0, 1, 1, Pass);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/1"));
    }

    [Test]
    public void A_dynamic_misc_check_sets_the_weight()
    {
        var h = new Harness(Config);
        h.Monitor.Observe(0, 1, 1, ProbeResult.Passed("exited 9: weight 7", 7));
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/7"));
        h.Monitor.Observe(0, 1, 1, ProbeResult.Passed("exited 0"));
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/7"), "exit 0 keeps the weight");
        Assert.That(h.Publications, Is.EqualTo(1));
    }

    [Test]
    public void Losing_the_quorum_swaps_the_pool_for_the_sorry_server_and_regaining_it_swaps_back()
    {
        var h = new Harness(Config.Replace("quorum 1", "quorum 2", StringComparison.Ordinal));
        h.Monitor.Observe(0, 0, 0, Fail); // live weight 1 < quorum 2
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.99:8080/1"));
        Assert.That(h.Log.Lines, Has.Some.Contains("TCP 198.18.0.100:80 lost its quorum: live weight 1 < 2 - 0; serving from the sorry server 198.18.1.99:8080"));
        h.Monitor.Observe(0, 1, 0, Fail);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/0 198.18.1.99:8080/1"), "the inhibited server stays at weight 0");
        h.Monitor.Observe(0, 0, 0, Pass);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/0 198.18.1.99:8080/1"), "live weight 1: still below the quorum");
        h.Monitor.Observe(0, 1, 0, Pass);
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.11:80/1 198.18.1.12:80/1"));
        Assert.That(RulesFile.Save(h.Live), Does.Contain("-A -t 198.18.0.101:80 -s rr\n-a -t 198.18.0.101:80 -r 198.18.1.21:80 -g -w 1\n"), "the other service is untouched");
    }

    [Test]
    public void Hysteresis_damps_the_quorum()
    {
        var h = new Harness(Config.Replace("quorum 1", "quorum 2", StringComparison.Ordinal).Replace("hysteresis 0", "hysteresis 1", StringComparison.Ordinal));
        h.Monitor.Observe(0, 0, 0, Fail); // live 1: not below 2 - 1
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/1"));
        h.Monitor.Observe(0, 1, 0, Fail); // live 0
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/0 198.18.1.99:8080/1"));
        h.Monitor.Observe(0, 0, 0, Pass);
        h.Monitor.Observe(0, 1, 0, Pass); // live 2: not yet 2 + 1
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.99:8080/1"), "quorum is regained only at quorum + hysteresis");
    }

    [Test]
    public void An_operator_deleting_the_service_is_not_undone_by_a_checker()
    {
        var h = new Harness(Config);
        h.Live = h.Live with { Services = h.Live.Services.RemoveAt(0) };
        h.Monitor.Observe(0, 0, 0, Fail);
        Assert.That(h.Publications, Is.Zero);
    }

    [Test]
    public void A_reload_keeps_unchanged_checkers_with_their_state_and_starts_changed_ones_fresh()
    {
        string config = Config;
        var h = new Harness(config);
        h.Monitor.Observe(0, 0, 0, Fail);
        h.Monitor.Observe(0, 1, 0, Fail);
        string reloaded = config.Replace("delay_loop 6", "delay_loop 6\n    # a comment moves every line", StringComparison.Ordinal)
            .Replace("retry 0", "retry 2", StringComparison.Ordinal); // rs2's TCP_CHECK
        RuleSetSpec? published = null;
        h.Monitor.Reload(KeepalivedParser.Parse(reloaded), rules => published = rules);
        h.Live = published!;
        Assert.That(h.Pool(), Is.EqualTo("198.18.1.12:80/1"),
            "rs1's checker is unchanged (only its line moved) and stays down; rs2's changed and starts afresh");
        Assert.That(h.Monitor.Status().Select(s => $"{s.Server} {s.Checker} {(s.Up ? "up" : "down")}"), Is.EqualTo(new[]
        {
            "198.18.1.11:80 TCP_CHECK down", "198.18.1.12:80 TCP_CHECK up", "198.18.1.12:80 MISC_CHECK up",
        }));
    }

    [Test]
    public async Task Omega_runs_notify_down_for_live_servers_and_quorum_down_when_the_daemon_stops()
    {
        string folder = Directory.CreateTempSubdirectory("udr-omega-").FullName;
        try
        {
            string config = $$"""
                virtual_server 198.18.0.100 80 {
                    omega
                    quorum_down "/usr/bin/touch {{folder}}/quorum-down"
                    real_server 198.18.1.11 80 {
                        notify_down "/usr/bin/touch {{folder}}/rs1-down"
                    }
                    real_server 198.18.1.12 80 {
                        notify_down "/usr/bin/touch {{folder}}/rs2-down"
                        TCP_CHECK {
                        }
                    }
                }
                """;
            var h = new Harness(config);
            h.Monitor.Observe(0, 1, 0, Fail); // rs2 down: its notify_down runs now (and not again at the end)
            await h.DisposeAsync();
            Assert.That(File.Exists(Path.Combine(folder, "rs1-down")), Is.True, "notify_down of the live server at shutdown");
            Assert.That(File.Exists(Path.Combine(folder, "quorum-down")), Is.True, "quorum_down at shutdown");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
