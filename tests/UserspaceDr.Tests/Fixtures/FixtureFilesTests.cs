using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Fixtures;

/// <summary>The fixture files themselves: complete, documented, small, and exactly what the generator writes.</summary>
public class FixtureFilesTests
{
    private static readonly string[] Suffixes = [".pcap", ".expected.pcap", ".rules", ".md"];

    [Test]
    public void Every_fixture_has_its_four_files_and_every_capture_is_in_the_catalog()
    {
        string directory = FixtureCatalog.PcapsDirectory;
        foreach (FixtureCase fixture in FixtureCatalog.All)
        {
            foreach (string suffix in Suffixes)
            {
                Assert.That(File.Exists(Path.Combine(directory, fixture.Name + suffix)), Is.True, $"{fixture.Name}{suffix}");
            }
        }
        string[] inputs = [.. Directory.GetFiles(directory, "*.pcap")
            .Select(Path.GetFileName)
            .Where(n => !n!.EndsWith(".expected.pcap", StringComparison.Ordinal))
            .Select(n => n![..^".pcap".Length])];
        Assert.That(inputs, Is.EquivalentTo(FixtureCatalog.All.Select(f => f.Name)), "pcaps/*.pcap and the test catalog list the same fixtures");
    }

    [Test]
    public void Each_fixture_documents_the_replay_command_it_needs()
    {
        string readme = File.ReadAllText(Path.Combine(FixtureCatalog.PcapsDirectory, "README.md"));
        foreach (FixtureCase fixture in FixtureCatalog.All)
        {
            string doc = File.ReadAllText(FixtureCatalog.PathOf(fixture.Name, ".md"));
            string command = doc.Split('\n').Single(l => l.StartsWith("udr replay ", StringComparison.Ordinal));
            string expected = $"udr replay --rules pcaps/{fixture.Name}.rules --in pcaps/{fixture.Name}.pcap --out {fixture.Name}.out.pcap " +
                FixtureCatalog.ReplayFlags(fixture);
            Assert.That(command, Is.EqualTo(expected), $"{fixture.Name}.md");
            foreach ((Core.Forwarding.FrameReason reason, int count) in fixture.Reasons)
            {
                Assert.That(doc, Does.Contain($"| `{Core.Forwarding.FrameReasons.Name(reason)}` | {count} |"), $"{fixture.Name}.md documents the reason count");
            }
            Assert.That(readme, Does.Contain($"[{fixture.Name}]({fixture.Name}.md)"), "README.md lists the fixture");
        }
    }

    [Test]
    public void Committed_captures_stay_small()
    {
        long total = Directory.GetFiles(FixtureCatalog.PcapsDirectory, "*.pcap").Sum(f => new FileInfo(f).Length);
        Assert.That(total, Is.LessThan(1_000_000), "pcaps/*.pcap in bytes");
    }

    /// <summary>
    /// Runs the generator into a temporary directory and compares every file with the committed one, byte for byte:
    /// fixed clock and seeds mean regenerating never changes a fixture unless the generator changed.
    /// </summary>
    [Test]
    public void Regenerating_the_fixtures_gives_the_committed_bytes()
    {
        string root = RepositoryPaths.Root;
        string output = Path.Combine(Path.GetTempPath(), "udr-pcapgen-" + Guid.NewGuid().ToString("N"));
        try
        {
            string dll = Path.Combine(root, "tools", "UserspaceDr.PcapGen", "bin", "Release", "net10.0", "UserspaceDr.PcapGen.dll");
            (int exitCode, string log) = File.Exists(dll)
                ? Run("dotnet", [dll, output], root)
                : Run("dotnet", ["run", "-c", "Release", "--project", Path.Combine(root, "tools", "UserspaceDr.PcapGen"), "--", output], root);
            Assert.That(exitCode, Is.Zero, log);
            string[] generated = [.. Directory.GetFiles(output).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
            string[] committed = [.. Directory.GetFiles(FixtureCatalog.PcapsDirectory).Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
            Assert.That(generated, Is.EqualTo(committed), "the same set of files");
            foreach (string name in generated)
            {
                Assert.That(File.ReadAllBytes(Path.Combine(output, name)), Is.EqualTo(File.ReadAllBytes(Path.Combine(FixtureCatalog.PcapsDirectory, name))),
                    $"{name} regenerated differs from pcaps/{name}: run ./build.sh pcaps and commit, or find the nondeterminism");
            }
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    internal static (int ExitCode, string Output) Run(string program, IEnumerable<string> arguments, string workingDirectory, int timeoutMs = 300_000)
    {
        CommandResult result = ProcessRunner.Run(program, arguments, TimeSpan.FromMilliseconds(timeoutMs), workingDirectory,
            new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["DOTNET_NOLOGO"] = "1" });
        Assert.That(result.TimedOut, Is.False, () => $"{program} {string.Join(' ', arguments)} did not finish in {timeoutMs / 1000} s");
        return (result.ExitCode, result.Combined);
    }
}
