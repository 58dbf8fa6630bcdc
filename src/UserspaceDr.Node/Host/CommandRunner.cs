using System.ComponentModel;
using System.Diagnostics;

namespace UserspaceDr.Node.Host;

/// <summary>The outcome of one external command.</summary>
public sealed record CommandResult(int ExitCode, string Output, string Error)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>Runs host tools (ip, ethtool, nft) with an argument list (never through a shell) and a time limit.</summary>
public static class CommandRunner
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(15);

    /// <summary>Runs <paramref name="file"/>; a missing program gives exit code 127 and a message, never an exception.</summary>
    public static CommandResult Run(string file, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        // Tools print in the C locale, so that what is parsed does not depend on the operator's language.
        startInfo.Environment["LC_ALL"] = "C";
        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new NodeException($"could not start {file}");
        }
        catch (Win32Exception e)
        {
            return new CommandResult(127, string.Empty, $"{file}: {e.Message}");
        }
        using (process)
        {
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Limit))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                return new CommandResult(124, output.Result, $"{file} did not finish within {Limit.TotalSeconds} s");
            }
            process.WaitForExit();
            return new CommandResult(process.ExitCode, output.Result, error.Result);
        }
    }

    /// <summary>Runs the command and returns its output; throws a <see cref="NodeException"/> with its error when it fails.</summary>
    public static string RunChecked(string file, params string[] arguments)
    {
        CommandResult result = Run(file, arguments);
        if (!result.Succeeded)
        {
            string detail = (result.Error.Trim().Length > 0 ? result.Error : result.Output).Trim();
            throw new NodeException($"{file} {string.Join(' ', arguments)} failed (exit {result.ExitCode}): {detail}");
        }
        return result.Output;
    }
}
