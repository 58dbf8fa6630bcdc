using System.Globalization;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node;

/// <summary>
/// `udr node check`: is this real server right for its VIPs? Reads only. The kernel acts on the larger of
/// net.ipv4.conf.all.X and net.ipv4.conf.IF.X, so each ARP-speaking interface is judged on that effective value (when
/// there is an IPv4 VIP: an IPv6 VIP on lo is never advertised, whatever the sysctls).
/// </summary>
public static class NodeCheck
{
    public static IReadOnlyList<CheckResult> Run(IReadOnlyList<InetAddress> vips, NodeMode mode, string? interfaceName, IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentNullException.ThrowIfNull(host);
        IReadOnlyList<LinkInfo> links = host.GetLinks();
        LinkInfo[] arpInterfaces;
        if (interfaceName != null)
        {
            (LinkInfo chosen, _) = NodePlanner.ChooseInterface(interfaceName, links, host);
            arpInterfaces = [chosen];
        }
        else
        {
            arpInterfaces = [.. links.Where(l => l.AnswersArp)];
        }
        if (!vips.Any(v => v.IsIPv4))
        {
            arpInterfaces = [];
        }
        string vipList = string.Join(' ', vips.Select(v => $"--vip {v}"));
        string setup = $"udr node setup {vipList}{(mode == NodeMode.Tunnel ? " --mode tun" : string.Empty)}";
        var results = new List<CheckResult>();

        foreach (LinkInfo link in arpInterfaces)
        {
            int ignore = Effective(host, link.Name, ConfSetting.ArpIgnore, out string ignoreDetail);
            results.Add(ignore is 1 or 2
                ? CheckResult.Pass($"arp_ignore on {link.Name}", $"{ignore} ({ignoreDetail}): only addresses on {link.Name} are answered for")
                : CheckResult.Fail($"arp_ignore on {link.Name}",
                    ignore == 8
                        ? $"8 ({ignoreDetail}): {link.Name} answers no ARP at all, so the node itself is unreachable"
                        : $"{ignore} ({ignoreDetail}): {link.Name} answers ARP for every local address, a VIP on lo included (the ARP leak that steals the VIP from the balancer)",
                    $"sysctl -w net.ipv4.conf.all.arp_ignore=1 {SysctlKey.Conf(link.Name, ConfSetting.ArpIgnore).Name}=1 (or: {setup})"));

            int announce = Effective(host, link.Name, ConfSetting.ArpAnnounce, out string announceDetail);
            results.Add(announce == 2
                ? CheckResult.Pass($"arp_announce on {link.Name}", $"2 ({announceDetail}): ARP requests use the best local source, never a VIP")
                : CheckResult.Fail($"arp_announce on {link.Name}",
                    $"{announce} ({announceDetail}): ARP requests from {link.Name} may carry a VIP as sender and poison neighbours' caches",
                    $"sysctl -w net.ipv4.conf.all.arp_announce=2 {SysctlKey.Conf(link.Name, ConfSetting.ArpAnnounce).Name}=2 (or: {setup})"));
        }

        foreach (InetAddress vip in vips)
        {
            int hostPrefix = vip.MaxPrefixLength;
            LinkAddress? onLoopback = links.FirstOrDefault(l => l.Name == NodePlanner.Loopback)?.FindAddress(vip);
            results.Add(onLoopback?.PrefixLength == hostPrefix
                ? CheckResult.Pass($"VIP {vip} on lo", $"{vip}/{hostPrefix} is on lo: the node accepts traffic for it")
                : CheckResult.Fail($"VIP {vip} on lo",
                    onLoopback == null ? $"{vip} is not on lo: the node drops the balancer's traffic for it" : $"{vip} is on lo as {onLoopback}, not /{hostPrefix}",
                    $"ip addr add {vip}/{hostPrefix} dev lo (or: {setup})"));

            // IPv4: ARP answered for any local address unless arp_ignore; IPv6: a solicitation is answered for an
            // address on the interface it arrived on, so an IPv6 VIP on eth0 leaks whatever the sysctls say.
            string what = vip.IsIPv4 ? "ARP" : "neighbour solicitations";
            LinkInfo[] leaking = [.. links.Where(l => l.AnswersArp && l.FindAddress(vip) != null)];
            results.Add(leaking.Length == 0
                ? CheckResult.Pass($"VIP {vip} off ARP interfaces", $"{vip} is on no interface that answers {what}")
                : CheckResult.Fail($"VIP {vip} off ARP interfaces",
                    $"{vip} is on {string.Join(", ", leaking.Select(l => l.Name))}, which answer {what} for it",
                    string.Join("; ", leaking.Select(l => $"ip addr del {l.FindAddress(vip)} dev {l.Name}"))));
        }

        RouteInfo? route = host.GetDefaultRoute();
        if (route != null)
        {
            results.Add(route.PreferredSource is { } source && vips.Contains(source)
                ? CheckResult.Fail("default route", $"its source is the VIP {source}: replies to others would leave from the VIP",
                    "ip route change default ... src REAL-ADDRESS")
                : CheckResult.Pass("default route", $"via {route.Device}, source {(route.PreferredSource is { } s ? s.ToString() : "chosen by the kernel")} (not a VIP)"));
        }

        if (mode == NodeMode.Tunnel)
        {
            // Reverse-path filtering is IPv4's: IPv6 VIPs need none of it.
            foreach (string device in vips.Any(v => v.IsIPv4) ? new[] { "all", NodePlanner.Loopback } : [])
            {
                SysctlKey key = SysctlKey.Conf(device, ConfSetting.RpFilter);
                string? value = host.ReadSysctl(key);
                results.Add(value == "0"
                    ? CheckResult.Pass($"rp_filter on {device}", "0: decapsulated packets are not dropped by the reverse-path check")
                    : CheckResult.Fail($"rp_filter on {device}", $"{value ?? "missing"}: decapsulated packets may be dropped", $"sysctl -w {key.Name}=0 (or: {setup})"));
            }
            results.Add(TunnelEndpointCheck(vips, host));
        }
        return results;
    }

