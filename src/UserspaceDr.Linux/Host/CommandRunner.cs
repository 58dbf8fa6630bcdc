using System.ComponentModel;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;

namespace UserspaceDr.Linux.Host;

/// <summary>The outcome of one external command; <see cref="TimedOut"/> when it was killed at its time limit (exit 124).</summary>
public sealed record CommandResult(int ExitCode, string Output, string Error, bool TimedOut = false)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Standard output followed by standard error, as a failure message shows them.</summary>
    public string Combined => Output + Error;

    public override string ToString() => $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")}\n--- stdout\n{Output}--- stderr\n{Error}";
}

/// <summary>What to run and how: an argument list (never a shell line), a time limit, and optionally input, a directory, variables.</summary>
public sealed record CommandRequest(string File, IReadOnlyList<string> Arguments, TimeSpan Timeout)
{
    public string? StandardInput { get; init; }

    public string? WorkingDirectory { get; init; }

    public IReadOnlyDictionary<string, string>? Environment { get; init; }
}

/// <summary>
/// The one way udr runs a program (ip, ethtool, nft, modprobe; the tests' tools too): an argument list, both streams
/// captured, a time limit after which the whole process tree is killed, tools in the C locale.
/// </summary>
public static class CommandRunner
{
    private static readonly TimeSpan HostToolLimit = TimeSpan.FromSeconds(15);

    /// <summary>Runs a host tool; a missing program gives exit code 127 and a message, never an exception.</summary>
    public static CommandResult Run(string file, params string[] arguments) => Run(new CommandRequest(file, arguments, HostToolLimit));

    /// <summary>As <see cref="Run(string, string[])"/>, writing <paramref name="standardInput"/> to the program first (`nft -f -`).</summary>
    public static CommandResult RunWithInput(string file, string? standardInput, params string[] arguments) =>
        Run(new CommandRequest(file, arguments, HostToolLimit) { StandardInput = standardInput });

    public static CommandResult Run(CommandRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!TryStart(request, out Process? process, out CommandResult? failed))
        {
            return failed;
        }
        using (process)
        {
            (Task<string> output, Task<string> error) = Collect(process, request);
            if (!process.WaitForExit(request.Timeout))
            {
                return Killed(process, request, output, error);
            }
            process.WaitForExit();
            return new CommandResult(process.ExitCode, output.Result, error.Result);
        }
    }

    /// <summary>
    /// As <see cref="Run(CommandRequest)"/> without a thread waiting on it (scripts a daemon runs: checkers, notifiers).
    /// Cancelling kills the process tree as the time limit does.
    /// </summary>
    public static async Task<CommandResult> RunAsync(CommandRequest request, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (!TryStart(request, out Process? process, out CommandResult? failed))
        {
            return failed;
        }
        using (process)
        {
            (Task<string> output, Task<string> error) = Collect(process, request);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            limit.CancelAfter(request.Timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return Killed(process, request, output, error);
            }
            return new CommandResult(process.ExitCode, await output.ConfigureAwait(false), await error.ConfigureAwait(false));
        }
    }

    private static bool TryStart(CommandRequest request, [NotNullWhen(true)] out Process? process, [NotNullWhen(false)] out CommandResult? failed)
    {
        var startInfo = new ProcessStartInfo(request.File)
        {
            RedirectStandardInput = request.StandardInput is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (request.WorkingDirectory is not null)
        {
            startInfo.WorkingDirectory = request.WorkingDirectory;
        }
        foreach (string argument in request.Arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        // Tools print in the C locale, so that what is parsed does not depend on the operator's language.
        startInfo.Environment["LC_ALL"] = "C";
        foreach ((string name, string value) in request.Environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }
        try
        {
            process = Process.Start(startInfo) ?? throw new HostException($"could not start {request.File}");
            failed = null;
            return true;
        }
        catch (Win32Exception e)
        {
            process = null;
            failed = new CommandResult(127, string.Empty, $"{request.File}: {e.Message}");
            return false;
        }
    }

    private static (Task<string> Output, Task<string> Error) Collect(Process process, CommandRequest request)
    {
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (request.StandardInput is not null)
        {
            process.StandardInput.Write(request.StandardInput);
            process.StandardInput.Close();
        }
        return (output, error);
    }

    private static CommandResult Killed(Process process, CommandRequest request, Task<string> output, Task<string> error)
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit();
        return new CommandResult(124, output.Result,
            $"{error.Result}{request.File} did not finish within {request.Timeout.TotalSeconds} s", TimedOut: true);
    }

    /// <summary>Runs the command and returns its output; throws a <see cref="HostException"/> with its error when it fails.</summary>
    public static string RunChecked(string file, params string[] arguments)
    {
        CommandResult result = Run(file, arguments);
        if (!result.Succeeded)
        {
            string detail = (result.Error.Trim().Length > 0 ? result.Error : result.Output).Trim();
            throw new HostException($"{file} {string.Join(' ', arguments)} failed (exit {result.ExitCode}): {detail}");
        }
        return result.Output;
    }
}
