using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.TestSupport;

/// <summary>
/// The udr executable every test runs: artifacts/udr/udr, what `./build.sh build` publishes. Published here when it is
/// missing or older than a source file of src/, so that no test runs a daemon that is not the code under test.
/// </summary>
internal static class UdrBinary
{
    private static readonly Lock Publishing = new();
    private static readonly Lazy<string> WorldReadable = new(
        () => OperatingSystem.IsWindows() ? throw new PlatformNotSupportedException() : CopyWorldReadable(), LazyThreadSafetyMode.ExecutionAndPublication);

    public static string Directory => Path.Combine(RepositoryPaths.Root, "artifacts", "udr");

    public static string Executable => Path.Combine(Directory, "udr");

    /// <summary>The published executable, published first when it is missing or stale.</summary>
    public static string Ensure()
    {
        lock (Publishing)
        {
            if (!IsStale())
            {
                return Executable;
            }
            TestContext.Progress.WriteLine("publishing src/UserspaceDr.Cli to artifacts/udr (missing or older than the sources)");
            CommandResult publish = ProcessRunner.Run("dotnet",
                ["publish", "src/UserspaceDr.Cli/UserspaceDr.Cli.csproj", "-c", "Release", "-nologo", "-v", "quiet", "-o", Directory],
                TimeSpan.FromMinutes(10));
            Assert.That(publish.ExitCode, Is.Zero, () => $"dotnet publish failed: {publish}");
            Assert.That(File.Exists(Executable), Is.True, "dotnet publish did not produce artifacts/udr/udr");
            return Executable;
        }
    }

    /// <summary>
    /// A copy of the published daemon that any user can run, for the cases that run udr as an unprivileged user. The
    /// checkout may lie where such a user cannot reach (under /root, mode 0700), and the .NET host then cannot even
    /// resolve its own path (exit 133). The copy is made once per test run under /tmp and removed when the run ends.
    /// </summary>
    public static string EnsureWorldReadable() => WorldReadable.Value;

    private static bool IsStale()
    {
        if (!File.Exists(Executable))
        {
            return true;
        }
        // The project assemblies, not the apphost: publish leaves an unchanged apphost with its old time.
        DateTime published = System.IO.Directory.EnumerateFiles(Directory, "UserspaceDr.*.dll")
            .Concat(System.IO.Directory.EnumerateFiles(Directory, "udr.dll"))
            .Select(File.GetLastWriteTimeUtc).DefaultIfEmpty(DateTime.MinValue).Max();
        char separator = Path.DirectorySeparatorChar;
        return System.IO.Directory.EnumerateFiles(RepositoryPaths.Sources, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".cs", StringComparison.Ordinal) || f.EndsWith(".csproj", StringComparison.Ordinal))
            .Where(f => !f.Contains($"{separator}obj{separator}", StringComparison.Ordinal) && !f.Contains($"{separator}bin{separator}", StringComparison.Ordinal))
            .Any(f => File.GetLastWriteTimeUtc(f) > published);
    }

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string CopyWorldReadable()
    {
        string source = Path.GetDirectoryName(Ensure())!;
        const UnixFileMode Readable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        const UnixFileMode Executable = Readable | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        string target = System.IO.Directory.CreateTempSubdirectory("udr-tests-").FullName;
        File.SetUnixFileMode(target, Executable);
        foreach (string file in System.IO.Directory.EnumerateFiles(source))
        {
            string copy = Path.Combine(target, Path.GetFileName(file));
            File.Copy(file, copy);
            File.SetUnixFileMode(copy, (File.GetUnixFileMode(file) & UnixFileMode.UserExecute) != 0 ? Executable : Readable);
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                System.IO.Directory.Delete(target, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: a copy under /tmp left behind is harmless.
            }
        };
        return Path.Combine(target, "udr");
    }
}
