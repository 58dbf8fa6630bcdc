using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;

namespace UserspaceDr.Tests.TestSupport;

/// <summary>
/// An in-memory host for planning, rollback and checks: a real server shaped like the lab's (lo, eth0 198.18.0.11/24,
/// default sysctls), with switches to make any single operation fail.
/// </summary>
internal sealed class FakeHostSystem : IHostSystem
{
    private readonly List<FakeLink> _links = [];

    public FakeHostSystem(string address = "198.18.0.11", int prefix = 24)
    {
        AddConfSysctls("all");
        AddConfSysctls("default");
        AddLink("lo", ["LOOPBACK", "UP", "LOWER_UP"], 65536).Addresses.Add(new InterfaceAddress(Ipv4Address.Parse("127.0.0.1"), 8, "host"));
        AddLink("eth0", ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], 1500).Addresses.Add(new InterfaceAddress(Ipv4Address.Parse(address), prefix));
        Sysctls[SysctlKey.IpForward.RelativePath] = "0";
        Directories.Add("/etc/sysctl.d");
        Directories.Add("/run");
    }

    public Dictionary<string, string> Sysctls { get; } = [];

    public Dictionary<string, string> Files { get; } = [];

    public HashSet<string> Directories { get; } = [];

    public Dictionary<uint, RouteInfo> Routes { get; } = [];

    public Dictionary<uint, string> Neighbors { get; } = [];

    public Dictionary<string, OffloadFeatures> Offloads { get; } = [];

    public RouteInfo? DefaultRoute { get; set; }

    public bool IsRoot { get; set; } = true;

    public ulong EffectiveCapabilities { get; set; } = 0x1FF_FEFF_FFFF;

    public string? Nftables { get; set; } = "nftables v1.0.6";

    /// <summary>Operations in order: "sysctl PATH=VALUE", "addr add DEV A/P", "addr del …", "write PATH", "delete PATH", "ethtool …".</summary>
    public List<string> Log { get; } = [];

    /// <summary>Operations whose log line starts with one of these fail (a <see cref="NodeException"/>, as the real host throws).</summary>
    public List<string> FailOn { get; } = [];

    public FakeLink AddLink(string name, string[] flags, int mtu, string? linkType = null)
    {
        var link = new FakeLink(name, _links.Count + 1, flags, mtu) { LinkType = linkType };
        _links.Add(link);
        AddConfSysctls(name);
        return link;
    }

    /// <summary>The kernel's defaults for a new device's net.ipv4.conf.DEVICE.*: all 0 (the settings the module reads).</summary>
    private void AddConfSysctls(string device)
    {
        foreach (string setting in new[] { ConfSetting.ArpIgnore, ConfSetting.ArpAnnounce, ConfSetting.RpFilter })
        {
            Sysctls[SysctlKey.Conf(device, setting).RelativePath] = "0";
        }
    }

    public FakeLink Link(string name) => _links.Single(l => l.Name == name);

    public IReadOnlyList<LinkInfo> GetLinks() =>
        [.. _links.Select(l => new LinkInfo(l.Name, l.Index, [.. l.Flags], l.Mtu, l.Flags.Contains("UP") ? "UP" : "DOWN", [.. l.Addresses], l.LinkType)
        {
            Ipv6Addresses = [.. l.Ipv6Addresses],
            Xdp = l.Xdp,
        })];

    public RouteInfo? GetDefaultRoute() => DefaultRoute;

    /// <summary>IPv6 routes by destination (an IPv6 destination without one is unreachable).</summary>
    public Dictionary<UInt128, RouteInfo> Ipv6Routes { get; } = [];

    public RouteInfo? GetRoute(InetAddress destination) =>
        destination.IsIPv4 ? GetRoute(destination.IPv4) : Ipv6Routes.GetValueOrDefault(destination.IPv6);

    public RouteInfo? GetRoute(uint destination)
    {
        if (Routes.TryGetValue(destination, out RouteInfo? route))
        {
            return route;
        }
        FakeLink? onLink = _links.FirstOrDefault(l => l.Addresses.Any(a => a.Covers(destination)));
        return onLink != null ? new RouteInfo(onLink.Name, null, null, null) : DefaultRoute;
    }

    public string? ReadSysctl(SysctlKey key) => Sysctls.TryGetValue(key.RelativePath, out string? value) ? value : null;

    public void WriteSysctl(SysctlKey key, string value)
    {
        Do($"sysctl {key.RelativePath}={value}");
        if (!Sysctls.ContainsKey(key.RelativePath))
        {
            throw new NodeException($"no {key.Name}");
        }
        Sysctls[key.RelativePath] = value;
    }

    public void AddAddress(string device, InetAddress address, int prefixLength)
    {
        Do($"addr add {device} {address}/{prefixLength}");
        FakeLink link = Link(device);
        if (link.Addresses.Any(a => address.IsIPv4 && a.Address == address.IPv4) || link.Ipv6Addresses.Any(a => a.Address == address))
        {
            throw new NodeException("RTNETLINK answers: File exists");
        }
        if (address.IsIPv4)
        {
            link.Addresses.Add(new InterfaceAddress(address.IPv4, prefixLength));
        }
        else
        {
            link.Ipv6Addresses.Add(new LinkAddress(address, prefixLength));
        }
    }

    /// <summary>What <see cref="LoadKernelModule"/> does: null fails ("modprobe is not installed"), else it runs the action.</summary>
    public Action<string>? ModuleLoader { get; set; }

    public void SetLinkUp(string device, bool up)
    {
        Do($"link {device} {(up ? "up" : "down")}");
        FakeLink link = Link(device);
        link.Flags.Remove("UP");
        if (up)
        {
            link.Flags.Add("UP");
        }
    }

    public bool LoadKernelModule(string moduleName, out string? problem)
    {
        Do($"modprobe {moduleName}");
        if (ModuleLoader == null)
        {
            problem = "modprobe is not installed";
            return false;
        }
        ModuleLoader(moduleName);
        problem = null;
        return true;
    }

    public void DeleteAddress(string device, InetAddress address, int prefixLength)
    {
        Do($"addr del {device} {address}/{prefixLength}");
        FakeLink link = Link(device);
        int removed = address.IsIPv4
            ? link.Addresses.RemoveAll(a => a.Address == address.IPv4 && a.PrefixLength == prefixLength)
            : link.Ipv6Addresses.RemoveAll(a => a.Address == address && a.PrefixLength == prefixLength);
        if (removed == 0)
        {
            throw new NodeException("RTNETLINK answers: Cannot assign requested address");
        }
    }

    public string? ReadFile(string path) => Files.TryGetValue(path, out string? text) ? text : null;

    public void WriteFile(string path, string content)
    {
        Do($"write {path}");
        if (!Directories.Contains(Path.GetDirectoryName(path)!))
        {
            throw new NodeException($"no directory for {path}");
        }
        Files[path] = content;
    }

    public bool DirectoryExists(string path) => Directories.Contains(path);

    public void CreateDirectory(string path)
    {
        Do($"mkdir {path}");
        Directories.Add(path);
    }

    public void DeleteFile(string path)
    {
        Do($"delete {path}");
        Files.Remove(path);
    }

    public OffloadFeatures? GetOffloads(string device) => Offloads.TryGetValue(device, out OffloadFeatures? features) ? features : null;

    public void DisableOffloads(string device, bool gro, bool lro)
    {
        Do($"ethtool -K {device}{(gro ? " gro off" : string.Empty)}{(lro ? " lro off" : string.Empty)}");
        OffloadFeatures features = Offloads[device];
        Offloads[device] = new OffloadFeatures(
            gro && features.Gro is { Fixed: false } ? new OffloadState(false, false) : features.Gro,
            lro && features.Lro is { Fixed: false } ? new OffloadState(false, false) : features.Lro);
    }

    public string? NftablesVersion(out string? problem)
    {
        problem = Nftables == null ? "nft is not installed" : null;
        return Nftables;
    }

    public string? ResolveNeighbor(string device, uint address, TimeSpan timeout) =>
        Neighbors.TryGetValue(address, out string? mac) ? mac : null;

    /// <summary>Every sysctl, address and file, one per line, sorted: equal snapshots mean an equal host.</summary>
    public string Snapshot()
    {
        var lines = new List<string>();
        lines.AddRange(Sysctls.Select(s => $"sysctl {s.Key}={s.Value}"));
        lines.AddRange(_links.SelectMany(l => l.Addresses.Select(a => $"addr {l.Name} {a}")));
        lines.AddRange(_links.SelectMany(l => l.Ipv6Addresses.Select(a => $"addr {l.Name} {a}")));
        lines.AddRange(_links.Select(l => $"link {l.Name} {(l.Flags.Contains("UP") ? "up" : "down")}"));
        lines.AddRange(Files.Select(f => $"file {f.Key}: {f.Value}"));
        lines.Sort(StringComparer.Ordinal);
        return new StringBuilder().AppendJoin('\n', lines).ToString();
    }

    private void Do(string operation)
    {
        if (FailOn.Exists(prefix => operation.StartsWith(prefix, StringComparison.Ordinal)))
        {
            Log.Add("FAILED " + operation);
            throw new NodeException($"injected failure: {operation}");
        }
        Log.Add(operation);
    }
}

internal sealed class FakeLink(string name, int index, string[] flags, int mtu)
{
    public string Name { get; } = name;

    public int Index { get; } = index;

    public List<string> Flags { get; } = [.. flags];

    public int Mtu { get; set; } = mtu;

    public List<InterfaceAddress> Addresses { get; } = [];

    public List<LinkAddress> Ipv6Addresses { get; } = [];

    public string? LinkType { get; init; }

    public XdpProgramInfo? Xdp { get; set; }
}
