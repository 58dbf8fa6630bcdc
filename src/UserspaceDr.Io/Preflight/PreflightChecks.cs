using System.Globalization;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Preflight;

/// <summary>One named check of the balancer host; it yields one or more results.</summary>
public sealed record PreflightCheck(string Name, Func<PreflightContext, IEnumerable<CheckResult>> Evaluate);

/// <summary>What every check sees: the options, the host, and the interface (null when it does not exist).</summary>
public sealed class PreflightContext(PreflightOptions options, IHostSystem host)
{
    public PreflightOptions Options { get; } = options;

    public IHostSystem Host { get; } = host;

    public IReadOnlyList<LinkInfo> Links { get; } = host.GetLinks();

    public LinkInfo? Interface => Links.FirstOrDefault(l => l.Name == Options.InterfaceName);

    public IReadOnlyList<uint> Vips => [.. RuleSetTraffic.Destinations(Options.Rules).Where(a => a.IsIPv4).Select(a => a.IPv4)];

    /// <summary>Every distinct real server with the forwarding methods it is used with.</summary>
    public IEnumerable<(uint Address, ForwardingMethod Method)> RealServers =>
        Options.Rules.Services.SelectMany(s => s.RealServers).Where(r => r.Address.IsIPv4).Select(r => (r.Address.IPv4, r.Method)).Distinct();

    /// <summary>True when <paramref name="address"/> is configured on any interface of this host.</summary>
    public bool IsLocal(uint address) => Links.Any(l => l.Find(address) != null);

    /// <summary>
    /// True when <paramref name="server"/> is the balancer itself, as the kernel's local routes have it: 127.0.0.0/8,
    /// ::1, or an address of any interface of this host.
    /// </summary>
    public bool IsOwnAddress(InetAddress server) => server.IsIPv4
        ? (server.IPv4 >> 24) == 127 || IsLocal(server.IPv4)
        : server.IPv6 == UInt128.One || Links.Any(l => l.Ipv6Addresses.Any(a => a.Address == server));

    /// <summary>The run's interfaces other than this one that exist on the host.</summary>
    public IEnumerable<LinkInfo> OtherRunLinks =>
        Links.Where(l => l.Name != Options.InterfaceName && Options.RunInterfaces.Contains(l.Name));

    /// <summary>True for the interface that reports what no interface of the run has (the first, or the only one).</summary>
    public bool ReportsForTheRun => Options.RunInterfaces.Count == 0 || Options.RunInterfaces[0] == Options.InterfaceName;
}

/// <summary>
/// The balancer host's checklist (issue 4): the interface, the VIPs, GRO/LRO, ip_forward and rp_filter, the real
/// servers, the tunnel MTU, nftables and capabilities. `udr preflight` prints it; `udr run` can run the same list at
/// start through <see cref="Run"/>.
/// </summary>
public static class PreflightChecks
{
    /// <summary>CAP_NET_ADMIN (nftables, interface settings) and CAP_NET_RAW (AF_PACKET), from linux/capability.h.</summary>
    private const int CapNetAdmin = 12;
    private const int CapNetRaw = 13;
    private const int IpInIpHeader = 20;

    public static IReadOnlyList<PreflightCheck> All { get; } =
    [
        new("interface", CheckInterface),
        new("vips", CheckVips),
        new("ipv6", CheckIpv6),
        new("offloads", CheckOffloads),
        new("forwarding", CheckForwarding),
        new("real servers", CheckRealServers),
        new("tunnel mtu", CheckTunnelMtu),
        new("nftables", CheckNftables),
        new("capabilities", CheckCapabilities),
        new("af_xdp", CheckAfXdp),
    ];

    /// <summary>Runs every check of <see cref="All"/> in order against the running host (or <paramref name="host"/>).</summary>
    public static IReadOnlyList<CheckResult> Run(PreflightOptions options, IHostSystem? host = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var context = new PreflightContext(options, host ?? new LinuxHostSystem());
        return [.. All.SelectMany(check => check.Evaluate(context))];
    }

