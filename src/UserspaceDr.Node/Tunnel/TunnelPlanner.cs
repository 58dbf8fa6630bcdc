using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node.Plans;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// Decides how `udr node tunnel` runs and what it changes; reads the host, changes nothing (loading the ipip module
/// in auto/kernel mode aside: that is how the kernel endpoint is found). Every refusal is a <see cref="NodeException"/>.
/// </summary>
public static class TunnelPlanner
{
    private const string IpipModule = "ipip";
    private const string IpipLinkType = "ipip";

    public static TunnelPlan Plan(TunnelOptions options, IHostSystem host)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(host);
        if (!host.IsRoot)
        {
            throw new NodeException("udr node tunnel opens a raw socket and a TUN device (or brings up tunl0) and changes sysctls: run it as root");
        }
        if (options.Vips.Count == 0)
        {
            throw new NodeException("--vip: at least one VIP is required");
        }
        if (options.Device != null)
        {
            ValidateDeviceName(options.Device);
        }
        if (options.StatsInterval < TimeSpan.Zero)
        {
            throw new NodeException("--stats-interval: must be 0 (only at exit) or a positive number of seconds");
        }
        if (options.Queues is < 1 or > TunnelQueueFilter.MaxQueues)
        {
            throw new NodeException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"--queues: {options.Queues} is not 1 to {TunnelQueueFilter.MaxQueues}"));
        }
        if (options.Queues > 1 && options.Mode == TunnelMode.Kernel)
        {
            throw new NodeException("--queues: the kernel's tunl0 is not udr's to split; queues are the user-space endpoint's (--mode user or auto)");
        }
        if (options.BusyPollMicroseconds is < 0 or > 1000)
        {
            throw new NodeException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"--busy-poll-usecs: {options.BusyPollMicroseconds} is not 0 to 1000 microseconds"));
        }
        if (options.BusyPollMicroseconds > 0 && options.Mode == TunnelMode.Kernel)
        {
            throw new NodeException("--busy-poll-usecs: the kernel's tunl0 takes its packets in softirq, with nothing to wake; busy polling is the user-space endpoint's (--mode user or auto)");
        }

        IReadOnlyList<LinkInfo> links = host.GetLinks();
        var notes = new List<string>();
        foreach (InetAddress vip in options.Vips)
        {
            if (links.Any(l => !l.IsLoopback && l.FindAddress(vip) != null && l.AnswersArp))
            {
                throw new NodeException($"--vip: {vip} is an address of an {(vip.IsIPv4 ? "ARP" : "NDP")}-speaking interface here, not a VIP on lo");
            }
            if (!links.Any(l => l.FindAddress(vip) != null))
            {
                notes.Add($"VIP {vip} is not an address of this node, so the local stack will not accept " +
                          $"its packets: run `udr node setup --mode tun --vip {vip}` first");
            }
        }
        InetAddress? ipv6Vip = options.Vips.FirstOrDefault(v => v.IsIPv6);
        if ((options.Type == TunnelType.Gue) != (options.GuePort != 0))
        {
            throw new NodeException(options.Type == TunnelType.Gue
                ? "--tun-type gue: --tun-port is required (the balancer's --tun-port)"
                : "--tun-port: only with --tun-type gue");
        }

        TunnelMode mode = options.Mode;
        string reason;
        string kernelDevice = options.Device ?? TunnelOptions.KernelDefaultDevice;
        if (options.Type != TunnelType.Ipip)
        {
            // The kernel takes GUE with fou and GRE with gre0, which udr does not set up: udr's own endpoint serves both.
            if (mode == TunnelMode.Kernel)
            {
                throw new NodeException($"--mode kernel: the kernel endpoint udr manages is tunl0 (IP-in-IP) only; --tun-type {(options.Type == TunnelType.Gue ? "gue" : "gre")} needs --mode user (or auto)");
            }
            mode = TunnelMode.User;
            reason = options.Type == TunnelType.Gue
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"GUE on UDP port {options.GuePort}, so the user-space endpoint")
                : "GRE, so the user-space endpoint";
        }
        else if (mode == TunnelMode.User)
        {
            reason = "asked for (--mode user)";
        }
        else if (options.BusyPollMicroseconds > 0)
        {
            mode = TunnelMode.User;
            reason = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"--busy-poll-usecs {options.BusyPollMicroseconds}, so the user-space endpoint");
        }
        else if (options.Queues > 1)
        {
            mode = TunnelMode.User;
            reason = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"--queues {options.Queues}, so the user-space endpoint");
        }
        else if (ipv6Vip is { IsIPv6: true } v6)
        {
            // The kernel's IPv6 endpoints (ip6tnl0, sit0) would take the packets too, but IPVS's mixes (IPv4 in IPv6,
            // IPv6 in IPv4) need both at once and a 4-in-6 fallback device udr does not manage: udr's own serves them all.
            if (mode == TunnelMode.Kernel)
            {
                throw new NodeException($"--mode kernel: the kernel endpoint here is tunl0 (IPv4 in IPv4) only, and {v6} is an IPv6 VIP; use --mode user (or auto)");
            }
            mode = TunnelMode.User;
            reason = "IPv6 VIPs (IPv6 in IPv6 or in IPv4), so the user-space endpoint";
        }
        else if (KernelEndpointAvailable(host, kernelDevice, out string why))
        {
            mode = TunnelMode.Kernel;
            reason = why;
        }
        else if (mode == TunnelMode.Kernel)
        {
            throw new NodeException($"--mode kernel: {why}; use --mode user (or auto) for the user-space endpoint");
        }
        else
        {
            mode = TunnelMode.User;
            reason = $"{why}, so the user-space endpoint";
        }

        string device = mode == TunnelMode.Kernel ? kernelDevice : options.Device ?? TunnelOptions.UserDefaultDevice;
        if (mode == TunnelMode.User && links.Any(l => l.Name == device))
        {
            throw new NodeException($"device {device} already exists (another `udr node tunnel`?); name another with --device");
        }
        return new TunnelPlan(mode, device, reason, notes);
    }

    /// <summary>
    /// What an endpoint device needs (LVS-TUN): reverse-path filtering off on it and on "all" (the kernel applies the
    /// larger of the two; the inner source, a client, is not routed via the tunnel device), IPv6 on it for IPv6 VIPs
    /// (a new device inherits net.ipv6.conf.default.disable_ipv6), then up.
    /// </summary>
    public static IReadOnlyList<NodeChange> DeviceChanges(IHostSystem host, string device, bool ipv6 = false)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(device);
        var changes = new List<NodeChange>();
        LinkInfo link = host.GetLinks().FirstOrDefault(l => l.Name == device)
            ?? throw new NodeException($"device {device} does not exist");
        foreach (SysctlKey key in new[] { SysctlKey.Conf(device, ConfSetting.RpFilter), SysctlKey.Conf("all", ConfSetting.RpFilter) })
        {
            string current = host.ReadSysctl(key) ?? throw new NodeException($"{key.Name} does not exist");
            if (current != "0")
            {
                changes.Add(new SysctlChange(key, current, "0"));
            }
        }
        SysctlKey disableIpv6 = SysctlKey.Ipv6Conf(device, ConfSetting.DisableIpv6);
        if (ipv6 && host.ReadSysctl(disableIpv6) is string off && off != "0")
        {
            changes.Add(new SysctlChange(disableIpv6, off, "0"));
        }
        // Up last: a device that is up is ready, which is what a watcher (or a test) can wait for.
        if (!link.IsUp)
        {
            changes.Add(new LinkStateChange(device, Up: true));
        }
        return changes;
    }

    /// <summary>Linux interface names (<see cref="LifelineDevice.IsValidName"/>).</summary>
    public static void ValidateDeviceName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!LifelineDevice.IsValidName(name))
        {
            throw new NodeException($"--device: '{name}' is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
        }
    }

    private static bool KernelEndpointAvailable(IHostSystem host, string device, out string why)
    {
        if (FindIpipDevice(host, device, out why))
        {
            return true;
        }
        if (device != TunnelOptions.KernelDefaultDevice)
        {
            return false;
        }
        // Loading ipip creates tunl0 (in every namespace, unless net.core.fb_tunnels_only_for_init_net says otherwise).
        if (!host.LoadKernelModule(IpipModule, out string? problem))
        {
            why = $"no ipip module ({TunnelOptions.KernelDefaultDevice} does not exist; {problem})";
            return false;
        }
        return FindIpipDevice(host, device, out why);
    }

    private static bool FindIpipDevice(IHostSystem host, string device, out string why)
    {
        LinkInfo? link = host.GetLinks().FirstOrDefault(l => l.Name == device);
        if (link == null)
        {
            why = $"no ipip device {device}";
            return false;
        }
        if (link.LinkType != IpipLinkType)
        {
            why = $"{device} is not an ipip device (link type {link.LinkType ?? "unknown"})";
            return false;
        }
        why = $"the kernel's ipip device {device} exists";
        return true;
    }
}
