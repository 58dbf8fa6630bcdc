using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using UserspaceDr.Core.Packets;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Lab;

/// <summary>
/// The hosts of tools/lab.sh; <see cref="Switch"/> is the namespace holding both bridges. Client, Lb (eth0), Rs1 and
/// Rs2 share the public segment 198.18.0.0/24 (br0); Lb (eth1), Rs3 and Rs4 the private segment 198.19.1.0/24 (br1).
/// Lb2 exists only in a balancer pair (`tools/lab.sh up PREFIX --pair`), beside Lb on both segments.
/// </summary>
public enum LabHost
{
    Client,
    Lb,
    /// <summary>The second balancer of a pair (eth0 198.18.0.3, eth1 198.19.1.3).</summary>
    Lb2,
    Rs1,
    Rs2,
    /// <summary>A NAT real server on the private segment (default route via the balancer's eth1).</summary>
    Rs3,
    /// <summary>A NAT real server on the private segment (default route via the balancer's eth1).</summary>
    Rs4,
    Switch,
    /// <summary>The third balancer of the scale-out lab (eth0 198.18.0.4).</summary>
    Lb3,
    /// <summary>The scale-out lab's router between the client's segment and the balancers' (ECMP to the VIP).</summary>
    Router,
}

/// <summary>
/// One instance of the namespace lab (tools/lab.sh) under a prefix of its own, torn down by <see cref="Dispose"/>.
/// Tests that use it carry [Category("Lab")] and call <see cref="RequireRoot"/> first.
/// </summary>
public sealed class LabNetwork : IDisposable
{
    public const string ClientAddress = "198.18.0.1";
    public const string LbAddress = "198.18.0.2";
    public const string Rs1Address = "198.18.0.11";
    public const string Rs2Address = "198.18.0.12";
    public const string Vip = "198.18.0.100";

    /// <summary>The balancer's address on the private segment (its eth1), the NAT real servers' default gateway.</summary>
    public const string LbPrivateAddress = "198.19.1.1";
    public const string Rs3Address = "198.19.1.13";
    public const string Rs4Address = "198.19.1.14";

    /// <summary>The balancer's interface on the private segment.</summary>
    public const string LbPrivateInterface = "eth1";

    /// <summary>A pair's second balancer on the public segment.</summary>
    public const string Lb2Address = "198.18.0.3";

    /// <summary>
    /// In a pair, each balancer's own address on the private segment; <see cref="LbPrivateAddress"/>, the NAT servers'
    /// gateway, is then a VRRP address that moves with the VIP.
    /// </summary>
    public const string PairLbPrivateAddress = "198.19.1.2";
    public const string PairLb2PrivateAddress = "198.19.1.3";

    /// <summary>The scale-out lab (<c>--ecmp</c>): the third balancer, the router's leg among the balancers, the client behind it.</summary>
    public const string Lb3Address = "198.18.0.4";
    public const string RouterAddress = "198.18.0.254";
    public const string EcmpClientAddress = "198.18.2.1";

    /// <summary>The scale-out lab's client holds four addresses, to stand for several clients.</summary>
    public static readonly IReadOnlyList<string> EcmpClientAddresses = ["198.18.2.1", "198.18.2.2", "198.18.2.3", "198.18.2.4"];

    private static readonly TimeSpan DefaultCommandTimeout = TimeSpan.FromSeconds(30);
    private readonly List<LabProcess> _processes = [];
    private bool _disposed;

    public LabNetwork() : this(bareServers: false)
    {
    }

