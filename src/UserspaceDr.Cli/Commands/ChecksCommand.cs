using System.CommandLine;
using System.Globalization;
using System.Text;
using UserspaceDr.Admin.Control;
using UserspaceDr.ControlPlane.Health;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// `udr checks [--control PATH]`: the running daemon's health checkers, one line each: the service, the real server,
/// the checker, up or down, consecutive failures, the last result and since when.
/// </summary>
internal static class ChecksCommand
{
    /// <summary>The program name a control request carries to ask for the listing (ipvsadm requests carry "udr adm").</summary>
    public const string Program = "udr checks";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public static Command Create()
    {
        var control = new Option<string>("--control") { Description = "the daemon's control socket", DefaultValueFactory = _ => ControlClient.DefaultPath };
        var command = new Command("checks", "list the running daemon's health checkers (udr run --config) and their state") { control };
        command.SetAction(parse =>
        {
            string path = parse.GetValue(control) ?? ControlClient.DefaultPath;
            ControlResponse response;
            try
            {
                response = ControlClient.Send(path, new ControlRequest(Program, [], ""), Timeout);
            }
            catch (ControlClientException e)
            {
                throw new UsageException(e.Message, e);
            }
            Console.Out.Write(response.Stdout);
            Console.Error.Write(response.Stderr);
            return response.ExitCode;
        });
        return command;
    }

    /// <summary>The daemon's answer: the table, or why there is none.</summary>
    public static ControlResponse Answer(HealthMonitor? monitor)
    {
        if (monitor is null)
        {
            return new ControlResponse(ExitCodes.Failure, "", "udr checks: this daemon runs no checkers (it was started with --rules, not --config)\n");
        }
        var text = new StringBuilder();
        text.AppendLine("Service                      Real server            Checker     State  Failures  Since                 Last result");
        foreach (CheckerStatus status in monitor.Status())
        {
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{status.Service,-28} {status.Server,-22} {status.Checker,-11} {(status.Up ? "up" : "down"),-6} {status.ConsecutiveFailures,8}  {status.Since.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}  {status.LastResult}");
        }
        return new ControlResponse(0, text.ToString(), "");
    }
}
