using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.TestSupport;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// A <see cref="LabNetwork"/> with real servers running on rs1 and rs2 (and, with the private segment's NAT servers,
/// on rs3 and rs4): an HTTP server on port 80 (index.html = the server's name, big.bin = 10 MiB of random bytes,
/// different on each server, so a download's hash tells who sent it), a UDP echo on port 5353 that prefixes its
/// name, and with the NAT servers also a TCP sink on port 9000. rs1/rs2 listen on the VIP (direct routing and
/// tunnelling deliver the client's packet unchanged); rs3/rs4 on their own address (NAT rewrites the destination).
/// One lab serves a fixture; what a test starts (daemon, captures, clients) is the test's own and ends with
/// <see cref="EndTest"/>; everything else, the namespaces and the working directory go away with <see cref="Dispose"/>.
/// </summary>
internal sealed class EndToEndLab : IDisposable
{
    public const int BigFileLength = 10 * 1024 * 1024;

    private static readonly TimeSpan ServerPatience = TimeSpan.FromSeconds(30);
    private readonly List<IDisposable> _servers = [];
    private readonly List<IDisposable> _owned = [];
    private readonly Stopwatch _clock = new();
    private int _files;
    private readonly Dictionary<string, string> _bigFileHashes = [];

    /// <param name="python">The interpreter that runs the servers and clients.</param>
    /// <param name="withNatServers">Also serve from rs3 and rs4 on the private segment.</param>
    /// <param name="balancerPair">Two balancers, Lb and Lb2, with the VIP and the NAT gateway left to VRRP.</param>
    public EndToEndLab(string python, bool withNatServers = false, bool balancerPair = false, bool ecmp = false)
    {
        Python = python;
        WithNatServers = withNatServers;
        RealServers = withNatServers ? [LabHost.Rs1, LabHost.Rs2, LabHost.Rs3, LabHost.Rs4] : [LabHost.Rs1, LabHost.Rs2];
        Network = new LabNetwork(bareServers: false, balancerPair, ecmp);
        try
        {
            Directory = Path.Combine(Path.GetTempPath(), "udr-e2e-" + Network.Prefix);
            System.IO.Directory.CreateDirectory(Directory);
            LabScripts.CopyTo(Directory);
            foreach (LabHost server in RealServers)
            {
                AddWebRoot(server);
            }
            ClientMac = Network.MacAddressOf(LabHost.Client);
            LbMac = Network.MacAddressOf(LabHost.Lb);
            Rs1Mac = Network.MacAddressOf(LabHost.Rs1);
            Rs2Mac = Network.MacAddressOf(LabHost.Rs2);
            if (withNatServers)
            {
                Rs3Mac = Network.MacAddressOf(LabHost.Rs3);
                Rs4Mac = Network.MacAddressOf(LabHost.Rs4);
                LbPrivateMac = Network.MacAddressOf(LabHost.Lb, "eth1");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public LabNetwork Network { get; }

    /// <summary>The balancers: Lb, and Lb2 in a pair.</summary>
    public IReadOnlyList<LabHost> Balancers =>
        Network.Ecmp ? [LabHost.Lb, LabHost.Lb2, LabHost.Lb3] : Network.BalancerPair ? [LabHost.Lb, LabHost.Lb2] : [LabHost.Lb];

    /// <summary>The hosts that run servers: rs1 and rs2, and rs3 and rs4 with the NAT servers.</summary>
    public IReadOnlyList<LabHost> RealServers { get; }

    public bool WithNatServers { get; }

    /// <summary>Where a real server's services listen: the VIP on rs1/rs2, the server's own address on rs3/rs4.</summary>
    public static string ListenAddress(LabHost server) => server switch
    {
        LabHost.Rs3 => LabNetwork.Rs3Address,
        LabHost.Rs4 => LabNetwork.Rs4Address,
        _ => LabNetwork.Vip,
    };

    /// <summary>The Python interpreter (an absolute path) that runs servers and clients.</summary>
    public string Python { get; }

    /// <summary>The lab's working directory: scripts, web roots, rules, captures.</summary>
    public string Directory { get; } = "";

    public string RulesPath => Path.Combine(Directory, "udr.rules");

    public MacAddress ClientMac { get; }
    public MacAddress LbMac { get; }
    public MacAddress Rs1Mac { get; }
    public MacAddress Rs2Mac { get; }
    public MacAddress Rs3Mac { get; }
    public MacAddress Rs4Mac { get; }

    /// <summary>The balancer's MAC on the private segment (eth1), where NAT servers send their replies.</summary>
    public MacAddress LbPrivateMac { get; }

    public MacAddress MacOf(string serverName) => serverName switch
    {
        "rs1" => Rs1Mac,
        "rs2" => Rs2Mac,
        "rs3" => Rs3Mac,
        "rs4" => Rs4Mac,
        _ => throw new ArgumentOutOfRangeException(nameof(serverName), serverName, null),
    };

    /// <summary>
    /// The web root of <paramref name="host"/> (a directory named after it): index.html holding its name and a big.bin
    /// of random bytes of its own, so a download's hash tells who sent it. Made for every real server; a test that
    /// serves from another host (the balancer itself) adds its root.
    /// </summary>
    public void AddWebRoot(LabHost host)
    {
        string name = LabNetwork.HostName(host);
        string root = Path.Combine(Directory, name);
        System.IO.Directory.CreateDirectory(root);
        File.WriteAllText(Path.Combine(root, "index.html"), name);
        byte[] big = RandomNumberGenerator.GetBytes(BigFileLength);
        File.WriteAllBytes(Path.Combine(root, "big.bin"), big);
        _bigFileHashes[Convert.ToHexStringLower(SHA256.HashData(big))] = name;
    }

    /// <summary>The server whose big.bin has this SHA-256 (lowercase hex), or null when none has.</summary>
    public string? ServerWithBigFile(string sha256) => _bigFileHashes.GetValueOrDefault(sha256);

    /// <summary>Writes a progress line with the time since the test began (CI logs show where time goes).</summary>
    public void Step(string what) =>
        TestContext.Progress.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  [{_clock.Elapsed.TotalSeconds,6:F1}s] {what}"));

    /// <summary>Starts the servers on every real server and returns once all listen.</summary>
    public void StartServers()
    {
        var started = new List<(NamespacedProcess Process, string ReadyLine)>();
        foreach (LabHost server in RealServers)
        {
            string name = LabNetwork.HostName(server);
            string address = ListenAddress(server);
            started.Add((Server(NamespacedProcess.Start(Network.Namespace(server), $"http server on {name}", Directory, false,
                WebServerCommand(name, address))), "Serving HTTP"));
            started.Add((Server(NamespacedProcess.Start(Network.Namespace(server), $"udp echo on {name}", Directory, false,
                Python, "-u", Path.Combine(Directory, LabScripts.UdpEchoFile), name, address)), "echo listening"));
            if (WithNatServers)
            {
                started.Add((Server(NamespacedProcess.Start(Network.Namespace(server), $"tcp sink on {name}", Directory, false,
                    Python, "-u", Path.Combine(Directory, LabScripts.TcpSinkFile), name, address)), "sink listening"));
            }
        }
        // Started together, awaited together: each interpreter takes a moment to come up.
        foreach ((NamespacedProcess process, string readyLine) in started)
        {
            if (process.WaitForLine(l => l.StartsWith(readyLine, StringComparison.Ordinal), ServerPatience) == null)
            {
                throw new InvalidOperationException($"{process} did not start: {process.Output}");
            }
        }
    }

    /// <summary>
    /// A web server on <paramref name="server"/> for the running test only (ended with it, or by the test to play a
    /// failed server), serving the host's web root on every address: the VIP for the clients, the server's own
    /// address for the balancer's health checks (or only <paramref name="bind"/>).
    /// </summary>
    public NamespacedProcess StartWebServer(LabHost server, string bind = "0.0.0.0")
    {
        string name = LabNetwork.HostName(server);
        NamespacedProcess process = Own(NamespacedProcess.Start(Network.Namespace(server), $"web server on {name}", Directory, false,
            WebServerCommand(name, bind)));
        if (process.WaitForLine(l => l.StartsWith("Serving HTTP", StringComparison.Ordinal), ServerPatience) == null)
        {
            throw new InvalidOperationException($"{process} did not start: {process.Output}");
        }
        Step($"web server on {name} listening");
        return process;
    }

    /// <summary>tools/lab/web_server.py serving <paramref name="name"/>'s web root on <paramref name="address"/>, port 80.</summary>
    private string[] WebServerCommand(string name, string address) =>
        [Python, "-u", Path.Combine(Directory, LabScripts.WebServerFile), Path.Combine(Directory, name), address];

    /// <summary>
    /// One of the lab's programs (tools/lab) on <paramref name="server"/> for the running test only; returns once it
    /// printed <paramref name="readyLine"/>.
    /// </summary>
    public NamespacedProcess StartLabProgram(LabHost server, string readyLine, string file, params string[] arguments)
    {
        string name = LabNetwork.HostName(server);
        NamespacedProcess process = Own(NamespacedProcess.Start(Network.Namespace(server), $"{file} on {name}", Directory, false,
            [Python, "-u", Path.Combine(Directory, file), .. arguments]));
        if (process.WaitForLine(l => l.StartsWith(readyLine, StringComparison.Ordinal), ServerPatience) == null)
        {
            throw new InvalidOperationException($"{process} did not start: {process.Output}");
        }
        Step($"{file} on {name} ready");
        return process;
    }

    /// <summary>
    /// Debian's BIRD on <paramref name="host"/> with <paramref name="config"/> (written to bird-HOST.conf in the lab's
    /// directory), for the running test only; returns its control socket, for birdc. Ignores the test without bird2.
    /// </summary>
    public string StartBird(LabHost host, string config)
    {
        Assume.That(File.Exists("/usr/sbin/bird"), Is.True, "bird2 is not installed (./build.sh test installs it)");
        string name = LabNetwork.HostName(host);
        string path = Path.Combine(Directory, $"bird-{name}.conf");
        string socket = Path.Combine(Directory, $"bird-{name}.ctl");
        File.WriteAllText(path, config);
        StartLabCommand(host, "bird", "bird", "-f", "-c", path, "-s", socket, "-P", Path.Combine(Directory, $"bird-{name}.pid"));
        return socket;
    }

    /// <summary>
    /// keepalived (in the foreground, logging to the console) on <paramref name="host"/> with <paramref name="config"/>,
    /// its three pid files named <c>NAME-keepalived.pid</c>, <c>NAME-vrrp.pid</c>, <c>NAME-checkers.pid</c> in the
    /// lab's directory. Pid files a killed keepalived left are removed first, as a boot clears /run: keepalived refuses
    /// to start while a pid file names a live process (kill(pid, 0)), and with pid_max 32,768 a full test run reuses pids,
    /// thread ids included, so a stale file now and then named one (the last CI failure: lb2's keepalived never started).
    /// </summary>
    public NamespacedProcess StartKeepalived(LabHost host, string config, string name)
    {
        string[] pidFiles = [.. ((string[])["keepalived", "vrrp", "checkers"]).Select(daemon => KeepalivedPidFile(name, daemon))];
        foreach (string pidFile in pidFiles)
        {
            File.Delete(pidFile);
        }
        return StartLabCommand(host, "keepalived", "/usr/sbin/keepalived", "-n", "-l", "-D", "-P", "-f", config,
            "-p", pidFiles[0], "-r", pidFiles[1], "-c", pidFiles[2]);
    }

    /// <summary>Where <see cref="StartKeepalived"/>'s keepalived called <paramref name="name"/> writes the pid of <paramref name="daemon"/> (keepalived, vrrp, checkers).</summary>
    public string KeepalivedPidFile(string name, string daemon) => Path.Combine(Directory, $"{name}-{daemon}.pid");

    /// <summary>A program on <paramref name="host"/>, run from the lab's directory, for the running test only.</summary>
    public NamespacedProcess StartLabCommand(LabHost host, string name, params string[] command) =>
        Own(NamespacedProcess.Start(Network.Namespace(host), $"{name} on {LabNetwork.HostName(host)}", Directory, false, command));

    /// <summary>
    /// Starts `udr node tunnel --vip VIP` on rs1 and rs2, the real servers' IP-in-IP endpoints (the kernel's ipip
    /// device where the module exists, else udr's user-space one), for as long as the lab lives.
    /// </summary>
    public void StartTunnelEndpoints() => StartTunnelEndpoints([], []);

    /// <summary>
    /// As <see cref="StartTunnelEndpoints()"/>, with more `udr node tunnel` arguments for rs1 and for rs2 (a GUE or GRE
    /// endpoint: `--tun-type gue --tun-port 6080`).
    /// </summary>
    public void StartTunnelEndpoints(string[] rs1Arguments, string[] rs2Arguments)
    {
        foreach ((LabHost server, string[] more) in ((LabHost, string[])[])[(LabHost.Rs1, rs1Arguments), (LabHost.Rs2, rs2Arguments)])
        {
            string name = LabNetwork.HostName(server);
            NamespacedProcess endpoint = Server(NamespacedProcess.Start(Network.Namespace(server), $"tunnel endpoint on {name}", Directory, false,
                [UdrBinary.Executable, "node", "tunnel", "--vip", LabNetwork.Vip, .. more]));
            if (endpoint.WaitForLine(TunnelEndpointReady, ServerPatience) == null)
            {
                throw new InvalidOperationException($"{endpoint} did not start: {endpoint.Output}");
            }
        }
    }

    private static bool TunnelEndpointReady(string line) => line.StartsWith("ready: ", StringComparison.Ordinal);

    /// <summary>Fails when a server has died (a test must not pass or fail because of an earlier one).</summary>
    public void BeginTest()
    {
        _clock.Restart();
        foreach (NamespacedProcess server in _servers.OfType<NamespacedProcess>().Where(s => s.HasExited))
        {
            throw new InvalidOperationException($"{server} has ended: {server.Output}");
        }
    }

    /// <summary>Ends what the test started, newest first (daemon and captures before clients); never throws.</summary>
    public void EndTest()
    {
        DisposeAll(_owned);
        try
        {
            foreach (LabHost balancer in Balancers)
            {
                // A daemon that had to be killed leaves its table; the next test starts from a clean balancer.
                Network.Exec(balancer, "for t in udr_eth0 udr_eth1; do nft delete table netdev $t 2>/dev/null || true; done");
                if (Network.BalancerPair)
                {
                    // A keepalived that was killed leaves the VRRP addresses, and a test may have cut a balancer's links.
                    Network.Exec(balancer, $"ip addr del {LabNetwork.Vip}/32 dev eth0 2>/dev/null; ip addr del {LabNetwork.LbPrivateAddress}/24 dev eth1 2>/dev/null; true");
                    string name = LabNetwork.HostName(balancer);
                    Network.Exec(LabHost.Switch, $"ip link set {name} up; ip link set {name}p up");
                }
            }
        }
        catch (Exception exception) when (exception is InvalidOperationException or TimeoutException)
        {
            TestContext.Error.WriteLine($"end-to-end lab: {exception.Message}");
        }
        Step("test's processes ended");
    }

    public void WriteRules(string rules)
    {
        // Written beside and renamed over, as an operator's editor or config tool would: a reload never reads half a file.
        string next = RulesPath + ".next";
        File.WriteAllText(next, rules);
        File.Move(next, RulesPath, overwrite: true);
    }

    /// <summary>The control socket a test hands to `udr run --control` and then to <see cref="Adm"/>.</summary>
    public string ControlPath => Path.Combine(Directory, "udr.sock");

    /// <summary>`udr adm --control <see cref="ControlPath"/> ARGS`; asserts exit 0 and returns what it printed.</summary>
    public string Adm(params string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(UdrBinary.Executable, ["adm", "--control", ControlPath, .. arguments], TimeSpan.FromSeconds(30));
        Assert.That(result.ExitCode, Is.Zero, $"udr adm {string.Join(' ', arguments)}: {result.Error}");
        return result.Output;
    }

    public UdrDaemon StartUdr(string backend, params string[] extraArguments) =>
        StartUdrWith(LabHost.Lb, backend, ["--rules", RulesPath], extraArguments);

    /// <summary>`udr run --rules` on one balancer of several (a pair, the scale-out lab).</summary>
    public UdrDaemon StartUdrOn(LabHost balancer, string backend, params string[] extraArguments) =>
        StartUdrWith(balancer, backend, ["--rules", RulesPath], extraArguments);

    /// <summary>`udr run --config FILE` (keepalived.conf) with the lab's settings.</summary>
    public UdrDaemon StartUdrWithConfig(string backend, string configPath, params string[] extraArguments) =>
        StartUdrWith(LabHost.Lb, backend, ["--config", configPath], extraArguments);

    /// <summary>`udr run --config FILE` on one balancer of a pair.</summary>
    public UdrDaemon StartUdrWithConfigOn(LabHost balancer, string backend, string configPath, params string[] extraArguments) =>
        StartUdrWith(balancer, backend, ["--config", configPath], extraArguments);

    private UdrDaemon StartUdrWith(LabHost balancer, string backend, string[] ruleSource, string[] extraArguments)
    {
        UdrDaemon udr = Own(UdrDaemon.Start(Network, balancer, backend, ruleSource, Step, extraArguments));
        Step($"udr serving on {LabNetwork.HostName(balancer)} ({backend} {string.Join(' ', [.. ruleSource, .. extraArguments])})");
        return udr;
    }

    public LabCapture StartCapture(LabHost host, string filter, string interfaceName = "eth0")
    {
        LabCapture capture = Own(LabCapture.Start(Network, host, Path.Combine(Directory, $"{LabNetwork.HostName(host)}-{++_files}.pcap"), filter, Step, interfaceName));
        Step($"capturing on {LabNetwork.HostName(host)} {interfaceName}: {filter}");
        return capture;
    }

    /// <summary>Runs a client.py mode in the client host and returns its JSON result.</summary>
    public JsonElement RunClient(TimeSpan timeout, params string[] arguments)
    {
        string command = $"{Python} {Path.Combine(Directory, LabScripts.ClientFile)} {string.Join(' ', arguments)}";
        string output = Network.Exec(LabHost.Client, command, timeout);
        string last = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
            ?? throw new InvalidOperationException($"client.py {string.Join(' ', arguments)} printed nothing");
        using JsonDocument document = JsonDocument.Parse(last);
        Step($"client.py {string.Join(' ', arguments)}: {Shorten(last)}");
        return document.RootElement.Clone();
    }

    private static string Shorten(string text) => text.Length <= 160 ? text : text[..160] + "…";

    /// <summary>Starts a client.py mode that talks to the test on stdin/stdout (the paused download).</summary>
    public NamespacedProcess StartClient(params string[] arguments) =>
        Own(NamespacedProcess.Start(Network.Namespace(LabHost.Client), "client.py " + string.Join(' ', arguments), Directory, true,
            [Python, "-u", Path.Combine(Directory, LabScripts.ClientFile), .. arguments]));

    /// <summary>`nft list ruleset` in the balancer.</summary>
    public string BalancerRuleset() => Network.Exec(LabHost.Lb, "nft list ruleset");

    private T Own<T>(T disposable) where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    private T Server<T>(T disposable) where T : IDisposable
    {
        _servers.Add(disposable);
        return disposable;
    }

    private static void DisposeAll(List<IDisposable> disposables)
    {
        // A failure in one step is reported and the rest still runs: the namespaces must go whatever happened.
        for (int i = disposables.Count - 1; i >= 0; i--)
        {
            try
            {
                disposables[i].Dispose();
            }
#pragma warning disable CA1031 // teardown must go on and must not hide the test's own failure
            catch (Exception exception)
#pragma warning restore CA1031
            {
                TestContext.Error.WriteLine($"end-to-end lab teardown: {exception}");
            }
        }
        disposables.Clear();
    }

    public void Dispose()
    {
        DisposeAll(_owned);
        DisposeAll(_servers);
        Network.Dispose();
        try
        {
            // UDR_LAB_KEEP=1 keeps the captures, logs and scripts of a run for a look afterwards.
            if (Directory.Length > 0 && System.IO.Directory.Exists(Directory) && Environment.GetEnvironmentVariable("UDR_LAB_KEEP") != "1")
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
        }
        catch (IOException exception)
        {
            TestContext.Error.WriteLine($"end-to-end lab: could not remove {Directory}: {exception.Message}");
        }
    }
}
