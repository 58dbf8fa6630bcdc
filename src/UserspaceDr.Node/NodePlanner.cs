using System.Globalization;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node.Plans;

namespace UserspaceDr.Node;

/// <summary>
/// Computes what setup and teardown must change, from what the host holds now. Planning only reads; every refusal
/// (unknown interface, a VIP that is the node's own address, …) happens here, before anything is changed.
/// </summary>
public static class NodePlanner
{
    public const string Loopback = "lo";

    /// <summary>arp_ignore 1 and 2 both keep a VIP on lo from being answered for; a 2 already set is not lowered.</summary>
    private static readonly string[] ArpIgnoreHides = ["1", "2"];

    public static NodeSetupPlan PlanSetup(NodeSetupRequest request, IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(host);
        if (request.Vips.Count == 0)
        {
            throw new NodeException("--vip: at least one VIP is required");
        }
        IReadOnlyList<LinkInfo> links = host.GetLinks();
        (LinkInfo facing, string reason) = ChooseInterface(request.InterfaceName, links, host);

        // IPv6 needs no sysctl: Linux answers a Neighbor Solicitation only for an address on the interface it arrived
        // on (ipv6_chk_addr with the device, strict), so a VIP on lo is never advertised; ARP is hidden for IPv4 VIPs.
        IReadOnlyList<DesiredSysctl> desired = request.Vips.Any(v => v.IsIPv4) ? DesiredSysctls(request.Mode, facing.Name) : [];
        var changes = new List<NodeChange>();
        // Order matters on a live host: ARP is hidden first, then the VIPs appear on lo, so there is never a moment
        // when this node answers ARP for a VIP.
        foreach (DesiredSysctl want in desired)
        {
            string current = host.ReadSysctl(want.Key)
                ?? throw new NodeException($"{want.Key.Name} does not exist on this host (is IPv4 enabled on {facing.Name}?)");
            if (!want.Accepted.Contains(current))
            {
                changes.Add(new SysctlChange(want.Key, current, want.Value));
            }
        }
        foreach (InetAddress vip in request.Vips)
        {
            AddressAddChange? add = PlanVip(vip, links);
            if (add != null)
            {
                changes.Add(add);
            }
        }

        var notes = new List<string>
        {
            "routes are not touched: the default route keeps the real address as its source",
        };
        if (request.Mode == NodeMode.Tunnel)
        {
            notes.Add("tun: ARP is hidden, the VIPs are on lo and rp_filter is 0 on all and lo, so decapsulated packets " +
                      "for a VIP are accepted; the tunnel endpoint is a separate, long-running process: " +
                      $"`udr node tunnel --vip {string.Join(" --vip ", request.Vips)}` " +
                      "(the kernel's ipip where the module exists, else udr's user-space endpoint; keep it under a service manager)");
        }
        if (request.Persist)
        {
            if (!host.DirectoryExists(request.SysctlDirectory))
            {
                throw new NodeException($"--persist: {request.SysctlDirectory} does not exist (is this host using systemd-sysctl or procps?)");
            }
            string content = PersistFileContent(desired);
            string? existing = host.ReadFile(request.PersistPath);
            if (existing != content)
            {
                changes.Add(new FileWriteChange(request.PersistPath, existing, content));
            }
            notes.AddRange(PersistNotes(request.Vips, request.PersistPath));
        }
        return new NodeSetupPlan(facing, reason, changes, desired, notes);
    }

