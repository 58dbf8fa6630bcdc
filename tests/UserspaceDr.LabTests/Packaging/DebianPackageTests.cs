using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Packaging;

/// <summary>
/// `./build.sh deb` as an operator meets it, on this (throw-away) machine: the package passes lintian, installs with
/// dpkg, its units pass `systemd-analyze verify`, the installed udr prints its version and commit and runs the demo
/// lab, an upgrade keeps an edited conffile and swaps the binary, `dpkg -r` leaves only the configuration and
/// `dpkg -P` leaves nothing. A udr package this test did not install is never touched.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public sealed class DebianPackageTests
{
    private static readonly TimeSpan BuildPatience = TimeSpan.FromMinutes(5);

    // Everything the package puts on the machine.
    private static readonly string[] InstalledPaths =
    [
        "/usr/lib/udr", "/usr/sbin/udr", "/etc/udr", "/usr/share/doc/udr", "/usr/share/lintian/overrides/udr", "/usr/share/man/man8/udr.8.gz",
        "/lib/systemd/system/udr.service", "/lib/systemd/system/udr-node@.service", "/lib/systemd/system/udr-tunnel@.service",
    ];

    [Test]
    public void The_package_passes_lintian_installs_runs_the_demo_upgrades_and_removes_without_a_trace()
    {
        LabNetwork.RequireRoot();
        foreach (string tool in (string[])["dpkg-deb", "lintian", "systemd-analyze"])
        {
            Assert.That(Shell($"command -v {tool}").ExitCode, Is.Zero, $"the package test needs {tool} (./build.sh test installs it)");
        }
        Assert.That(Shell("dpkg-query -W -f='${Status}' udr 2>/dev/null | grep -q 'ok installed'").ExitCode, Is.Not.Zero,
            "a udr package is installed on this machine already: the test will not replace it");
        Assert.That(InstalledPaths.Where(Path.Exists), Is.Empty, "udr's paths are free before the test");

        CommandResult build = ProcessRunner.Run("bash", [Path.Combine(RepositoryPaths.Root, "build.sh"), "deb"], BuildPatience, RepositoryPaths.Root);
        Assert.That(build.ExitCode, Is.Zero, $"./build.sh deb (lintian --fail-on error included):\n{build.Output}\n{build.Error}");
        string deb = build.Output.Trim().Split('\n')[^1];
        Assert.That(File.Exists(deb), Is.True, $"./build.sh deb names its package last: '{deb}'");
        string upgrade = Path.Combine(Path.GetDirectoryName(deb)!, "udr_upgrade.deb");
        try
        {
            // The next version: the same files under a higher version number, as a rebuilt package would be.
            string unpacked = Path.Combine(Path.GetDirectoryName(deb)!, "upgrade-root");
            Require(Shell($"rm -rf {unpacked} && dpkg-deb -R {deb} {unpacked} && sed -i 's/^Version: \\(.*\\)$/Version: \\1+1/' {unpacked}/DEBIAN/control " +
                $"&& dpkg-deb --root-owner-group -Zxz -z1 --build {unpacked} {upgrade} >/dev/null && rm -rf {unpacked}"));
            string version = Require(Shell($"dpkg-deb -f {deb} Version")).Trim();

            Require(Shell($"dpkg -i {deb}"));
            string printed = Require(Shell("/usr/sbin/udr --version")).Trim();
            Assert.That(printed, Does.Match($"^{System.Text.RegularExpressions.Regex.Escape(version)}\\+[0-9a-f]{{40}}$"), "udr --version: the version and the commit");
            foreach (string unit in (string[])["udr.service", "udr-node@.service", "udr-tunnel@.service"])
            {
                CommandResult verify = Shell($"systemd-analyze verify /lib/systemd/system/{unit} 2>&1 | grep -v ldirectord; exit ${{PIPESTATUS[0]}}");
                Assert.That(verify.ExitCode, Is.Zero, $"systemd-analyze verify {unit}:\n{verify.Output}");
                Assert.That(verify.Output.Trim(), Is.Empty, $"systemd-analyze verify {unit} has nothing to say");
            }
            Assert.That(File.ReadAllText("/lib/systemd/system/udr.service"), Does.Contain("ExecStart=/usr/sbin/udr run $UDR_OPTIONS"));

            // The demo lab (udr balancing real HTTP traffic by DR, IP-in-IP and NAT) on the installed binary.
            CommandResult demo = ProcessRunner.Run("bash", [Path.Combine(RepositoryPaths.Root, "tools", "demo.sh")], BuildPatience, RepositoryPaths.Root,
                new Dictionary<string, string> { ["UDR"] = "/usr/sbin/udr" });
            Assert.That(demo.ExitCode, Is.Zero, $"the demo on /usr/sbin/udr:\n{demo.Output}\n{demo.Error}");
            Assert.That(demo.Output, Does.Contain("intact (sha256"));
            Assert.That(demo.Output, Does.Not.Contain("(request failed)"));
            Assert.That(demo.Output, Does.Contain("198.19.1.13:80"), "the NAT server took part");

            // Upgrade: an operator's edit of a conffile stays; the binary is the new package's.
            File.AppendAllText("/etc/udr/udr.rules", "# kept across the upgrade\n");
            Require(Shell($"dpkg -i {upgrade}"));
            Assert.That(Require(Shell("dpkg-query -W -f='${Version}' udr")), Is.EqualTo(version + "+1"));
            Assert.That(File.ReadAllText("/etc/udr/udr.rules"), Does.Contain("# kept across the upgrade"));
            Assert.That(Require(Shell("/usr/sbin/udr --version")).Trim(), Is.EqualTo(printed));

            Require(Shell("dpkg -r udr"));
            Assert.That(InstalledPaths.Where(Path.Exists), Is.EquivalentTo(new[] { "/etc/udr" }), "dpkg -r leaves the configuration only");
            Require(Shell("dpkg -P udr"));
            Assert.That(InstalledPaths.Where(Path.Exists), Is.Empty, "dpkg -P leaves nothing");
            Assert.That(Shell("dpkg-query -W udr 2>/dev/null | grep -q udr").ExitCode, Is.Not.Zero, "dpkg forgot the package");
        }
        finally
        {
            Shell("dpkg -P udr");
            File.Delete(upgrade);
        }
    }

    private static CommandResult Shell(string command) => ProcessRunner.Run("bash", ["-c", command], BuildPatience, RepositoryPaths.Root);

    private static string Require(CommandResult result)
    {
        Assert.That(result.ExitCode, Is.Zero, $"{result.Output}\n{result.Error}");
        return result.Output;
    }
}
