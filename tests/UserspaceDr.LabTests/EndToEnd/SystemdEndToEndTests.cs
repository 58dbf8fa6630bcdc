using System.Net.Sockets;
using System.Text;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// `udr run` as udr.service's <c>Type=notify</c> starts it: with <c>$NOTIFY_SOCKET</c> naming a datagram socket this
/// test listens on (as systemd's is), READY=1 comes only once the daemon serves (rings, nftables guard, control socket),
/// SIGHUP (ExecReload) gives RELOADING=1 then READY=1, SIGTERM STOPPING=1. With <c>$JOURNAL_STREAM</c> set each log line
/// carries its syslog level for journald. It runs under the unit's capability bounding set and no-new-privileges
/// (setpriv), and forwards real connections so.
/// </summary>
[TestFixture("afpacket")]
[TestFixture("xdp")]
[Category("Lab")]
[NonParallelizable]
public sealed class SystemdEndToEndTests(string backend) : EndToEndFixture
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    internal override EndToEndLab CreateLab(string python) => new EndToEndLab(python);

    [Test]
    public void Ready_comes_once_udr_serves_and_reload_and_stop_are_announced_with_journal_levels_in_the_log()
    {
        Lab.WriteRules("""
            -A -t 198.18.0.100:80 -s rr
            -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1

            """);
        string socketPath = Path.Combine(Lab.Directory, "notify.sock");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(socketPath));
        notify.ReceiveTimeout = (int)Patience.TotalMilliseconds;

        // Under udr.service's own limits: the capability bounding set its unit names (read from the unit, so the test
        // follows it) and no new privileges, as systemd would start it. The locked-memory limit stays this host's
        // (8 MiB here, which root cannot raise without SYS_RESOURCE): AF_XDP's UMEM needs IPC_LOCK from the unit.
        NamespacedProcess udr = Lab.StartLabCommand(LabHost.Lb, "udr", "setpriv", "--no-new-privs", $"--bounding-set=-all,{UnitCapabilities()}",
            "env", $"NOTIFY_SOCKET={socketPath}", "JOURNAL_STREAM=8:12345",
            UdrBinary.Executable, "run", "--interface", "eth0", "--rules", Lab.RulesPath, "--backend", backend, "--workers", "1",
            "--control", Lab.ControlPath);

        string ready = Receive(notify);
        Assert.That(udr.Output, Does.Contain("udr serving"), "READY=1 only after the daemon logged that it serves");
        Assert.That(ready, Does.StartWith("READY=1\nSTATUS=serving 1 service(s), 1 real server(s) on eth0\nMAINPID="));
        Assert.That(Lab.Adm("-L", "-n"), Does.Contain("198.18.0.100:80"), "the control socket answers once READY=1 came");
        Assert.That(File.ReadAllText($"/proc/{udr.Id}/status"), Does.Match(@"CapEff:\s+0000008000007400"),
            "only NET_BIND_SERVICE (10), NET_ADMIN (12), NET_RAW (13), IPC_LOCK (14) and BPF (39) are left (setpriv and env exec udr in place)");
        EndToEndSupport.AssertSplit(Lab.RunClient(TimeSpan.FromSeconds(60), "split", "20", "4", "30"), 20, new Dictionary<string, double> { ["rs1"] = 1.0 });

        udr.Signal(NamespacedProcess.SigHup);
        Assert.That(Receive(notify), Is.EqualTo("RELOADING=1"));
        Assert.That(Receive(notify), Does.StartWith("READY=1\n"));

        udr.Signal(NamespacedProcess.SigTerm);
        Assert.That(Receive(notify), Is.EqualTo("STOPPING=1"));
        Assert.That(udr.WaitForExit(Patience), Is.True);
        Assert.Multiple(() =>
        {
            Assert.That(udr.ExitCode, Is.Zero);
            // journald's levels: <6> information (the serving line), and no local timestamps (journald adds its own).
            Assert.That(udr.Output.Split('\n').Where(l => l.Contains("udr serving", StringComparison.Ordinal)).ToArray(),
                Has.Some.StartsWith("<6>"), udr.Output);
            Assert.That(udr.Output.Split('\n').Where(l => l.Length > 0), Has.All.Match("^<[0-7]>|^\\s"), "every line starts with its level");
        });
    }

    /// <summary>udr.service's CapabilityBoundingSet as setpriv writes it: "+net_raw,+net_admin,...".</summary>
    private static string UnitCapabilities() =>
        string.Join(',', UnitSetting("CapabilityBoundingSet").Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(c => "+" + c["CAP_".Length..].ToLowerInvariant()));

    /// <summary>A setting of udr.service, as its unit file writes it (read from the unit, so the test follows it).</summary>
    private static string UnitSetting(string name)
    {
        string unit = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "packaging", "systemd", "udr.service.in"));
        return unit.Split('\n').Single(l => l.StartsWith(name + "=", StringComparison.Ordinal))[(name.Length + 1)..].Trim();
    }

    private static string Receive(Socket socket)
    {
        var buffer = new byte[4096];
        int length = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