    /// <summary>The changes that take back what <paramref name="state"/> records, newest first; notes say what was skipped.</summary>
    public static IReadOnlyList<NodeChange> PlanTeardown(NodeState state, IHostSystem host, ICollection<string> notes)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(notes);
        var changes = new List<NodeChange>();
        IReadOnlyList<LinkInfo> links = host.GetLinks();
        // The reverse of setup: VIPs leave lo before ARP stops being hidden.
        foreach (FileRecord file in state.Files.Reverse())
        {
            string? current = host.ReadFile(file.Path);
            if (file.Previous == null)
            {
                if (current != null)
                {
                    changes.Add(new FileDeleteChange(file.Path, current));
                }
            }
            else if (current != file.Previous)
            {
                changes.Add(new FileWriteChange(file.Path, current, file.Previous));
            }
        }
        foreach (AddressRecord record in state.Addresses.Reverse())
        {
            if (!InetAddress.TryParse(record.Address, out InetAddress address))
            {
                throw new NodeException($"state file: '{record.Address}' is not an address; not touching anything");
            }
            LinkInfo? link = links.FirstOrDefault(l => l.Name == record.Device);
            if (link?.FindAddress(address)?.PrefixLength == record.PrefixLength)
            {
                changes.Add(new AddressDeleteChange(record.Device, address, record.PrefixLength));
            }
            else
            {
                notes.Add($"{record.Address}/{record.PrefixLength} is no longer on {record.Device}: nothing to remove");
            }
        }
        foreach (SysctlRecord record in state.Sysctls.Reverse())
        {
            SysctlKey key = SysctlKey.FromRelativePath(record.Path);
            string? current = host.ReadSysctl(key);
            if (current == null)
            {
                notes.Add($"{key.Name} no longer exists (interface removed?): skipped");
                continue;
            }
            if (current != record.Applied)
            {
                notes.Add($"{key.Name} was changed since setup (setup set {record.Applied}, it is {current}); restoring {record.Previous} as recorded");
            }
            if (current != record.Previous)
            {
                changes.Add(new SysctlChange(key, current, record.Previous));
            }
        }
        return changes;
    }

    /// <summary>The sysctls a mode needs: the kernel uses the larger of "all" and the interface's value, so both are set.</summary>
    public static IReadOnlyList<DesiredSysctl> DesiredSysctls(NodeMode mode, string facingInterface)
    {
        var desired = new List<DesiredSysctl>();
        foreach (string device in new[] { "all", facingInterface })
        {
            desired.Add(new DesiredSysctl(SysctlKey.Conf(device, ConfSetting.ArpIgnore), "1", ArpIgnoreHides,
                "answer ARP only for addresses on the receiving interface (not for a VIP on lo)"));
            desired.Add(new DesiredSysctl(SysctlKey.Conf(device, ConfSetting.ArpAnnounce), "2", ["2"],
                "never use a VIP as the source of our own ARP requests"));
        }
        if (mode == NodeMode.Tunnel)
        {
            foreach (string device in new[] { "all", Loopback })
            {
                desired.Add(new DesiredSysctl(SysctlKey.Conf(device, ConfSetting.RpFilter), "0", ["0"],
                    "accept decapsulated packets whose source is not routed back through the tunnel"));
            }
        }
        return desired;
    }

    /// <summary>
    /// The interface facing the balancer: the one asked for, else the default route's, else the only one besides lo.
    /// </summary>
    public static (LinkInfo Link, string Reason) ChooseInterface(string? requested, IReadOnlyList<LinkInfo> links, IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(links);
        ArgumentNullException.ThrowIfNull(host);
        string known = string.Join(", ", links.Select(l => l.Name));
        if (requested != null)
        {
            LinkInfo link = links.FirstOrDefault(l => l.Name == requested)
                ?? throw new NodeException($"--interface: unknown interface '{requested}' (this host has: {known})");
            if (link.IsLoopback)
            {
                throw new NodeException($"--interface: {requested} is the loopback; name the interface that faces the balancer");
            }
            return (link, "--interface");
        }
        RouteInfo? route = host.GetDefaultRoute();
        if (route?.Device != null && links.FirstOrDefault(l => l.Name == route.Device) is { IsLoopback: false } viaDefault)
        {
            return (viaDefault, "the default route's interface");
        }
        LinkInfo[] candidates = [.. links.Where(l => !l.IsLoopback)];
        return candidates.Length switch
        {
            1 => (candidates[0], "the only interface besides lo"),
            0 => throw new NodeException("this host has no interface besides lo to face the balancer"),
            _ => throw new NodeException(
                $"cannot tell which interface faces the balancer (no default route; candidates: {string.Join(", ", candidates.Select(c => c.Name))}): pass --interface"),
        };
    }

    /// <summary>A VIP goes on lo as a host address (/32, /128); refused where the node would answer for it or owns it.</summary>
    private static AddressAddChange? PlanVip(InetAddress vip, IReadOnlyList<LinkInfo> links)
    {
        int host = vip.MaxPrefixLength;
        string neighbourProtocol = vip.IsIPv4 ? "ARP" : "neighbour solicitations";
        foreach (LinkInfo link in links)
        {
            LinkAddress? found = link.FindAddress(vip);
            if (found == null)
            {
                continue;
            }
            if (link.IsLoopback)
            {
                if (link.Name == Loopback && found.PrefixLength == host)
                {
                    return null;
                }
                throw new NodeException($"VIP {vip} is already on {link.Name} as {found}; a VIP belongs on lo as /{host} (remove it first)");
            }
            throw found.PrefixLength < host
                ? new NodeException($"VIP {vip} is this node's own address ({found} on {link.Name}): a VIP must be an address the balancer owns")
                : new NodeException($"VIP {vip} is configured on {link.Name} ({found}), where the node would answer {neighbourProtocol} for it: " +
                                    $"remove it first (ip addr del {found} dev {link.Name})");
        }
        return new AddressAddChange(Loopback, vip, host);
    }

    internal static string PersistFileContent(IReadOnlyList<DesiredSysctl> desired)
    {
        var text = new StringBuilder();
        text.Append("# Written by `udr node setup --persist` (UserspaceDr): ARP hiding for direct-routing VIPs on lo.\n");
        text.Append("# `udr node teardown` removes this file (or restores what it replaced).\n");
        foreach (DesiredSysctl want in desired)
        {
            text.Append(CultureInfo.InvariantCulture, $"{want.Key.Name} = {want.Value}\n");
        }
        return text.ToString();
    }

    private static IEnumerable<string> PersistNotes(IReadOnlyList<InetAddress> vips, string persistPath)
    {
        yield return $"--persist: {persistPath} sets these sysctls at boot (systemd-sysctl / procps); the state file that " +
                     "teardown reads lives in /run by default and is gone after a reboot, so after one remove that file by hand " +
                     "(or keep the state with --state-file on persistent storage)";
        var networkd = new StringBuilder("the VIPs on lo are not persisted by udr; keep them across reboots with one of these (printed, not installed):\n");
        networkd.Append("  systemd-networkd, /etc/systemd/network/10-udr-lo.network:\n");
        networkd.Append("    [Match]\n    Name=lo\n    [Network]\n    Address=127.0.0.1/8\n");
        foreach (InetAddress vip in vips)
        {
            networkd.Append(CultureInfo.InvariantCulture, $"    Address={vip}/{vip.MaxPrefixLength}\n");
        }
        networkd.Append("  ifupdown, in the 'iface lo inet loopback' stanza of /etc/network/interfaces:\n");
        foreach (InetAddress vip in vips)
        {
            string address = $"{vip}/{vip.MaxPrefixLength}";
            string family = vip.IsIPv4 ? "-4" : "-6";
            networkd.Append(CultureInfo.InvariantCulture, $"    up ip {family} addr add {address} dev lo\n    down ip {family} addr del {address} dev lo\n");
        }
        yield return networkd.ToString().TrimEnd('\n');
    }
}
