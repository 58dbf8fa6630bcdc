using UserspaceDr.Linux.Host;

namespace UserspaceDr.ControlPlane.Health;

/// <summary>
/// How keepalived.conf's scripts run (misc_path, notify_up/down, quorum_up/down): no shell, the words split at
/// spaces (a quoted value in the file is one word there), the first the program; killed after <c>timeout</c>.
/// </summary>
public static class Scripts
{
    public static Task<CommandResult> RunAsync(string script, TimeSpan timeout, CancellationToken cancellation)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(script);
        string[] words = script.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return CommandRunner.RunAsync(new CommandRequest(words[0], words[1..], timeout), cancellation);
    }

    /// <summary>The program a script line runs (for messages).</summary>
    public static string Program(string script) => script.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
}
