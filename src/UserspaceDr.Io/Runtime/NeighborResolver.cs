using System.Globalization;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// Decides and keeps fresh how udr reaches each real server (IPv4 or IPv6), on every link it serves:
/// <list type="number">
/// <item>the route: the kernel's routing table (<see cref="KernelRoutes"/>, `ip -j route get`) says the output
/// device, the gateway, the preferred source and the MTU. Looked up when the server set changes and every
/// <see cref="RouteRefreshMs"/>, on this resolver's own thread (never on the data path);</item>
/// <item>the neighbour's MAC (the gateway's, else the server's): IPv4 seeded from /proc/net/arp, then udr speaks ARP and
/// neighbour discovery itself on a small ring per link: it asks for every wanted neighbour that is not resolved (each
/// second), re-asks resolved ones (every 30 s), and learns from any ARP frame whose sender, or Neighbor Advertisement
/// whose target, is a wanted neighbour of that link (a gratuitous ARP or an unsolicited advertisement after a NIC swap
/// is picked up at once). A Neighbor Solicitation goes to the target's solicited-node group from the link's address on
/// the neighbour's prefix, else its link-local one (RFC 4861 §7.2.2).</item>
/// </list>
/// With udr answering for the VIPs, it also announces each IPv6 VIP it starts answering for: an unsolicited Neighbor
/// Advertisement on every link, <see cref="AnnouncementCount"/> times a second apart (RFC 4861 §7.2.6).
/// Each change publishes a new immutable <see cref="NeighborTable"/> of <see cref="NextHop"/>s; until a server's
/// route and neighbour resolve, frames for it are counted as neighbor-unresolved, never sent to a wrong MAC.
/// </summary>
/// <remarks>
/// The thread is created by <see cref="Start"/> and inherits the caller's network namespace, so the `ip` processes it
/// starts ask the right routing table (timers on pool threads would not).
/// </remarks>
public sealed class NeighborResolver : IDisposable
{
    private const int RetryUnresolvedMs = 1000;
    private const int RefreshResolvedMs = 30_000;

    /// <summary>MAX_NEIGHBOR_ADVERTISEMENT: how many unsolicited advertisements announce a VIP.</summary>
    public const int AnnouncementCount = 3;

    private const int AnnouncementIntervalMs = 1000;

    /// <summary>How often routes are looked up again, so that a changed route or MTU is picked up.</summary>
    public const int RouteRefreshMs = 30_000;

    private readonly IReadOnlyList<LinkInfo> _links;
    private readonly LocalDelivery? _local;
    private readonly int _localLink;
    private string? _localWarning;
    private readonly Action<NeighborTable> _publish;
    private readonly ILogger _log;
    private readonly Func<InetAddress, (RouteInfo? Route, string? Error)> _lookupRoute;
    private readonly PacketRxRing[] _arpRings;
    private readonly PacketTxBatch _arpTx;
    private readonly int[] _interfaceIndexes;
    private readonly byte[] _request = GC.AllocateArray<byte>(128, pinned: true);
    private readonly Dictionary<(byte Link, InetAddress Address), MacAddress> _macs = [];
    private readonly Dictionary<(byte Link, InetAddress Address), long> _lastAsked = [];
    private readonly Dictionary<InetAddress, long> _lastFailureLog = [];
    private readonly Dictionary<InetAddress, string> _lastRouteProblem = [];
    private Dictionary<InetAddress, ServerRoute> _routes = [];
    private InetAddress[] _wanted = [];
    private UInt128[] _announced = [];
    private UInt128[] _announcedBefore = [];
    private readonly Dictionary<UInt128, (int Left, long Next)> _announcing = [];
    private int _wantedVersion;
    private int _routedVersion = -1;
    private long _nextRouteRefresh;
    private NeighborTable _table = NeighborTable.Empty;
    private Thread? _thread;
    private volatile bool _stopping;

