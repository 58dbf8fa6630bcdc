using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node;

/// <summary>How the balancer reaches this real server: direct routing (-g) or IP-in-IP (-i).</summary>
public enum NodeMode
{
    DirectRouting,
    Tunnel,
}

/// <summary>What `udr node setup` is asked to do.</summary>
public sealed record NodeSetupRequest(IReadOnlyList<InetAddress> Vips)
{
    public const string DefaultSysctlDirectory = "/etc/sysctl.d";
    public const string PersistFileName = "90-udr-node.conf";

    public NodeMode Mode { get; init; } = NodeMode.DirectRouting;

    /// <summary>The interface facing the balancer; null: the default route's, or the only one besides lo.</summary>
    public string? InterfaceName { get; init; }

    /// <summary>Also write <see cref="PersistFileName"/> into <see cref="SysctlDirectory"/>.</summary>
    public bool Persist { get; init; }

    public string SysctlDirectory { get; init; } = DefaultSysctlDirectory;

    public string PersistPath => Path.Combine(SysctlDirectory, PersistFileName);
}

/// <summary>The setting a sysctl must have; values in <see cref="Accepted"/> already satisfy it (and are left alone).</summary>
public sealed record DesiredSysctl(SysctlKey Key, string Value, IReadOnlyList<string> Accepted, string Why);

/// <summary>A computed setup: the interface it chose (and why), the changes in order, what is wanted, notes to print.</summary>
public sealed record NodeSetupPlan(
    LinkInfo Interface,
    string InterfaceReason,
    IReadOnlyList<Plans.NodeChange> Changes,
    IReadOnlyList<DesiredSysctl> Desired,
    IReadOnlyList<string> Notes);

/// <summary>Parsing and validation of VIPs given to the node module.</summary>
public static class NodeAddresses
{
    /// <summary>
    /// Parses and checks the VIPs, IPv4 or IPv6; duplicates are dropped, order kept. Throws <see cref="NodeException"/>.
    /// </summary>
    public static IReadOnlyList<InetAddress> ParseVips(IEnumerable<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var vips = new List<InetAddress>();
        foreach (string text in texts)
        {
            if (!InetAddress.TryParse(text, out InetAddress vip))
            {
                throw new NodeException($"--vip: '{text}' is not an IPv4 or IPv6 address (no prefix: a VIP is always a /32 or a /128)");
            }
            string? problem = UnusableReason(vip);
            if (problem != null)
            {
                throw new NodeException($"--vip: {text} {problem}");
            }
            if (!vips.Contains(vip))
            {
                vips.Add(vip);
            }
        }
        if (vips.Count == 0)
        {
            throw new NodeException("--vip: at least one VIP is required");
        }
        return vips;
    }


    /// <summary>Why an address cannot be a VIP (not a unicast host address), or null when it can.</summary>
    public static string? UnusableReason(InetAddress address)
    {
        if (address.IsIPv4)
        {
            return UnusableReason(address.IPv4);
        }
        UInt128 value = address.IPv6;
        return (value >> 120) == 0xFF ? "is a multicast address"
            : value == UInt128.Zero ? "is the unspecified address"
            : value == UInt128.One ? "is the loopback address"
            : (value >> 118) == 0x3FA ? "is link-local (fe80::/10)"
            : (value >> 32) == 0xFFFF ? "is an IPv4-mapped address (give the IPv4 address)"
            : null;
    }

    /// <summary>Why an IPv4 address cannot be a VIP (not a unicast host address), or null when it can.</summary>
    public static string? UnusableReason(uint address) => (address >> 24) switch
    {
        0 => "is in 0.0.0.0/8 (this network), not a host address",
        127 => "is a loopback address",
        >= 224 and < 240 => "is a multicast address",
        >= 240 => "is reserved or the broadcast address",
        _ when (address & 0xFFFF_0000) == 0xA9FE_0000 => "is link-local (169.254.0.0/16)",
        _ => null,
    };
}
