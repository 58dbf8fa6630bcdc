using Spectre.Console;
using UserspaceDr.Cli.Commands;

namespace UserspaceDr.Tests.Cli;

/// <summary>
/// `udr top`'s screen as text (Spectre.Console writing to a string, no colours): what fits a small terminal, drop
/// reasons per second from two snapshots, checkers that are down, VRRP roles, the JSON the daemon answers with.
/// </summary>
public class TopRenderTests
{
    private static TopSnapshot Snapshot(DateTimeOffset time, long tcpNotSyn, long ringDrops, int services = 1, bool checkerDown = false) => new(
        time, "0.9.0+abc", 3723, ["eth0", "eth1"], 40, 1 << 20, 1000, ringDrops, 0,
        new Dictionary<string, long> { ["tcp-not-syn"] = tcpNotSyn },
        [.. Enumerable.Range(0, services).Select(i => new TopService($"TCP 198.18.0.{100 + i}:80", "wlc", 12, 340, 0, 45_600, 0,
            [new TopServer("198.18.0.11:80", "Route", 3, 30, 5, 9, 250, 0, 34_000, 0), new TopServer("198.18.0.12:80", "Masq", 0, 0, 5, 0, 0, 0, 0, 0)]))],
        checkerDown ? [new TopChecker("198.18.0.100:80", "198.18.0.12:80", "HTTP_GET", false, "connection refused")] : [],
        new Dictionary<string, string> { ["VI_1"] = "MASTER" });

    private static string Screen(TopSnapshot now, TopSnapshot? before, int width, int height)
    {
        var text = new StringWriter();
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(text),
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        console.Profile.Width = width;
        console.Profile.Height = height;
        console.Write(TopCommand.Render(now, before, height, null));
        return text.ToString();
    }

    [Test]
    public void A_screen_shows_the_header_services_servers_drops_per_second_checkers_and_vrrp()
    {
        DateTimeOffset t0 = DateTimeOffset.UnixEpoch;
        string screen = Screen(Snapshot(t0.AddSeconds(2), 120, 30, checkerDown: true), Snapshot(t0, 20, 10), 80, 24);
        string[] lines = screen.TrimEnd('\n').Split('\n');

        Assert.That(lines[0], Does.StartWith("udr 0.9.0 · eth0,eth1 · up 1:02:03 · conns 40/1,048,576 · VRRP VI_1 MASTER"));
        Assert.That(lines, Has.Some.Contains("TCP 198.18.0.100:80").And.Contains("wlc"));
        Assert.That(lines, Has.Some.Match(@"-> 198\.18\.0\.11:80\s+Route\s+3\s+30\s+5\s+9\s+250\s+34\.0k"));
        Assert.That(screen, Does.Contain("Drops/s: tcp-not-syn 50 · ring-drops 10"), "(120 - 20) / 2 s and (30 - 10) / 2 s");
        Assert.That(screen, Does.Contain("Checkers: 0 up, 1 down: 198.18.0.12:80 HTTP_GET (connection refused)"));
        Assert.That(lines.Where(l => l.Length > 80), Is.Empty);
    }

    [Test]
    public void Rows_beyond_the_terminals_height_are_counted_not_drawn_and_the_first_screen_shows_totals()
    {
        string screen = Screen(Snapshot(DateTimeOffset.UnixEpoch, 7, 0, services: 10), null, 80, 24);
        string[] lines = screen.TrimEnd('\n').Split('\n');

        Assert.That(lines, Has.Length.LessThanOrEqualTo(24), screen);
        Assert.That(screen, Does.Contain("… 14 more"), "30 rows, 16 drawn");
        Assert.That(screen, Does.Contain("Drops (total): tcp-not-syn 7"));
        Assert.That(Screen(Snapshot(DateTimeOffset.UnixEpoch, 7, 0, services: 10), null, 120, 40).TrimEnd('\n').Split('\n'),
            Has.Length.GreaterThan(lines.Length), "a taller terminal shows more");
    }

    [Test]
    public void The_snapshot_goes_through_json_and_anything_else_is_no_snapshot()
    {
        TopSnapshot snapshot = Snapshot(DateTimeOffset.UnixEpoch, 1, 2, checkerDown: true);
        TopSnapshot? back = TopSnapshot.FromJson(snapshot.ToJson());
        Assert.That(back, Is.Not.Null);
        Assert.That(back!.Services[0].Servers[0], Is.EqualTo(snapshot.Services[0].Servers[0]));
        Assert.That(back.Drops["tcp-not-syn"], Is.EqualTo(1));
        Assert.That(back.Vrrp["VI_1"], Is.EqualTo("MASTER"));
        Assert.That(TopSnapshot.FromJson("udr adm: no"), Is.Null);
    }
}
