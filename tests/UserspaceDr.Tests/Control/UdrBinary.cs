using System.Diagnostics;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// The published daemon (artifacts/udr/udr, what ./build.sh build makes). Published here when it is missing or
/// older than the sources, so a lab test never runs a stale binary.
/// </summary>
internal static class UdrBinary
{
    private static readonly Lock Publishing = new();

    public static string Directory => Path.Combine(LabNetwork.RepositoryRoot, "artifacts", "udr");

    public static string Executable => Path.Combine(Directory, "udr");

    public static string Ensure()
    {
        lock (Publishing)
        {
            string dll = Path.Combine(Directory, "udr.dll");
            DateTime newestSource = new DirectoryInfo(Path.Combine(LabNetwork.RepositoryRoot, "src"))
                .EnumerateFiles("*.cs*", SearchOption.AllDirectories)
                .Where(f => !f.FullName.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal) &&
                            !f.FullName.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                .Max(f => f.LastWriteTimeUtc);
            if (File.Exists(Executable) && File.Exists(dll) && File.GetLastWriteTimeUtc(dll) >= newestSource)
            {
                return Executable;
            }
            TestContext.Progress.WriteLine("publishing src/UserspaceDr.Cli to artifacts/udr (missing or older than the sources)");
            var start = new ProcessStartInfo("dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = LabNetwork.RepositoryRoot,
            };
            foreach (string argument in (string[])["publish", "src/UserspaceDr.Cli/UserspaceDr.Cli.csproj", "-c", "Release", "-nologo", "-v", "quiet", "-o", Directory])
            {
                start.ArgumentList.Add(argument);
            }
            using Process process = Process.Start(start)!;
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail("dotnet publish did not finish within 10 minutes");
            }
            Assert.That(process.ExitCode, Is.Zero, () => $"dotnet publish failed: {output.Result}{error.Result}");
            return Executable;
        }
    }
}