    /// <summary>
    /// With <paramref name="bareServers"/>, rs1 and rs2 are left as fresh hosts (no VIP on lo, default sysctls:
    /// `tools/lab.sh up PREFIX --bare-servers`), for tests of `udr node setup`. rs3/rs4 (NAT) are the same either way.
    /// With <paramref name="balancerPair"/>, two balancers (Lb and Lb2) and no owner of the VIP or the NAT servers'
    /// gateway: keepalived's VRRP moves them (`tools/lab.sh up PREFIX --pair`).
    /// </summary>
    /// With <paramref name="ecmp"/>, three balancers (Lb, Lb2, Lb3) behind a router (`tools/lab.sh up PREFIX --ecmp`).
    public LabNetwork(bool bareServers, bool balancerPair = false, bool ecmp = false)
    {
        RequireRoot();
        Prefix = NewPrefix();
        BareServers = bareServers;
        BalancerPair = balancerPair;
        Ecmp = ecmp;
        try
        {
            RunScript(DefaultCommandTimeout, ["up", Prefix,
                .. bareServers ? ["--bare-servers"] : balancerPair ? ["--pair"] : ecmp ? ["--ecmp"] : Array.Empty<string>()]);
        }
        catch
        {
            RunScriptQuietly("down", Prefix);
            throw;
        }
    }

    public string Prefix { get; }

    /// <summary>True when rs1/rs2 were created without the VIP on lo and with default sysctls.</summary>
    public bool BareServers { get; }

    /// <summary>True for a balancer pair: Lb and Lb2, the VIP and the NAT gateway held by whichever is VRRP master.</summary>
    public bool BalancerPair { get; }

    /// <summary>True for the scale-out lab: Lb, Lb2 and Lb3 behind <see cref="LabHost.Router"/>.</summary>
    public bool Ecmp { get; }

    /// <summary>Root and Linux: what network namespaces and AF_PACKET need.</summary>
    public static bool CanRun => OperatingSystem.IsLinux() && Environment.IsPrivilegedProcess;

    public static void RequireRoot()
    {
        if (!CanRun)
        {
            Assert.Ignore("lab tests need root on Linux (network namespaces, AF_PACKET)");
        }
    }


    public static string HostName(LabHost host) => host switch
    {
        LabHost.Client => "client",
        LabHost.Lb => "lb",
        LabHost.Lb2 => "lb2",
        LabHost.Rs1 => "rs1",
        LabHost.Rs2 => "rs2",
        LabHost.Rs3 => "rs3",
        LabHost.Rs4 => "rs4",
        LabHost.Switch => "sw",
        LabHost.Lb3 => "lb3",
        LabHost.Router => "rt",
        _ => throw new ArgumentOutOfRangeException(nameof(host), host, null),
    };

    /// <summary>The network namespace name of a host (for <see cref="NetworkNamespace.Run{T}"/>).</summary>
    public string Namespace(LabHost host) => $"{Prefix}-{HostName(host)}";

    /// <summary>Runs <paramref name="action"/> on a thread inside the host's namespace (sockets created there stay there).</summary>
    public T RunIn<T>(LabHost host, Func<T> action) => NetworkNamespace.Run(Namespace(host), action);

    /// <summary>Runs a shell command inside a host and returns its standard output; throws when it fails or times out.</summary>
    public string Exec(LabHost host, string command, TimeSpan? timeout = null) =>
        RunScript(timeout ?? DefaultCommandTimeout, "exec", Prefix, HostName(host), "sh", "-c", command);

    /// <summary>Starts a shell command inside a host; the process is killed when the handle or the lab is disposed.</summary>
    public LabProcess StartProcess(LabHost host, string command)
    {
        var process = new LabProcess(StartScript("exec", Prefix, HostName(host), "sh", "-c", command));
        _processes.Add(process);
        return process;
    }

    public MacAddress MacAddressOf(LabHost host, string device = "eth0")
    {
        string text = Exec(host, $"cat /sys/class/net/{device}/address").Trim();
        return MacAddress.TryParse(text, out MacAddress mac) ? mac : throw new InvalidOperationException($"no MAC address in '{text}'");
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (LabProcess process in _processes)
        {
            process.Dispose();
        }
        RunScriptQuietly("down", Prefix);
    }

    private static string NewPrefix()
    {
        // "u" + 7 random base-36 characters: fits lab.sh's 10-character limit, unique enough for parallel runs.
        const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        return "u" + RandomNumberGenerator.GetString(alphabet, 7);
    }