    /// <summary>
    /// Something must decapsulate: the kernel's tunl0 up (ipip module), or udr's user-space endpoint (its TUN device,
    /// named udrtun* unless --device said otherwise). Only a warning when neither is seen: the endpoint may be about to start.
    /// </summary>
    private static CheckResult TunnelEndpointCheck(IReadOnlyList<InetAddress> vips, IHostSystem host)
    {
        IReadOnlyList<LinkInfo> links = host.GetLinks();
        LinkInfo? kernel = links.FirstOrDefault(l => l.Name == Tunnel.TunnelOptions.KernelDefaultDevice && l.IsUp);
        LinkInfo? user = links.FirstOrDefault(l => l.Name.StartsWith("udrtun", StringComparison.Ordinal) && l.IsUp);
        if (kernel != null || user != null)
        {
            return CheckResult.Pass("tunnel endpoint", kernel != null ? $"{kernel.Name} is up (the kernel's ipip)" : $"{user!.Name} is up (`udr node tunnel`, user space)");
        }
        string start = $"udr node tunnel --vip {string.Join(" --vip ", vips)}";
        return CheckResult.Warn("tunnel endpoint", "neither tunl0 nor a udrtun device is up: IP-in-IP packets are not decapsulated",
            $"{start} (foreground; the kernel's ipip when present, else user space)");
    }

    /// <summary>Exit code of `udr node check`: 0 only when nothing failed.</summary>
    public static int ExitCode(IReadOnlyList<CheckResult> results) =>
        results is null || results.Any(r => r.Status == CheckStatus.Fail) ? 1 : 0;

    private static int Effective(IHostSystem host, string device, string setting, out string detail)
    {
        int all = ReadInt(host, SysctlKey.Conf("all", setting));
        int own = ReadInt(host, SysctlKey.Conf(device, setting));
        detail = string.Create(CultureInfo.InvariantCulture, $"all={all}, {device}={own}");
        return Math.Max(all, own);
    }

    private static int ReadInt(IHostSystem host, SysctlKey key)
    {
        string? text = host.ReadSysctl(key);
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new NodeException($"{key.Name} is {(text == null ? "missing" : $"'{text}'")} on this host");
    }
}
