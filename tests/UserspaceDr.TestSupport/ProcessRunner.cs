using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.TestSupport;

/// <summary>
/// How tests run a program to completion: udr's own <see cref="CommandRunner"/>, from the repository root unless told
/// otherwise, with the time limit a test names (ten minutes when it names none).
/// </summary>
internal static class ProcessRunner
{
    public static CommandResult Run(string program, IEnumerable<string> arguments, TimeSpan timeout,
        string? workingDirectory = null, IReadOnlyDictionary<string, string>? environment = null, string? standardInput = null) =>
        CommandRunner.Run(new CommandRequest(program, [.. arguments], timeout)
        {
            WorkingDirectory = workingDirectory ?? RepositoryPaths.Root,
            Environment = environment,
            StandardInput = standardInput,
        });

    public static CommandResult Run(string program, params string[] arguments) => Run(program, arguments, TimeSpan.FromMinutes(10));
}