    /// <param name="links">The served interfaces, by link index.</param>
    /// <param name="lookupRoute">Route source (default: <see cref="KernelRoutes.Get"/>); tests pass their own.</param>
    /// <param name="local">
    /// The way into the balancer's own stack, reached as link index <c>links.Count</c>: a server whose route is local
    /// gets that link and the device's MAC (no ARP), and the device is made the first time one appears. Null: local
    /// servers stay unresolved.
    /// </param>
    public NeighborResolver(IReadOnlyList<LinkInfo> links, Action<NeighborTable> publish, ILogger log,
        Func<InetAddress, (RouteInfo? Route, string? Error)>? lookupRoute = null, LocalDelivery? local = null)
    {
        ArgumentNullException.ThrowIfNull(links);
        if (links.Count == 0)
        {
            throw new ArgumentException("at least one link", nameof(links));
        }
        _links = links;
        _publish = publish;
        _log = log;
        _local = local;
        _localLink = local is null ? -1 : links.Count;
        _lookupRoute = lookupRoute ?? (address => (KernelRoutes.Get(address, out string? error), error));
        _arpRings = new PacketRxRing[links.Count];
        _interfaceIndexes = new int[links.Count];
        try
        {
            for (int i = 0; i < links.Count; i++)
            {
                _arpRings[i] = new PacketRxRing(new PacketRxRingOptions(links[i].Name)
                {
                    BlockSize = 1 << 16,
                    BlockCount = 2,
                    RetireTimeoutMs = 10,
                    Filter = ClassicBpfProgram.NeighborDiscovery,
                });
                _interfaceIndexes[i] = _arpRings[i].InterfaceIndex;
            }
            // Unbound: every request names its link (sockaddr_ll per message).
            _arpTx = new PacketTxBatch(new PacketTxBatchOptions(null) { Capacity = 16 });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>One interface: the single-link case.</summary>
    public NeighborResolver(LinkInfo networkInterface, Action<NeighborTable> publish, ILogger log)
        : this([networkInterface], publish, log)
    {
    }

    public NeighborTable Current => Volatile.Read(ref _table);

    /// <summary>
    /// Sets the servers to reach (the real servers of the rule set in force). Their routes are looked up again on the
    /// resolver's thread within a moment.
    /// </summary>
    public void SetWanted(IEnumerable<InetAddress> addresses)
    {
        Volatile.Write(ref _wanted, [.. addresses.Distinct()]);
        Interlocked.Increment(ref _wantedVersion);
    }

    /// <summary>
    /// Sets the IPv6 VIPs udr answers for; each one not announced before is announced on every link from the resolver's
    /// thread (the first advertisement within a moment).
    /// </summary>
    public void SetAnnounced(IEnumerable<UInt128> vips) => Volatile.Write(ref _announced, [.. vips.Distinct()]);

    /// <summary>Looks every route up again at the next turn (e.g. after a route change the operator knows of).</summary>
    public void RefreshRoutes() => Interlocked.Increment(ref _wantedVersion);

    public void Start()
    {
        SeedFromKernel();
        _thread = new Thread(Run) { IsBackground = true, Name = "udr-arp" };
        _thread.Start();
    }

    /// <summary>Waits until every wanted server is resolved, or the timeout passes; true when all are.</summary>
    public bool WaitResolved(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            NeighborTable table = Current;
            if (Volatile.Read(ref _routedVersion) == Volatile.Read(ref _wantedVersion) &&
                Volatile.Read(ref _wanted).All(a => a.IsIPv4 ? table.TryGet(a.IPv4, out _) : table.TryGet(a.IPv6, out _)))
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return false;
    }

    private void SeedFromKernel()
    {
        try
        {
            // IP address  HW type  Flags  HW address  Mask  Device; flags 0x2 = complete.
            foreach (string line in File.ReadLines("/proc/net/arp").Skip(1))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 6 || f[2] != "0x2" || !Ipv4Address.TryParse(f[0], out uint address) ||
                    !MacAddress.TryParse(f[3], out MacAddress mac) || mac == MacAddress.Zero)
                {
                    continue;
                }
                for (int i = 0; i < _links.Count; i++)
                {
                    if (_links[i].Name == f[5])
                    {
                        _macs[((byte)i, InetAddress.FromIPv4(address))] = mac;
                    }
                }
            }
        }
        catch (IOException)
        {
            // No procfs view: ARP alone will do.
        }
    }

