using System.CommandLine;
using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;
using UserspaceDr.Admin.Control;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// `udr top [--control PATH] [--interval S] [--once]`: the running daemon at a glance, refreshed every second, as an
/// operator watches `ipvsadm -L -n --rate`: services and real servers with weights, active and inactive connections,
/// connections, packets and bytes per second (IPVS's estimator), the top drop reasons per second, ring drops,
/// checkers that are down, VRRP roles. Fits 80×24 and grows with the terminal (rows beyond its height are counted,
/// not drawn). q or Ctrl-C quits; --once prints one screen and exits (scripts, no terminal needed).
/// </summary>
internal static class TopCommand
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(5);

    public static Command Create()
    {
        var control = new Option<string>("--control") { Description = "the daemon's control socket", DefaultValueFactory = _ => ControlClient.DefaultPath };
        var interval = new Option<double>("--interval") { Description = "seconds between refreshes", DefaultValueFactory = _ => 1 };
        var once = new Option<bool>("--once") { Description = "print one screen (totals for the drop reasons) and exit" };
        var command = new Command("top", "a live view of the running daemon: services, servers, rates, drops, checkers, VRRP") { control, interval, once };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(control) ?? ControlClient.DefaultPath;
            double seconds = parse.GetValue(interval);
            if (seconds is < 0.1 or > 3600 || double.IsNaN(seconds))
            {
                throw new UsageException("--interval must be between 0.1 and 3600 seconds");
            }
            TopSnapshot first = Fetch(path) ?? throw new UsageException($"top: the daemon at {path} did not answer with a snapshot");
            if (parse.GetValue(once))
            {
                AnsiConsole.Write(Render(first, null, AnsiConsole.Profile.Height, null));
                return ExitCodes.Success;
            }
            Watch(path, first, TimeSpan.FromSeconds(seconds));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The daemon's answer to <see cref="TopSnapshot.Program"/>; a <see cref="UsageException"/> when there is no daemon.</summary>
    private static TopSnapshot? Fetch(string path)
    {
        ControlResponse response;
        try
        {
            response = ControlClient.Send(path, new ControlRequest(TopSnapshot.Program, [], ""), RequestTimeout);
        }
        catch (ControlClientException e)
        {
            throw new UsageException(e.Message, e);
        }
        return response.ExitCode == 0 ? TopSnapshot.FromJson(response.Stdout) : null;
    }

    private static void Watch(string path, TopSnapshot first, TimeSpan interval)
    {
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        AnsiConsole.AlternateScreen(() => AnsiConsole.Live(Render(first, null, AnsiConsole.Profile.Height, null)).Start(live =>
        {
            TopSnapshot before = first;
            while (!stop.IsCancellationRequested)
            {
                if (WaitOrQuit(interval, stop.Token))
                {
                    return;
                }
                string? problem = null;
                TopSnapshot now = before;
                try
                {
                    now = Fetch(path) ?? before;
                }
                catch (UsageException e)
                {
                    problem = e.Message; // the daemon went away: say so, and keep asking
                }
                live.UpdateTarget(Render(now, ReferenceEquals(now, before) ? null : before, AnsiConsole.Profile.Height, problem));
                before = now;
            }
        }));
    }

    /// <summary>Waits one interval; true when q was pressed or Ctrl-C came.</summary>
    private static bool WaitOrQuit(TimeSpan interval, CancellationToken stop)
    {
        DateTime until = DateTime.UtcNow + interval;
        while (DateTime.UtcNow < until)
        {
            if (stop.IsCancellationRequested)
            {
                return true;
            }
            if (!Console.IsInputRedirected && Console.KeyAvailable && Console.ReadKey(intercept: true).KeyChar is 'q' or 'Q')
            {
                return true;
            }
            Thread.Sleep(50);
        }
        return false;
    }

    /// <summary>
    /// One screen for <paramref name="height"/> rows: the header, the services table (as many rows as fit), the drop
    /// reasons per second since <paramref name="before"/> (totals without one), and the checkers that are down.
    /// </summary>
    internal static IRenderable Render(TopSnapshot now, TopSnapshot? before, int height, string? problem)
    {
        ArgumentNullException.ThrowIfNull(now);
        var lines = new List<IRenderable> { new Markup(Header(now, problem)) };

        var table = new Table { Border = TableBorder.Simple, Expand = true, ShowHeaders = true };
        table.AddColumn(new TableColumn("Service / server").NoWrap());
        table.AddColumn(new TableColumn("Fwd").NoWrap()); // a service's scheduler, a server's forwarding method
        foreach (string numeric in (string[])["Wt", "Active", "InAct", "Conn/s", "Pkt/s", "Bytes/s"])
        {
            table.AddColumn(new TableColumn(numeric).RightAligned());
        }
        // Rows left for the table: header line, table frame (4), drops and checkers lines (2).
        int room = Math.Max(2, height - 1 - 4 - 2);
        var rows = new List<string[]>();
        var downServers = new HashSet<string>(now.Checkers.Where(c => !c.Up).Select(c => c.Server), StringComparer.Ordinal);
        foreach (TopService service in now.Services)
        {
            rows.Add([$"[bold]{Markup.Escape(service.Name)}[/]", $"[dim]{Markup.Escape(service.Scheduler)}[/]", "", "", "",
                Compact(service.ConnectionsPerSecond), Compact(service.InPacketsPerSecond + service.OutPacketsPerSecond),
                Compact(service.InBytesPerSecond + service.OutBytesPerSecond)]);
            foreach (TopServer server in service.Servers)
            {
                string style = downServers.Contains(server.Name) ? "red" : server.Weight == 0 ? "dim" : "default";
                rows.Add([$"[{style}]  -> {Markup.Escape(server.Name)}[/]", server.Method, server.Weight.ToString(CultureInfo.InvariantCulture),
                    server.Active.ToString(CultureInfo.InvariantCulture), server.Inactive.ToString(CultureInfo.InvariantCulture),
                    Compact(server.ConnectionsPerSecond), Compact(server.InPacketsPerSecond + server.OutPacketsPerSecond),
                    Compact(server.InBytesPerSecond + server.OutBytesPerSecond)]);
            }
        }
        if (rows.Count == 0)
        {
            table.AddRow("[dim]no virtual services[/]", "", "", "", "", "", "", "");
        }
        int shown = rows.Count <= room ? rows.Count : room - 1;
        foreach (string[] row in rows.Take(shown))
        {
            table.AddRow(row);
        }
        if (shown < rows.Count)
        {
            table.AddRow($"[dim]… {rows.Count - shown} more[/]", "", "", "", "", "", "", ""); // a taller terminal shows them
        }
        lines.Add(table);
        lines.Add(new Markup(Drops(now, before)));
        lines.Add(new Markup(Checkers(now)));
        return new Rows(lines);
    }

    private static string Header(TopSnapshot now, string? problem)
    {
        TimeSpan up = TimeSpan.FromSeconds(now.UptimeSeconds);
        string vrrp = string.Join(" ", now.Vrrp.Select(v => $"{Markup.Escape(v.Key)} [{(v.Value == "MASTER" ? "green" : "yellow")}]{v.Value}[/]"));
        string header = string.Create(CultureInfo.InvariantCulture,
            $"[bold]udr[/] {Markup.Escape(now.Version.Split('+')[0])} · {Markup.Escape(string.Join(",", now.Interfaces))} · up {(int)up.TotalHours}:{up.Minutes:00}:{up.Seconds:00} · conns {now.Connections:N0}/{now.ConnectionCapacity:N0}");
        if (vrrp.Length > 0)
        {
            header += " · VRRP " + vrrp;
        }
        return problem is null ? header : header + $" · [red]{Markup.Escape(problem)}[/]";
    }

    /// <summary>The top drop reasons: per second since the last snapshot, or totals for the first one.</summary>
    private static string Drops(TopSnapshot now, TopSnapshot? before)
    {
        double seconds = before is null ? 0 : (now.Time - before.Time).TotalSeconds;
        bool rates = seconds > 0;
        IEnumerable<(string Name, double Value)> drops = now.Drops
            .Select(d => (d.Key, rates ? (d.Value - before!.Drops.GetValueOrDefault(d.Key)) / seconds : d.Value))
            .Append(("ring-drops", rates ? (now.RingDrops - before!.RingDrops) / seconds : now.RingDrops))
            .Append(("transmit-errors", rates ? (now.TransmitErrors - before!.TransmitErrors) / seconds : now.TransmitErrors));
        string[] top = [.. drops.Where(d => d.Value > 0).OrderByDescending(d => d.Value).Take(4)
            .Select(d => $"[yellow]{Markup.Escape(d.Name)}[/] {Compact((long)Math.Round(d.Value))}")];
        string label = rates ? "Drops/s" : "Drops (total)";
        return top.Length == 0 ? $"{label}: [green]none[/]" : $"{label}: {string.Join(" · ", top)}";
    }

    private static string Checkers(TopSnapshot now)
    {
        if (now.Checkers.Count == 0)
        {
            return "[dim]Checkers: none (udr run --config runs keepalived.conf's)[/]";
        }
        TopChecker[] down = [.. now.Checkers.Where(c => !c.Up)];
        string summary = $"Checkers: {now.Checkers.Count - down.Length} up, " + (down.Length == 0 ? "0 down" : $"[red]{down.Length} down[/]");
        return down.Length == 0 ? summary
            : summary + ": " + string.Join(" · ", down.Take(3).Select(c => Markup.Escape($"{c.Server} {c.Checker} ({c.LastResult})")));
    }

    /// <summary>A rate in at most six characters: 9999, 12.3k, 45.6M, 7.8G.</summary>
    private static string Compact(long value) => value switch
    {
        < 10_000 => value.ToString(CultureInfo.InvariantCulture),
        < 10_000_000 => (value / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        < 10_000_000_000 => (value / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        _ => (value / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + "G",
    };
}
