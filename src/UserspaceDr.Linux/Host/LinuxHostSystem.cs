using System.Net;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>The running Linux host: sysctls through /proc/sys, addresses and routes through `ip -j`, offloads through ethtool.</summary>
public sealed class LinuxHostSystem : IHostSystem
{
    private const int DiscardPort = 9;

    public bool IsRoot => Environment.IsPrivilegedProcess;

    public ulong EffectiveCapabilities => HostParsers.ParseEffectiveCapabilities(ReadFile("/proc/self/status") ?? string.Empty);

    public IReadOnlyList<LinkInfo> GetLinks() => HostParsers.ParseAddresses(CommandRunner.RunChecked("ip", "-j", "addr", "show"));

    public RouteInfo? GetDefaultRoute() => HostParsers.ParseFirstRoute(CommandRunner.RunChecked("ip", "-j", "-4", "route", "show", "default"));

    public RouteInfo? GetRoute(uint destination) => GetRoute(InetAddress.FromIPv4(destination));

    public RouteInfo? GetRoute(InetAddress destination)
    {
        CommandResult result = CommandRunner.Run("ip", "-j", destination.IsIPv4 ? "-4" : "-6", "route", "get", destination.ToString());
        // "RTNETLINK answers: Network is unreachable" is an answer, not a failure of the tool.
        return result.Succeeded ? HostParsers.ParseFirstRoute(result.Output) : null;
    }

    public string? ReadSysctl(SysctlKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            return File.ReadAllText(key.ProcPath).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostException($"cannot read {key.Name}: {e.Message}", e);
        }
    }

    public void WriteSysctl(SysctlKey key, string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        try
        {
            // Open without O_CREAT/O_TRUNC: a /proc/sys file either exists or the setting does not.
            using var stream = new FileStream(key.ProcPath, FileMode.Open, FileAccess.Write);
            using var writer = new StreamWriter(stream);
            writer.Write(value + "\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostException($"cannot set {key.Name} = {value}: {e.Message}", e);
        }
        // The kernel may refuse silently or clamp: what counts is what it holds now.
        string? now = ReadSysctl(key);
        if (now != value)
        {
            throw new HostException($"{key.Name} reads {now ?? "nothing"} after writing {value}");
        }
    }

    public void AddAddress(string device, InetAddress address, int prefixLength) =>
        CommandRunner.RunChecked("ip", address.IsIPv4 ? "-4" : "-6", "addr", "add", $"{address}/{prefixLength}", "dev", device);

    public void SetLinkUp(string device, bool up) =>
        CommandRunner.RunChecked("ip", "link", "set", "dev", device, up ? "up" : "down");

    public bool LoadKernelModule(string moduleName, out string? problem)
    {
        CommandResult result = CommandRunner.Run("modprobe", moduleName);
        problem = result.Succeeded ? null : result.ExitCode == 127 ? "modprobe is not installed" : $"modprobe {moduleName}: {result.Error.Trim()}";
        return result.Succeeded;
    }

    public void DeleteAddress(string device, InetAddress address, int prefixLength) =>
        CommandRunner.RunChecked("ip", address.IsIPv4 ? "-4" : "-6", "addr", "del", $"{address}/{prefixLength}", "dev", device);

    public string? ReadFile(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostException($"cannot read {path}: {e.Message}", e);
        }
    }

    public void WriteFile(string path, string content)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full) ?? "/";
        string temporary = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            File.WriteAllText(temporary, content);
            File.Move(temporary, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
            throw new HostException($"cannot write {full}: {e.Message}", e);
        }
    }

    public bool DirectoryExists(string path) => Directory.Exists(path);

    public void CreateDirectory(string path)
    {
        try
        {
            Directory.CreateDirectory(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostException($"cannot create {path}: {e.Message}", e);
        }
    }

    public void DeleteFile(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new HostException($"cannot delete {path}: {e.Message}", e);
        }
    }

    public OffloadFeatures? GetOffloads(string device)
    {
        CommandResult result = CommandRunner.Run("ethtool", "-k", device);
        return result.Succeeded ? HostParsers.ParseOffloads(result.Output) : null;
    }

    public void DisableOffloads(string device, bool gro, bool lro)
    {
        var arguments = new List<string> { "-K", device };
        if (gro)
        {
            arguments.AddRange(["gro", "off"]);
        }
        if (lro)
        {
            arguments.AddRange(["lro", "off"]);
        }
        if (arguments.Count > 2)
        {
            CommandRunner.RunChecked("ethtool", [.. arguments]);
        }
    }

    public string? NftablesVersion(out string? problem)
    {
        CommandResult version = CommandRunner.Run("nft", "--version");
        if (!version.Succeeded)
        {
            problem = version.ExitCode == 127 ? "nft is not installed" : version.Error.Trim();
            return null;
        }
        if (IsRoot)
        {
            // The binary alone is not enough: the kernel must have nf_tables.
            CommandResult list = CommandRunner.Run("nft", "list", "tables");
            if (!list.Succeeded)
            {
                problem = $"nft cannot reach the kernel's nf_tables: {list.Error.Trim()}";
                return null;
            }
        }
        problem = null;
        return version.Output.Trim();
    }

    public string? ResolveNeighbor(string device, uint address, TimeSpan timeout)
    {
        string? mac = KnownNeighbor(device, address);
        if (mac != null)
        {
            return mac;
        }
        // One empty UDP datagram to the discard port makes the kernel resolve the address (ARP) the ordinary way.
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.SendTo([], new IPEndPoint(IPAddress.Parse(Ipv4Address.Format(address)), DiscardPort));
        }
        catch (SocketException)
        {
            return null;
        }
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            Thread.Sleep(50);
            mac = KnownNeighbor(device, address);
            if (mac != null)
            {
                return mac;
            }
        }
        return null;
    }

    private string? KnownNeighbor(string device, uint address) =>
        HostParsers.FindCompleteArpEntry(ReadFile("/proc/net/arp") ?? string.Empty, address, device);
}