    private static Process StartScript(params string[] arguments)
    {
        var startInfo = new ProcessStartInfo(RepositoryPaths.LabScript)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        return Process.Start(startInfo) ?? throw new InvalidOperationException("could not start tools/lab.sh");
    }

    private static string RunScript(TimeSpan timeout, params string[] arguments)
    {
        using Process process = StartScript(arguments);
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"lab.sh {string.Join(' ', arguments)} did not finish within {timeout.TotalSeconds}s");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                $"lab.sh {string.Join(' ', arguments)} failed with {process.ExitCode}: {error.Result}{output.Result}"));
        }
        return output.Result;
    }

    private static void RunScriptQuietly(params string[] arguments)
    {
        try
        {
            RunScript(DefaultCommandTimeout, arguments);
        }
#pragma warning disable CA1031 // teardown must not hide the test's own failure
        catch (Exception exception)
#pragma warning restore CA1031
        {
            TestContext.Error.WriteLine($"lab teardown: {exception.Message}");
        }
    }
}

/// <summary>A command running inside a lab host; <see cref="Dispose"/> kills it (and its children).</summary>
public sealed class LabProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;
    private bool _disposed;

    internal LabProcess(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        _error = process.StandardError.ReadToEndAsync();
    }

    public int Id => _process.Id;

    /// <summary>True once the command ended, or was ended by <see cref="Dispose"/>.</summary>
    public bool HasExited => _disposed || _process.HasExited;

    /// <summary>Waits for the command to end by itself; false on timeout (it keeps running).</summary>
    public bool WaitForExit(TimeSpan timeout) => _process.WaitForExit(timeout);

    public int ExitCode => _process.ExitCode;

    /// <summary>Standard output, complete once the process has ended.</summary>
    public string Output => HasExited ? _output.Result : string.Empty;

    public string Error => HasExited ? _error.Result : string.Empty;

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        try
        {
            if (!_process.HasExited)
            {
                // The kill reaches the whole tree at once, but a child ends a moment after its signal: without the
                // wait, a check of the namespace right after Dispose could still see it (a test failed once so).
                int[] descendants = Descendants(_process.Id);
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(TimeSpan.FromSeconds(5));
                WaitUntilGone(descendants, TimeSpan.FromSeconds(5));
            }
        }
        catch (InvalidOperationException)
        {
            // It ended between the check and the kill.
        }
        _process.Dispose();
    }

    /// <summary>The process's children, theirs, and so on (/proc/PID/task/TID/children), read before a kill.</summary>
    private static int[] Descendants(int pid)
    {
        var found = new List<int>();
        var pending = new Queue<int>([pid]);
        while (pending.Count > 0)
        {
            int parent = pending.Dequeue();
            string[] tasks;
            try
            {
                tasks = Directory.GetDirectories($"/proc/{parent}/task");
            }
            catch (IOException)
            {
                continue; // it ended meanwhile
            }
            foreach (string task in tasks)
            {
                string children;
                try
                {
                    children = File.ReadAllText(Path.Combine(task, "children"));
                }
                catch (IOException)
                {
                    continue;
                }
                foreach (string child in children.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    int childPid = int.Parse(child, System.Globalization.CultureInfo.InvariantCulture);
                    found.Add(childPid);
                    pending.Enqueue(childPid);
                }
            }
        }
        return [.. found];
    }

    /// <summary>Waits (bounded) until none of <paramref name="pids"/> is a live process any more (gone, or a zombie awaiting its reaper).</summary>
    private static void WaitUntilGone(int[] pids, TimeSpan limit)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        foreach (int pid in pids)
        {
            while (clock.Elapsed < limit && IsLive(pid))
            {
                Thread.Sleep(10);
            }
        }
    }

    private static bool IsLive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int end = stat.LastIndexOf(')');
            return end < 0 || end + 2 >= stat.Length || stat[end + 2] != 'Z';
        }
        catch (IOException)
        {
            return false; // no such process
        }
    }
}
