namespace UserspaceDr.Linux.Host;

/// <summary>
/// One kernel setting under /proc/sys, kept as its path segments so that an interface name with a dot
/// (eth0.100) stays one segment. <see cref="Name"/> is sysctl(8)'s notation: segments joined by dots, a dot
/// inside a segment written as '/' (net.ipv4.conf.eth0/100.arp_ignore), which sysctl.d files accept too.
/// </summary>
public sealed record SysctlKey
{
    private SysctlKey(string relativePath) => RelativePath = relativePath;

    /// <summary>The path under /proc/sys, '/'-separated: net/ipv4/conf/eth0/arp_ignore.</summary>
    public string RelativePath { get; }

    public string Name => string.Join('.', RelativePath.Split('/').Select(segment => segment.Replace('.', '/')));

    public string ProcPath => "/proc/sys/" + RelativePath;

    public static SysctlKey IpForward { get; } = new("net/ipv4/ip_forward");

    /// <summary>net.ipv4.conf.DEVICE.SETTING, DEVICE being an interface, "all" or "default".</summary>
    public static SysctlKey Conf(string device, string setting)
    {
        ValidateSegment(device, nameof(device));
        ValidateSegment(setting, nameof(setting));
        return new SysctlKey($"net/ipv4/conf/{device}/{setting}");
    }

    /// <summary>net.ipv6.conf.DEVICE.SETTING.</summary>
    public static SysctlKey Ipv6Conf(string device, string setting)
    {
        ValidateSegment(device, nameof(device));
        ValidateSegment(setting, nameof(setting));
        return new SysctlKey($"net/ipv6/conf/{device}/{setting}");
    }

    /// <summary>Rebuilds a key from <see cref="RelativePath"/> (as the state file stores it); only net/ipv4 and net/ipv6 keys.</summary>
    public static SysctlKey FromRelativePath(string relativePath)
    {
        ArgumentNullException.ThrowIfNull(relativePath);
        string[] segments = relativePath.Split('/');
        if (segments.Length < 3 || segments[0] != "net" || segments[1] is not ("ipv4" or "ipv6") ||
            segments.Any(s => s.Length == 0 || s is "." or ".."))
        {
            throw new HostException($"'{relativePath}' is not a net/ipv4 or net/ipv6 sysctl path");
        }
        return new SysctlKey(relativePath);
    }

    public override string ToString() => Name;

    private static void ValidateSegment(string segment, string what)
    {
        if (string.IsNullOrEmpty(segment) || segment.Contains('/', StringComparison.Ordinal) || segment is "." or "..")
        {
            throw new HostException($"'{segment}' is not a valid {what} name");
        }
    }
}

/// <summary>The per-interface settings the node module reads and writes.</summary>
public static class ConfSetting
{
    public const string ArpIgnore = "arp_ignore";
    public const string ArpAnnounce = "arp_announce";
    public const string RpFilter = "rp_filter";

    /// <summary>net.ipv6.conf.DEVICE.disable_ipv6: 1 keeps IPv6 off the device (a TUN device inherits "default").</summary>
    public const string DisableIpv6 = "disable_ipv6";
}