    private void Run()
    {
        while (!_stopping)
        {
            try
            {
                long now = Environment.TickCount64;
                int version = Volatile.Read(ref _wantedVersion);
                if (version != _routedVersion || now >= _nextRouteRefresh)
                {
                    ResolveRoutes(now);
                    Volatile.Write(ref _routedVersion, version);
                }
                bool any = false;
                for (int i = 0; i < _arpRings.Length; i++)
                {
                    PacketRxRing ring = _arpRings[i];
                    if (ring.TryHoldBatch())
                    {
                        any = true;
                        foreach (RxFrame frame in ring.CurrentBlockFrames)
                        {
                            Learn((byte)i, frame.Bytes);
                        }
                        ring.ReleaseBlock();
                    }
                }
                if (!any)
                {
                    PacketRxRing.PollAny(_arpRings, 100);
                }
                AskWhereNeeded(Environment.TickCount64);
                Announce(Environment.TickCount64);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
            {
                Log.ResolverError(_log, e.Message);
                Thread.Sleep(1000);
            }
        }
    }

    /// <summary>Looks up the route of every wanted server and publishes the table that follows.</summary>
    private void ResolveRoutes(long now)
    {
        var routes = new Dictionary<InetAddress, ServerRoute>();
        foreach (InetAddress server in Volatile.Read(ref _wanted))
        {
            (RouteInfo? route, string? error) = _lookupRoute(server);
            string? problem = error;
            if (route is not null && ServerRoute.From(server, route, _links, out problem, _localLink) is { } resolved &&
                (resolved.Link != _localLink || EnsureLocalDevice(out problem)))
            {
                if (resolved.Link == _localLink && !_routes.ContainsKey(server))
                {
                    Log.LocalServer(_log, server.ToString(), LocalDelivery.DeviceName);
                }
                routes[server] = resolved;
                if (_routes.TryGetValue(server, out ServerRoute before) && before != resolved)
                {
                    Log.RouteChanged(_log, server.ToString(), Describe(before), Describe(resolved));
                }
                _lastRouteProblem.Remove(server);
                continue;
            }
            problem ??= "no route";
            if (!_lastRouteProblem.TryGetValue(server, out string? logged) || logged != problem)
            {
                _lastRouteProblem[server] = problem;
                Log.RouteUnusable(_log, server.ToString(), problem);
            }
        }
        _routes = routes;
        _nextRouteRefresh = now + RouteRefreshMs;
        Publish();
    }

    /// <summary>The local stack's device, made the first time a local server appears; false with why when it cannot be.</summary>
    private bool EnsureLocalDevice(out string? problem)
    {
        bool made = _local!.Ensure(out problem, out string? warning);
        if (warning is not null && warning != _localWarning)
        {
            _localWarning = warning;
            Log.LocalDeliveryWarning(_log, warning);
        }
        return made;
    }

    private string Describe(ServerRoute route) => string.Create(CultureInfo.InvariantCulture,
        $"{(route.Link == _localLink ? LocalDelivery.DeviceName : _links[route.Link].Name)} via {route.Neighbor} src {route.Source?.ToString() ?? "none"} mtu {route.Mtu}");

    /// <summary>Builds the table from the routes and the MACs known so far; publishes it when it differs.</summary>
    private void Publish()
    {
        var hops = new Dictionary<uint, NextHop>();
        var ipv6Hops = new Dictionary<UInt128, NextHop>();
        foreach ((InetAddress server, ServerRoute route) in _routes)
        {
            MacAddress mac = LocalDelivery.DeviceMac;
            if (route.Link != _localLink && !_macs.TryGetValue((route.Link, route.Neighbor), out mac))
            {
                continue;
            }
            if (server.IsIPv4)
            {
                // The source is the outer source of IP-in-IP; a route of the server's own family gives it.
                hops[server.IPv4] = new NextHop(mac, route.Link, route.Source is { IsIPv4: true } source ? source.IPv4 : 0, route.Mtu);
            }
            else
            {
                ipv6Hops[server.IPv6] = new NextHop(mac, route.Link, 0, route.Mtu);
            }
        }
        NeighborTable current = Current;
        if (Same(hops, current.Hops) && Same(ipv6Hops, current.Ipv6Hops))
        {
            return;
        }
        var table = new NeighborTable(hops, ipv6Hops);
        Volatile.Write(ref _table, table);
        _publish(table);
    }

    private static bool Same<TAddress>(Dictionary<TAddress, NextHop> hops, IReadOnlyDictionary<TAddress, NextHop> known)
        where TAddress : notnull =>
        hops.Count == known.Count && hops.All(h => known.TryGetValue(h.Key, out NextHop hop) && hop == h.Value);

    private void Learn(byte link, Span<byte> frame)
    {
        if (!EthernetFrame.TryParse(frame, out EthernetFrame ethernet))
        {
            return;
        }
        InetAddress sender;
        MacAddress mac;
        if (ethernet.EtherType == EtherTypes.Arp && ArpPacket.TryCreate(ethernet.Payload, out ArpPacket arp))
        {
            sender = InetAddress.FromIPv4(arp.SenderAddress);
            mac = arp.SenderMac;
        }
        else if (Ndp.TryReadAdvertisementFrame(frame, out UInt128 target, out mac))
        {
            sender = InetAddress.FromIPv6(target);
        }
        else
        {
            return;
        }
        if (mac == MacAddress.Zero || (mac.Value & 0x0100_0000_0000) != 0 || !IsWantedNeighbor(link, sender))
        {
            return;
        }
        _macs.TryGetValue((link, sender), out MacAddress known);
        if (known == mac)
        {
            return;
        }
        _macs[(link, sender)] = mac;
        string what = known == MacAddress.Zero ? "resolved" : $"changed from {known}";
        Log.NeighborLearned(_log, sender.ToString(), mac.ToString(), what + " on " + _links[link].Name);
        Publish();
    }

    private bool IsWantedNeighbor(byte link, InetAddress address)
    {
        foreach (ServerRoute route in _routes.Values)
        {
            if (route.Link == link && route.Neighbor == address)
            {
                return true;
            }
        }
        return false;
    }

    private void AskWhereNeeded(long now)
    {
        foreach ((InetAddress server, ServerRoute route) in _routes)
        {
            if (route.Link == _localLink)
            {
                continue; // the balancer's own stack: nothing to ask
            }
            var key = (route.Link, route.Neighbor);
            bool resolved = _macs.ContainsKey(key);
            _lastAsked.TryGetValue(key, out long last);
            if (now - last < (resolved ? RefreshResolvedMs : RetryUnresolvedMs))
            {
                continue;
            }
            _lastAsked[key] = now;
            LinkInfo link = _links[route.Link];
            InetAddress? source = route.Source is { } routeSource && routeSource.Family == route.Neighbor.Family && link.Owns(routeSource)
                ? routeSource
                : link.SourceAddressFor(route.Neighbor);
            if (source is null)
            {
                continue;
            }
            SendRequest(route.Link, source.Value, route.Neighbor);
            if (!resolved && last != 0 && (!_lastFailureLog.TryGetValue(server, out long logged) || now - logged > 30_000))
            {
                _lastFailureLog[server] = now;
                Log.NeighborUnresolved(_log, route.Neighbor.ToString(), link.Name);
            }
        }
    }

    /// <summary>Sends the announcements that are due; VIPs new since the last turn start their series now.</summary>
    private void Announce(long now)
    {
        UInt128[] announced = Volatile.Read(ref _announced);
        if (!ReferenceEquals(announced, _announcedBefore))
        {
            foreach (UInt128 vip in announced.Except(_announcedBefore))
            {
                _announcing[vip] = (AnnouncementCount, now);
            }
            foreach (UInt128 gone in _announcing.Keys.Except(announced).ToArray())
            {
                _announcing.Remove(gone);
            }
            _announcedBefore = announced;
        }
        if (_announcing.Count == 0)
        {
            return; // the usual turn: nothing to announce, nothing copied
        }
        foreach ((UInt128 vip, (int left, long next)) in _announcing.ToArray())
        {
            if (now < next)
            {
                continue;
            }
            for (byte link = 0; link < _links.Count; link++)
            {
                Send(link, Ndp.WriteUnsolicitedAdvertisementFrame(_request, _links[link].Mac, vip));
            }
            if (left > 1)
            {
                _announcing[vip] = (left - 1, now + AnnouncementIntervalMs);
            }
            else
            {
                _announcing.Remove(vip);
            }
        }
    }

    private void SendRequest(byte link, InetAddress source, InetAddress target) => Send(link, target.IsIPv4
        ? ArpPacket.WriteRequestFrame(_request, _links[link].Mac, source.IPv4, target.IPv4)
        : Ndp.WriteSolicitationFrame(_request, _links[link].Mac, source.IPv6, target.IPv6));

    private unsafe void Send(byte link, int length)
    {
        fixed (byte* start = _request)
        {
            _arpTx.Add(start, length, _interfaceIndexes[link]);
            _arpTx.Flush(); // one frame at a time: the buffer is reused
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        foreach (PacketRxRing? ring in _arpRings)
        {
            ring?.Dispose();
        }
        _arpTx?.Dispose();
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"resolver on {string.Join(", ", _links.Select(l => l.Name))}");
}
