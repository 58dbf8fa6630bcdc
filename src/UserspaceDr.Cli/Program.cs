using System.CommandLine;
using UserspaceDr.Cli.Commands;

namespace UserspaceDr.Cli;

/// <summary>The `udr` executable: one binary for the daemon, offline replay, administration and node setup.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == AdmCommand.Name)
        {
            // ipvsadm's arguments go to the daemon untouched: System.CommandLine never sees them.
            return AdmCommand.Run(args.AsSpan(1));
        }
        var root = new RootCommand("udr: a user-space IPVS-style layer-4 load balancer (DR, NAT, IP-in-IP) on raw AF_PACKET sockets")
        {
            RunCommand.Create(),
            ChecksCommand.Create(),
            TopCommand.Create(),
            ReplayCommand.Create(),
            NodeCommand.Create(),
            PreflightCommand.Create(),
            // Listed for --help only; Main hands "adm" and everything after it to AdmCommand first.
            new Command(AdmCommand.Name, "ipvsadm against the running daemon: udr adm [--control PATH] IPVSADM-ARGS..."),
        };
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
            {
                Console.Error.WriteLine($"udr: {error.Message}");
            }
            Console.Error.WriteLine("Try 'udr --help'.");
            return ExitCodes.Usage;
        }
        try
        {
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"udr: {e.Message}");
            return ExitCodes.Usage;
        }
    }
}

public static class ExitCodes
{
    public const int Success = 0;
    public const int Failure = 1;
    /// <summary>Bad configuration or command-line input; nothing was applied.</summary>
    public const int Usage = 2;
}

/// <summary>Bad input from the operator: reported as one clear line, exit code 2, nothing applied.</summary>
public sealed class UsageException : Exception
{
    public UsageException(string message) : base(message)
    {
    }

    public UsageException()
    {
    }

    public UsageException(string message, Exception inner) : base(message, inner)
    {
    }
}
