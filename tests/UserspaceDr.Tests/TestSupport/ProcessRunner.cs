using System.ComponentModel;
using System.Diagnostics;

namespace UserspaceDr.Tests.TestSupport;

/// <summary>The outcome of one program run by <see cref="ProcessRunner"/>.</summary>
internal sealed record ProcessResult(int ExitCode, string Output, string Error, bool TimedOut)
{
    /// <summary>Standard output followed by standard error, as a failure message shows them.</summary>
    public string Combined => Output + Error;

    public override string ToString() => $"exit {ExitCode}{(TimedOut ? " (timed out)" : "")}\n--- stdout\n{Output}--- stderr\n{Error}";
}

/// <summary>
/// The one way tests run a program to completion: an argument list (never a shell line), both streams captured, a time
/// limit after which the whole process tree is killed. A program that cannot be started gives exit 127, as a shell would.
/// </summary>
internal static class ProcessRunner
{
    public static ProcessResult Run(string program, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null, string? standardInput = null)
    {
        var startInfo = new ProcessStartInfo(program)
        {
            RedirectStandardInput = standardInput is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepositoryPaths.Root,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        foreach ((string name, string value) in environment ?? new Dictionary<string, string>())
        {
            startInfo.Environment[name] = value;
        }
        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new InvalidOperationException($"cannot start {program}");
        }
        catch (Win32Exception e)
        {
            return new ProcessResult(127, string.Empty, $"{program}: {e.Message}", TimedOut: false);
        }
        using (process)
        {
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> error = process.StandardError.ReadToEndAsync();
            if (standardInput is not null)
            {
                process.StandardInput.Write(standardInput);
                process.StandardInput.Close();
            }
            bool timedOut = !process.WaitForExit(timeout);
            if (timedOut)
            {
                process.Kill(entireProcessTree: true);
            }
            process.WaitForExit();
            return new ProcessResult(timedOut ? 124 : process.ExitCode, output.Result, error.Result, timedOut);
        }
    }

    public static ProcessResult Run(string program, params string[] arguments) => Run(program, arguments, TimeSpan.FromMinutes(10));
}