    /// <summary>
    /// With --backend xdp: libbpf can be loaded, the interface runs no XDP program of someone else's (a link runs one;
    /// udr's would be refused), and its frames fit a UMEM chunk after the headroom (no XDP multi-buffer).
    /// </summary>
    private static IEnumerable<CheckResult> CheckAfXdp(PreflightContext context)
    {
        if (!context.Options.AfXdp || context.Interface is not { } link)
        {
            yield break;
        }
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(Linux.Interop.Libraries.Libbpf, out nint libbpf))
        {
            yield return CheckResult.Fail("af_xdp", $"{Linux.Interop.Libraries.Libbpf} cannot be loaded", "install libbpf1 (apt install libbpf1)");
        }
        else
        {
            System.Runtime.InteropServices.NativeLibrary.Free(libbpf);
            yield return CheckResult.Pass("af_xdp", $"{Linux.Interop.Libraries.Libbpf} loads");
        }
        if (link.Xdp is { } program)
        {
            yield return program.Name == Xdp.XdpSteeringProgram.ProgramName
                ? CheckResult.Fail("af_xdp", $"{link.Name} already runs udr's XDP program (id {program.Id}): another udr serves it",
                    "stop the other udr; its program goes with it")
                : CheckResult.Fail("af_xdp", $"{link.Name} already runs XDP program '{program.Name}' (id {program.Id}); udr's cannot attach beside it",
                    "detach it (ip link set dev " + link.Name + " xdp off) or use --backend afpacket");
        }
        int largestFrame = link.Mtu + EthernetFrame.HeaderLength + EthernetFrame.VlanTagLength;
        if (largestFrame > Xdp.XskSocket.LargestChunk - Xdp.XskSocket.Headroom)
        {
            yield return CheckResult.Fail("af_xdp", $"MTU {link.Mtu} frames do not fit a {Xdp.XskSocket.LargestChunk}-byte UMEM chunk after {Xdp.XskSocket.Headroom} bytes of headroom",
                $"lower the MTU to {Xdp.XskSocket.LargestChunk - Xdp.XskSocket.Headroom - EthernetFrame.HeaderLength - EthernetFrame.VlanTagLength} or use --backend afpacket");
        }
        else if (link.Xdp is null)
        {
            yield return CheckResult.Pass("af_xdp", $"{link.Name} runs no XDP program, and MTU {link.Mtu} frames fit a UMEM chunk");
        }
    }

    private static IEnumerable<CheckResult> CheckInterface(PreflightContext context)
    {
        string name = context.Options.InterfaceName;
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield return CheckResult.Fail("interface", $"no interface named '{name}' (this host has: {string.Join(", ", context.Links.Select(l => l.Name))})",
                "pass the interface that carries VIP traffic");
            yield break;
        }
        if (!link.IsUp)
        {
            yield return CheckResult.Fail("interface", $"{name} is down (MTU {link.Mtu})", $"ip link set {name} up");
        }
        else if (!link.Addresses.Any(a => a.PrefixLength < 32))
        {
            yield return CheckResult.Warn("interface", $"{name} is up, MTU {link.Mtu}, but has no subnet address: real servers cannot be on-link and ARP has no source",
                $"ip addr add ADDRESS/PREFIX dev {name}");
        }
        else
        {
            yield return CheckResult.Pass("interface", string.Create(CultureInfo.InvariantCulture,
                $"{name} is up, MTU {link.Mtu}, {string.Join(", ", link.Addresses.Where(a => a.PrefixLength < 32))}"));
        }
    }

    private static IEnumerable<CheckResult> CheckVips(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield break;
        }
        if (context.Vips.Count == 0)
        {
            yield return CheckResult.Warn("vips", "the rules file has no virtual service");
        }
        foreach (uint vip in context.Vips)
        {
            string text = Ipv4Address.Format(vip);
            string check = $"VIP {text}";
            InterfaceAddress? here = link.Find(vip);
            LinkInfo? elsewhere = context.Links.FirstOrDefault(l => l != link && l.Find(vip) != null);
            if (here?.PrefixLength == 32)
            {
                yield return CheckResult.Pass(check, $"on {link.Name} as /32: the kernel answers ARP for it");
            }
            else if (here != null)
            {
                yield return CheckResult.Warn(check, $"on {link.Name} as {here}, not /32: its subnet route makes this host claim the whole prefix",
                    $"ip addr del {here} dev {link.Name}; ip addr add {text}/32 dev {link.Name}");
            }
            else if (context.OtherRunLinks.Any(l => l.Find(vip) != null))
            {
                // Another interface of this run holds it (NAT: the VIP on the public side); that one reports it.
                continue;
            }
            else if (context.Options.VrrpAddresses.TryGetValue(InetAddress.FromIPv4(vip), out string? instance))
            {
                if (context.ReportsForTheRun)
                {
                    yield return CheckResult.Pass(check, $"not here now: VRRP instance {instance}'s address, which keepalived adds on the master");
                }
            }
            else if (context.Options.AnswerArp)
            {
                yield return CheckResult.Pass(check, $"not on {link.Name}; udr answers ARP for it (--answer-arp)");
            }
            else if (elsewhere != null)
            {
                yield return CheckResult.Warn(check, $"on {elsewhere.Name}, not on {link.Name}: ARP for it is answered only while arp_ignore allows it",
                    $"ip addr add {text}/32 dev {link.Name} (or run udr with --answer-arp)");
            }
            else if (context.ReportsForTheRun)
            {
                yield return CheckResult.Fail(check, $"missing: not on {link.Name} and udr will not answer ARP for it, so clients cannot reach it",
                    $"ip addr add {text}/32 dev {link.Name} (or run udr with --answer-arp)");
            }
        }
    }

    /// <summary>
    /// IPv6 services: each VIP reachable (on the interface as /128, where the kernel answers solicitations for it, or
    /// answered by udr with --answer-arp), an address on the interface to solicit the servers from, each direct-routing
    /// server on a prefix of the interface (udr solicits its MAC itself when it runs), and a way to each NAT and tunnel
    /// server (on a segment of the run, or routed).
    /// </summary>
    private static IEnumerable<CheckResult> CheckIpv6(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        InetAddress[] vips = [.. RuleSetTraffic.Destinations(context.Options.Rules).Where(a => a.IsIPv6)];
        (InetAddress Address, ForwardingMethod Method)[] servers = [.. context.Options.Rules.Services.SelectMany(s => s.RealServers)
            .Where(r => r.Address.IsIPv6).Select(r => (r.Address, r.Method)).Distinct()];
        if (link == null || (vips.Length == 0 && servers.Length == 0))
        {
            yield break; // (an IPv4 service may have IPv6 tunnel servers)
        }
        // With several interfaces, each reports what is its own: a server or VIP on another interface of the run is that
        // one's, and what belongs to none is reported once, by the first.
        bool ipv6Elsewhere = context.OtherRunLinks.Any(l => l.Ipv6Addresses.Count > 0);
        if (link.Ipv6Addresses.Count == 0 && !ipv6Elsewhere)
        {
            yield return CheckResult.Fail("ipv6 on " + link.Name, $"{link.Name} has no IPv6 address: udr cannot solicit the IPv6 servers' MACs",
                $"sysctl -w net.ipv6.conf.{link.Name}.disable_ipv6=0 (its link-local address will do), or ip -6 addr add ADDRESS/64 dev {link.Name}");
        }
        foreach (InetAddress vip in vips)
        {
            string check = $"VIP {vip}";
            LinkAddress? here = link.FindAddress(vip);
            if (here == null && (context.OtherRunLinks.Any(l => l.FindAddress(vip) != null) || !context.ReportsForTheRun))
            {
                continue; // another interface of the run holds it, or reports it
            }
            if (here?.PrefixLength == 128)
            {
                yield return CheckResult.Pass(check, $"on {link.Name} as /128: the kernel answers neighbour solicitations for it");
            }
            else if (here != null)
            {
                yield return CheckResult.Warn(check, $"on {link.Name} as {here}, not /128: its prefix route makes this host claim the whole prefix",
                    $"ip -6 addr del {here} dev {link.Name}; ip -6 addr add {vip}/128 dev {link.Name} nodad");
            }
            else if (context.Options.VrrpAddresses.TryGetValue(vip, out string? instance))
            {
                yield return CheckResult.Pass(check, $"not here now: VRRP instance {instance}'s address, which keepalived adds on the master");
            }
            else if (context.Options.AnswerArp)
            {
                yield return CheckResult.Pass(check, $"not on {link.Name}; udr answers neighbour solicitations for it and announces it (--answer-arp)");
            }
            else
            {
                yield return CheckResult.Fail(check, $"missing: not on {link.Name} and udr will not answer neighbour solicitations for it, so clients cannot reach it",
                    $"ip -6 addr add {vip}/128 dev {link.Name} nodad (or run udr with --answer-arp)");
            }
        }
        foreach ((InetAddress server, ForwardingMethod method) in servers)
        {
            if (context.IsOwnAddress(server))
            {
                if (context.ReportsForTheRun)
                {
                    yield return LocalServer(server, method);
                }
                continue;
            }
            bool onLink = link.Ipv6Addresses.Any(a => a.Covers(server));
            if (!onLink && (context.OtherRunLinks.Any(l => l.Ipv6Addresses.Any(a => a.Covers(server))) || !context.ReportsForTheRun))
            {
                continue; // on the segment of another interface of the run, or reported by the first
            }
            if (method == ForwardingMethod.Route)
            {
                yield return onLink
                    ? CheckResult.Pass($"real server {server} (dr)", $"on-link on {link.Name}: udr solicits its MAC when it runs")
                    : CheckResult.Fail($"real server {server} (dr)",
                        $"off-link: not on an IPv6 prefix of {link.Name} ({string.Join(", ", link.Ipv6Addresses.Where(a => a.Scope != "link"))}); direct routing rewrites only the MAC, so the server must share the link",
                        "put the real server on the balancer's segment, or use -i (tunnel)");
                continue;
            }
            string name = $"real server {server} ({(method == ForwardingMethod.Tunnel ? "tun" : "nat")})";
            if (onLink)
            {
                yield return CheckResult.Pass(name, $"on-link on {link.Name}: udr solicits its MAC when it runs");
            }
            else if (context.Host.GetRoute(server) is { } route)
            {
                string via = $"routed via {route.Device}{(route.Gateway is { } gateway ? $" gateway {gateway}" : string.Empty)}";
                yield return method == ForwardingMethod.Tunnel
                    ? CheckResult.Pass(name, via)
                    : CheckResult.Warn(name, $"off-link, {via}: its replies must come back through this balancer",
                        $"route {server}'s way to the clients through this balancer, or put it on a segment of the balancer");
            }
            else
            {
                yield return CheckResult.Fail(name, "no route to it", $"ip -6 route add {server} via GATEWAY");
            }
        }
    }

    private static IEnumerable<CheckResult> CheckOffloads(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield break;
        }
        string name = link.Name;
        OffloadFeatures? features = context.Host.GetOffloads(name);
        if (features == null)
        {
            yield return CheckResult.Warn("gro/lro", $"cannot read the offloads of {name} (is ethtool installed?)", "apt-get install ethtool");
            yield break;
        }
        string? fixFailure = null;
        bool groFixable = features.Gro is { On: true, Fixed: false };
        bool lroFixable = features.Lro is { On: true, Fixed: false };
        if (context.Options.Fix && (groFixable || lroFixable))
        {
            try
            {
                context.Host.DisableOffloads(name, groFixable, lroFixable);
            }
            catch (HostException e)
            {
                fixFailure = e.Message;
            }
            OffloadFeatures after = context.Host.GetOffloads(name) ?? features;
            yield return Offload("GRO", name, after.Gro, fixedNow: groFixable && after.Gro is { On: false }, fixFailure);
            yield return Offload("LRO", name, after.Lro, fixedNow: lroFixable && after.Lro is { On: false }, fixFailure);
            yield break;
        }
        yield return Offload("GRO", name, features.Gro, fixedNow: false, null);
        yield return Offload("LRO", name, features.Lro, fixedNow: false, null);
    }

    private static CheckResult Offload(string feature, string device, OffloadState? state, bool fixedNow, string? fixFailure)
    {
        string check = $"{feature} on {device}";
        string option = feature == "GRO" ? "gro" : "lro";
        return state switch
        {
            null => CheckResult.Pass(check, "not reported by the driver"),
            { On: false } when fixedNow => CheckResult.Pass(check, "was on; turned off (--fix)"),
            { On: false } => CheckResult.Pass(check, "off"),
            { Fixed: true } => CheckResult.Warn(check, "on and fixed by the driver: merged super-frames reach udr (it carries them with virtio-net headers, but IP-in-IP cannot)"),
            _ => CheckResult.Warn(check,
                $"on: the NIC merges segments into super-frames larger than the MTU before udr sees them{(fixFailure != null ? $"; --fix failed: {fixFailure}" : string.Empty)}",
                $"ethtool -K {device} {option} off (or: udr preflight --fix)"),
        };
    }

    private static IEnumerable<CheckResult> CheckForwarding(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield break;
        }
        string? forward = context.Host.ReadSysctl(SysctlKey.IpForward);
        uint[] notLocal = [.. context.Vips.Where(v => !context.IsLocal(v))];
        if (forward == "0")
        {
            yield return CheckResult.Pass("ip_forward", "0: the kernel routes nothing, so it never forwards a second copy of VIP traffic");
        }
        else if (notLocal.Length > 0)
        {
            yield return CheckResult.Fail("ip_forward",
                $"{forward ?? "?"} with VIPs not configured on this host ({string.Join(", ", notLocal.Select(Ipv4Address.Format))}): the kernel routes their traffic too, a second copy next to udr's, or a loop back to this host",
                $"sysctl -w {SysctlKey.IpForward.Name}=0");
        }
        else
        {
            yield return CheckResult.Warn("ip_forward",
                $"{forward ?? "?"}: the kernel routes frames sent to this host for other addresses; fine for a router, but a frame udr passes may be forwarded as well",
                $"sysctl -w {SysctlKey.IpForward.Name}=0 (unless this host must route)");
        }

        string? all = context.Host.ReadSysctl(SysctlKey.Conf("all", ConfSetting.RpFilter));
        string? own = context.Host.ReadSysctl(SysctlKey.Conf(link.Name, ConfSetting.RpFilter));
        int effective = Math.Max(ParseOrZero(all), ParseOrZero(own));
        string detail = $"all={all ?? "?"}, {link.Name}={own ?? "?"}";
        yield return effective is 1 or 2
            ? CheckResult.Pass($"rp_filter on {link.Name}", $"{effective} ({detail}): packets with spoofed or wrong-side sources are dropped")
            : CheckResult.Warn($"rp_filter on {link.Name}", $"{effective} ({detail}): no reverse-path check, packets with spoofed sources reach the host stack",
                $"sysctl -w {SysctlKey.Conf(link.Name, ConfSetting.RpFilter).Name}=1");
    }

    private static IEnumerable<CheckResult> CheckRealServers(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield break;
        }
        foreach ((uint address, ForwardingMethod method) in context.RealServers)
        {
            string text = Ipv4Address.Format(address);
            if (context.IsOwnAddress(InetAddress.FromIPv4(address)))
            {
                if (context.ReportsForTheRun)
                {
                    yield return LocalServer(InetAddress.FromIPv4(address), method);
                }
                continue;
            }
            if (method != ForwardingMethod.Tunnel && !link.IsOnLink(address) && context.OtherRunLinks.Any(l => l.IsOnLink(address)))
            {
                // On the segment of another interface of this run (NAT servers on the private side): that one reports it.
                continue;
            }
            switch (method)
            {
                case ForwardingMethod.Route:
                    if (!link.IsOnLink(address))
                    {
                        if (context.ReportsForTheRun)
                        {
                            yield return CheckResult.Fail($"real server {text} (dr)",
                                $"off-link: not on a subnet of {link.Name} ({string.Join(", ", link.Addresses.Where(a => a.PrefixLength < 32))}); direct routing rewrites only the MAC, so the server must share the link",
                                "put the real server on the balancer's segment, or use -i (tunnel)");
                        }
                        break;
                    }
                    yield return OnLinkServer(context, link, address, "dr");
                    break;
                case ForwardingMethod.Tunnel:
                    RouteInfo? route = context.Host.GetRoute(address);
                    yield return route != null
                        ? CheckResult.Pass($"real server {text} (tun)", $"routed via {route.Device}{(route.Gateway is { } g ? $" gateway {g}" : string.Empty)}")
                        : CheckResult.Fail($"real server {text} (tun)", "no route to it", $"ip route add {text} via GATEWAY");
                    break;
                case ForwardingMethod.Masquerade:
                    if (link.IsOnLink(address))
                    {
                        yield return OnLinkServer(context, link, address, "nat");
                    }
                    else if (context.ReportsForTheRun)
                    {
                        // Off every segment of the run: reached through a router, whose route back to the clients must
                        // lead through this balancer too, or the replies bypass the NAT.
                        RouteInfo? natRoute = context.Host.GetRoute(address);
                        yield return natRoute != null
                            ? CheckResult.Warn($"real server {text} (nat)",
                                $"off-link, routed via {natRoute.Device}{(natRoute.Gateway is { } gw ? $" gateway {gw}" : string.Empty)}: its replies must come back through this balancer",
                                $"route {text}'s way to the clients through this balancer, or put it on a segment of the balancer")
                            : CheckResult.Fail($"real server {text} (nat)", "no route to it", $"ip route add {text} via GATEWAY");
                    }
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>
    /// A real server on the balancer itself (IPVS's local real server): its frames go unchanged into this host's stack
    /// (NAT: the kernel's DNAT rewrites them there); NAT to loopback is refused, as IPVS refuses it from outside.
    /// </summary>
    private static CheckResult LocalServer(InetAddress server, ForwardingMethod method)
    {
        string name = $"real server {server} ({method switch { ForwardingMethod.Masquerade => "nat", ForwardingMethod.Tunnel => "tun", _ => "dr" }})";
        if (method != ForwardingMethod.Masquerade)
        {
            return CheckResult.Pass(name,
                $"on the balancer itself: udr hands its frames unchanged to this host's stack through {LocalDelivery.DeviceName}, so the service must listen on the VIP (or on every address)");
        }
        return LocalNatTable.IsLoopback(server)
            ? CheckResult.Fail(name, "a loopback address: NAT to it from outside is dropped (local-server-masquerade), as IPVS drops it",
                "give the server an address of the balancer's own that is not loopback, or use -g")
            : CheckResult.Pass(name,
                $"on the balancer itself: udr hands its frames to this host's stack through {LocalDelivery.DeviceName}, where the nftables table inet {LocalNatTable.TableName} rewrites the destination and conntrack the replies");
    }

    /// <summary>An on-link server (DR or NAT) is ready once it answers ARP.</summary>
    private static CheckResult OnLinkServer(PreflightContext context, LinkInfo link, uint address, string method)
    {
        string text = Ipv4Address.Format(address);
        string? mac = context.Host.ResolveNeighbor(link.Name, address, context.Options.ResolveTimeout);
        return mac != null
            ? CheckResult.Pass($"real server {text} ({method})", $"on-link on {link.Name}, at {mac}")
            : CheckResult.Warn($"real server {text} ({method})",
                string.Create(CultureInfo.InvariantCulture, $"on-link on {link.Name}, but it did not answer ARP within {context.Options.ResolveTimeout.TotalSeconds:0.#} s: udr drops its traffic until it does"),
                $"check that {text} is up and on the segment of {link.Name}");
    }

    private static IEnumerable<CheckResult> CheckTunnelMtu(PreflightContext context)
    {
        LinkInfo? link = context.Interface;
        if (link == null)
        {
            yield break;
        }
        uint[] tunnels = [.. context.RealServers.Where(r => r.Method == ForwardingMethod.Tunnel).Select(r => r.Address).Distinct()];
        if (tunnels.Length == 0)
        {
            yield return CheckResult.Pass("tunnel mtu", "no IP-in-IP real servers");
            yield break;
        }
        foreach (uint address in tunnels)
        {
            string text = Ipv4Address.Format(address);
            RouteInfo? route = context.Host.GetRoute(address);
            if (route == null)
            {
                continue;
            }
            int egressMtu = route.Mtu ?? context.Links.FirstOrDefault(l => l.Name == route.Device)?.Mtu ?? 0;
            int needed = link.Mtu + IpInIpHeader;
            yield return egressMtu >= needed
                ? CheckResult.Pass($"tunnel mtu to {text}", string.Create(CultureInfo.InvariantCulture, $"path MTU {egressMtu} ≥ {link.Mtu} + {IpInIpHeader}: full-size packets fit once encapsulated"))
                : CheckResult.Warn($"tunnel mtu to {text}",
                    string.Create(CultureInfo.InvariantCulture, $"path MTU {egressMtu} < {link.Mtu} + {IpInIpHeader}: full-size packets from clients do not fit once encapsulated; they need ICMP fragmentation-needed (PMTU) or a lower MSS"),
                    string.Create(CultureInfo.InvariantCulture, $"raise the MTU towards {text} to {needed}, or clamp the MSS on the real server to {link.Mtu - IpInIpHeader - 40}"));
        }
    }

    private static IEnumerable<CheckResult> CheckNftables(PreflightContext context)
    {
        string? version = context.Host.NftablesVersion(out string? problem);
        if (!context.Options.KernelIsolation)
        {
            yield return CheckResult.Warn("nftables", "kernel isolation is off (--no-kernel-isolation): this host's kernel may answer service traffic (a TCP RST) next to udr",
                "run udr with kernel isolation (install nftables)");
            yield break;
        }
        yield return version != null
            ? CheckResult.Pass("nftables", $"{version}: the ingress drop that keeps the kernel off VIP traffic can be installed")
            : CheckResult.Fail("nftables", $"{problem}: udr cannot keep this host's kernel from answering service traffic",
                "apt-get install nftables (or run udr with --no-kernel-isolation)");
    }

    private static IEnumerable<CheckResult> CheckCapabilities(PreflightContext context)
    {
        ulong mask = context.Host.EffectiveCapabilities;
        var missing = new List<string>();
        if ((mask & (1UL << CapNetRaw)) == 0)
        {
            missing.Add("CAP_NET_RAW");
        }
        if ((mask & (1UL << CapNetAdmin)) == 0)
        {
            missing.Add("CAP_NET_ADMIN");
        }
        yield return missing.Count == 0
            ? CheckResult.Pass("capabilities", context.Host.IsRoot ? "root" : "CAP_NET_RAW and CAP_NET_ADMIN")
            : CheckResult.Fail("capabilities", $"missing {string.Join(" and ", missing)}: udr cannot open packet sockets or install its nftables table",
                "run as root, or: setcap cap_net_raw,cap_net_admin+ep /path/to/udr");
    }

    private static int ParseOrZero(string? text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) ? value : 0;
}
