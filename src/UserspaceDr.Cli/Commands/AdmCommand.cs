using System.Text;
using UserspaceDr.Admin;
using UserspaceDr.Admin.Control;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// `udr adm [--control PATH] ARGS...`: ipvsadm, against the running daemon. ARGS are ipvsadm's arguments, passed on
/// verbatim (Program.Main hands them over before System.CommandLine sees them); the daemon answers with ipvsadm's
/// output and exit status, which this prints and exits with. -R reads its rules from stdin here and sends the text.
/// -h and -v are answered locally, so they work without a daemon.
/// </summary>
internal static class AdmCommand
{
    public const string Name = "adm";

    /// <summary>What ipvsadm's messages call the program ("Try `udr adm -h' ...").</summary>
    private const string ProgramName = "udr adm";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public static int Run(ReadOnlySpan<string> args)
    {
        string path = ControlClient.DefaultPath;
        // --control is udr's own and comes first; everything after it belongs to ipvsadm (which has no --control).
        if (args.Length > 0 && args[0].StartsWith("--control=", StringComparison.Ordinal))
        {
            path = args[0]["--control=".Length..];
            args = args[1..];
        }
        else if (args.Length > 0 && args[0] == "--control")
        {
            if (args.Length < 2)
            {
                return Fail("--control needs a socket path");
            }
            path = args[1];
            args = args[2..];
        }
        if (path.Length == 0)
        {
            return Fail("--control needs a socket path");
        }
        string[] ipvsadmArgs = args.ToArray();

        IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(ipvsadmArgs, ProgramName);
        if (parsed.IsSuccess && parsed.Value.Kind == IpvsadmCommandKind.Help)
        {
            Write(Console.OpenStandardOutput(), IpvsadmPrinter.Usage(ProgramName));
            return 0;
        }
        if (parsed.IsSuccess && parsed.Value.Kind == IpvsadmCommandKind.Version)
        {
            Write(Console.OpenStandardOutput(), IpvsadmPrinter.VersionLine);
            return 0;
        }
        string stdin = "";
        if (parsed.IsSuccess && parsed.Value.Kind == IpvsadmCommandKind.Restore)
        {
            stdin = Console.In.ReadToEnd(); // ControlClient refuses a request over the socket's limit (1 MiB)
        }

        ControlResponse response;
        try
        {
            response = ControlClient.Send(path, new ControlRequest(ProgramName, [.. ipvsadmArgs], stdin), Timeout);
        }
        catch (ControlClientException e)
        {
            return Fail(e.Message);
        }
        Write(Console.OpenStandardOutput(), response.Stdout);
        Write(Console.OpenStandardError(), response.Stderr);
        return response.ExitCode;
    }

    private static void Write(Stream stream, string text)
    {
        using (stream)
        {
            stream.Write(Encoding.UTF8.GetBytes(text));
            stream.Flush();
        }
    }

    private static int Fail(string message)
    {
        Write(Console.OpenStandardError(), $"udr adm: {message}\n");
        return ExitCodes.Usage;
    }
}
