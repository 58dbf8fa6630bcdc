using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// Everything the node module and the preflight checks read from or change on a host. <see cref="LinuxHostSystem"/>
/// is the real one (/proc/sys, `ip`, `ethtool`, `nft`); tests use an in-memory one, so planning, rollback and the
/// checks are tested without touching a kernel.
/// </summary>
public interface IHostSystem
{
    /// <summary>True when the process runs as root (euid 0).</summary>
    bool IsRoot { get; }

    /// <summary>The effective capability mask (CapEff).</summary>
    ulong EffectiveCapabilities { get; }

    IReadOnlyList<LinkInfo> GetLinks();

    /// <summary>The IPv4 default route, or null when there is none.</summary>
    RouteInfo? GetDefaultRoute();

    /// <summary>The route the kernel would take to <paramref name="destination"/>, or null when unreachable.</summary>
    RouteInfo? GetRoute(uint destination);

    /// <summary>The same for an address of either family (a host without IPv6 routing has no IPv6 route).</summary>
    RouteInfo? GetRoute(InetAddress destination) => destination.IsIPv4 ? GetRoute(destination.IPv4) : null;

    /// <summary>The value of a sysctl (trimmed), or null when it does not exist (e.g. no such interface).</summary>
    string? ReadSysctl(SysctlKey key);

    void WriteSysctl(SysctlKey key, string value);

    /// <summary>`ip -4|-6 addr add ADDRESS/PREFIX dev DEVICE`.</summary>
    void AddAddress(string device, InetAddress address, int prefixLength);

    /// <summary>`ip link set dev DEVICE up|down`.</summary>
    void SetLinkUp(string device, bool up);

    /// <summary>Loads a kernel module (modprobe); false, with why, when it cannot (no modprobe, no such module).</summary>
    bool LoadKernelModule(string moduleName, out string? problem);

    void DeleteAddress(string device, InetAddress address, int prefixLength);

    /// <summary>A file's text, or null when it does not exist.</summary>
    string? ReadFile(string path);

    /// <summary>Writes a file whole (through a temporary file and a rename); its directory must exist.</summary>
    void WriteFile(string path, string content);

    bool DirectoryExists(string path);

    void CreateDirectory(string path);

    void DeleteFile(string path);

    /// <summary>GRO/LRO of an interface; null when ethtool is missing or cannot tell.</summary>
    OffloadFeatures? GetOffloads(string device);

    /// <summary>Turns GRO and/or LRO off (a false argument leaves that feature alone).</summary>
    void DisableOffloads(string device, bool gro, bool lro);

    /// <summary>"nftables v1.0.6 …" when nft is installed and the kernel's nf_tables answers; null otherwise, with why.</summary>
    string? NftablesVersion(out string? problem);

    /// <summary>The MAC of an on-link neighbour, asking for it when the kernel does not know it yet; null when unresolved.</summary>
    string? ResolveNeighbor(string device, uint address, TimeSpan timeout);
}
