using System.Collections.Immutable;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Services;

/// <summary>
/// The immutable snapshot the data plane reads: services by protocol/VIP/port. Workers read the current snapshot
/// once per batch (RCU by immutability). <see cref="Build"/> carries real servers over from the previous snapshot
/// by identity, so connections keep their server and its counters through any edit.
/// </summary>
public sealed class RuleSet
{
    public static readonly RuleSet Empty = new(RuleSetSpec.Empty, [], [], new ServerStatsSlots());

    private static int s_lastGeneration;

    // The lookups the data plane makes, one per family.
    private readonly ServiceIndex<uint> _ipv4;
    private readonly ServiceIndex<UInt128> _ipv6;

    // The firewall-mark services, one list per family (few: a linear scan), and the rules that mark packets for them.
    private readonly VirtualService[] _marked4;
    private readonly VirtualService[] _marked6;
    private readonly FirewallMarkRules _markRules;

    private RuleSet(RuleSetSpec spec, ImmutableArray<VirtualService> services, ImmutableArray<DeletedRealServer> deleted, ServerStatsSlots statsSlots)
    {
        StatsSlots = statsSlots;
        Spec = spec;
        Services = services;
        Deleted = deleted;
        _markRules = spec.MarkRules;
        _marked4 = [.. services.Where(s => s.FirewallMark != 0 && s.Address.IsIPv4)];
        _marked6 = [.. services.Where(s => s.FirewallMark != 0 && s.Address.IsIPv6)];
        // A marked service's packets are those its rules' destinations receive: udr takes them as it takes a VIP's.
        InetAddress[] markedDestinations = [.. spec.MarkedDestinations()];
        var addressServices = services.Where(s => s.FirewallMark == 0).ToArray();
        _ipv4 = new ServiceIndex<uint>(addressServices, markedDestinations);
        _ipv6 = new ServiceIndex<UInt128>(addressServices, markedDestinations);
        Generation = Interlocked.Increment(ref s_lastGeneration);
        HasMasquerade = services.Any(s => s.Destinations.Any(d => d.Method == ForwardingMethod.Masquerade));
        HasTunnel = services.Any(s => s.Destinations.Any(d => d.Method == ForwardingMethod.Tunnel));
    }

    /// <summary>Some real server is reached by NAT: replies through the balancer must be looked for.</summary>
    public bool HasMasquerade { get; }

    /// <summary>Some real server is reached by IP-in-IP: GSO super-frames must be segmented before the engine sees them.</summary>
    public bool HasTunnel { get; }

    public RuleSetSpec Spec { get; }
    public ImmutableArray<VirtualService> Services { get; }

    /// <summary>
    /// Deleted real servers that connections still hold (the kernel's dest trash): adding the same server back to the
    /// same service reinstates the same object, so those connections carry on. Pruned once they hold none.
    /// </summary>
    public ImmutableArray<DeletedRealServer> Deleted { get; }

    /// <summary>The IPv4 VIPs, sorted: "is this frame addressed to a VIP at all".</summary>
    public ReadOnlySpan<uint> VirtualAddresses => _ipv4.Addresses;

    /// <summary>The IPv6 VIPs, sorted.</summary>
    public ReadOnlySpan<UInt128> Ipv6VirtualAddresses => _ipv6.Addresses;

    public bool IsVirtualAddress(uint address) => _ipv4.IsVirtualAddress(address);

    public bool IsVirtualAddress(InetAddress address) =>
        address.IsIPv4 ? _ipv4.IsVirtualAddress(address.IPv4) : _ipv6.IsVirtualAddress(address.IPv6);

    /// <summary>The traffic-counter rows of this rule set's data plane: shared by every rule set built from this one.</summary>
    internal ServerStatsSlots StatsSlots { get; }

    /// <summary>
    /// Tells this rule set from every other built in this process (never 0): a value that names it without holding a
    /// reference, so that what a worker remembers per frame (<see cref="Forwarding.FlowHint"/>) has no GC references and
    /// costs no write barriers.
    /// </summary>
    internal int Generation { get; }

    /// <summary>
    /// There are firewall-mark services of <typeparamref name="TAddress"/>'s family: the data plane asks this before it
    /// reads what <see cref="FindMarked{TAddress}"/> needs from a frame, so that a rule set without them pays one test.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool HasMarkedServices<TAddress>() where TAddress : unmanaged =>
        (AddressBits.IsIPv4<TAddress>() ? _marked4 : _marked6).Length != 0;

    /// <summary>
    /// The firewall-mark service of a TCP or UDP packet (ip_vs_service_find looks for one first): the mark its rules
    /// give it, and the service of that mark in its family; null when it has none.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public VirtualService? FindMarked<TAddress>(TAddress source, TAddress destination, byte protocol, ushort sourcePort, ushort destinationPort, byte link = 0)
        where TAddress : unmanaged
    {
        // Inlined into every TCP/UDP frame's path: without mark services, one length test; the rules are walked out of line.
        VirtualService[] marked = AddressBits.IsIPv4<TAddress>() ? _marked4 : _marked6;
        return marked.Length == 0 ? null : ClassifyAndFind(marked, source, destination, protocol, sourcePort, destinationPort, link);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private VirtualService? ClassifyAndFind<TAddress>(VirtualService[] marked, TAddress source, TAddress destination, byte protocol,
        ushort sourcePort, ushort destinationPort, byte link)
        where TAddress : unmanaged =>
        ServiceOfMark(marked, _markRules.Classify(source, destination, protocol, sourcePort, destinationPort, link));

    /// <summary>The firewall-mark service of one family with this mark; null when there is none.</summary>
    public VirtualService? FindMarked(IpFamily family, uint mark) => ServiceOfMark(family == IpFamily.IPv4 ? _marked4 : _marked6, mark);

    private static VirtualService? ServiceOfMark(VirtualService[] marked, uint mark)
    {
        if (mark == 0)
        {
            return null;
        }
        foreach (VirtualService service in marked)
        {
            if (service.FirewallMark == mark)
            {
                return service;
            }
        }
        return null;
    }

    /// <summary>The service for a packet to address:port; a persistent port-0 service matches any port.</summary>
    public VirtualService? Find(byte protocol, InetAddress address, ushort port)
    {
        if (address.IsIPv4)
        {
            int slot = _ipv4.FindSlot(protocol, address.IPv4, port);
            return slot >= 0 ? _ipv4.ServiceAt(slot) : null;
        }
        int slot6 = _ipv6.FindSlot(protocol, address.IPv6, port);
        return slot6 >= 0 ? _ipv6.ServiceAt(slot6) : null;
    }

    /// <summary>The service for an IPv4 packet to address:port (the data plane's form of <see cref="Find(byte, InetAddress, ushort)"/>).</summary>
    public VirtualService? Find(byte protocol, uint address, ushort port)
    {
        int slot = _ipv4.FindSlot(protocol, address, port);
        return slot >= 0 ? _ipv4.ServiceAt(slot) : null;
    }

    /// <summary>As <see cref="Find(byte, uint, ushort)"/>, the service's slot in this rule set (<see cref="ServiceAt"/>); -1 when there is none.</summary>
    internal int FindSlot(byte protocol, uint address, ushort port) => _ipv4.FindSlot(protocol, address, port);

    /// <summary>The IPv4 service in a slot <see cref="FindSlot"/> gave for this rule set.</summary>
    internal VirtualService ServiceAt(int slot) => _ipv4.ServiceAt(slot);

    /// <summary>The IPv4 service in a slot <see cref="FindSlot"/> gave has an IP-in-IP server.</summary>
    internal bool SlotHasTunnel(int slot) => _ipv4.SlotHasTunnel(slot);

    /// <summary>The lookup of one family's services (uint: IPv4, UInt128: IPv6).</summary>
    internal ServiceIndex<TAddress> Index<TAddress>() where TAddress : unmanaged, IEquatable<TAddress> =>
        typeof(TAddress) == typeof(uint) ? (ServiceIndex<TAddress>)(object)_ipv4 : (ServiceIndex<TAddress>)(object)_ipv6;

    private VirtualService? FindExact(VirtualServiceSpec spec)
    {
        if (spec.FirewallMark != 0)
        {
            return FindMarked(spec.Address.Family, spec.FirewallMark);
        }
        (ServiceProtocol protocol, InetAddress address, ushort port) = (spec.Protocol, spec.Address, spec.Port);
        if (address.IsIPv4)
        {
            int slot = _ipv4.FindExactSlot((byte)protocol, address.IPv4, port);
            return slot >= 0 ? _ipv4.ServiceAt(slot) : null;
        }
        int slot6 = _ipv6.FindExactSlot((byte)protocol, address.IPv6, port);
        return slot6 >= 0 ? _ipv6.ServiceAt(slot6) : null;
    }

    /// <summary>
    /// Builds the snapshot for <paramref name="spec"/>, reusing <paramref name="previous"/>'s real-server objects
    /// (same service, address and port) and applying weight, threshold and forwarding-method edits to them in place,
    /// as the kernel does. Servers that disappear are marked removed and kept in <see cref="Deleted"/> while
    /// connections hold them; one added back to its service from there is reinstated (ip_vs_trash_get_dest). The
    /// spec must already be validated.
    /// </summary>
    public static RuleSet Build(RuleSetSpec spec, RuleSet? previous = null)
    {
        foreach (VirtualServiceSpec serviceSpec in spec.Services)
        {
            if (!SchedulerFactory.IsKnown(serviceSpec.Scheduler))
            {
                throw new ArgumentException($"Scheduler '{serviceSpec.Scheduler}' is not implemented.", nameof(spec));
            }
        }

        // One data plane's rule sets share one allocator of counter rows; a first rule set starts its own.
        ServerStatsSlots statsSlots = previous is null || ReferenceEquals(previous, Empty) ? new ServerStatsSlots() : previous.StatsSlots;
        var kept = new HashSet<RealServer>(ReferenceEqualityComparer.Instance);
        var services = ImmutableArray.CreateBuilder<VirtualService>(spec.Services.Length);
        foreach (VirtualServiceSpec serviceSpec in spec.Services)
        {
            VirtualService? old = previous?.FindExact(serviceSpec);
            VirtualServiceSpec? oldSpec = previous?.Spec.Services.FirstOrDefault(s => s.SameService(serviceSpec));
            if (old is not null && oldSpec is not null && Unchanged(oldSpec, serviceSpec))
            {
                // Nothing changed: the kernel calls no scheduler hook; keep the instance and its position.
                kept.UnionWith(old.Destinations);
                services.Add(old);
                continue;
            }
            var dests = ImmutableArray.CreateBuilder<RealServer>(serviceSpec.RealServers.Length);
            // Kernel order: newest first.
            for (int i = serviceSpec.RealServers.Length - 1; i >= 0; i--)
            {
                RealServerSpec d = serviceSpec.RealServers[i];
                RealServer? existing = old?.Destinations.FirstOrDefault(x => x.Address == d.Address && x.Port == d.Port)
                    ?? FindDeleted(previous, serviceSpec, d);
                if (existing is not null)
                {
                    existing.Update(d.Weight, d.UpperThreshold, d.LowerThreshold, d.Method, d.Tunnel);
                    existing.Reinstate();
                    kept.Add(existing);
                    dests.Add(existing);
                }
                else
                {
                    var server = new RealServer(d.Address, d.Port, d.Method, d.Weight, d.UpperThreshold, d.LowerThreshold, d.Tunnel);
                    server.TakeStatsSlot(statsSlots);
                    dests.Add(server);
                }
            }
            services.Add(new VirtualService(serviceSpec.Protocol, serviceSpec.Address, serviceSpec.Port, serviceSpec.Scheduler,
                serviceSpec.Flags, serviceSpec.PersistenceTimeout, serviceSpec.PersistenceNetmask, serviceSpec.OnePacket,
                dests.MoveToImmutable(), old?.Scheduler)
            {
                FirewallMark = serviceSpec.FirewallMark,
            });
        }

        var deleted = ImmutableArray.CreateBuilder<DeletedRealServer>();
        if (previous is not null)
        {
            foreach (VirtualService old in previous.Services)
            {
                foreach (RealServer dest in old.Destinations)
                {
                    if (!kept.Contains(dest))
                    {
                        dest.MarkRemoved();
                        if (dest.HasConnections)
                        {
                            deleted.Add(new DeletedRealServer(old.Protocol, old.Address, old.Port, dest) { FirewallMark = old.FirewallMark });
                        }
                        else
                        {
                            dest.Retire(statsSlots);
                        }
                    }
                }
            }
            foreach (DeletedRealServer entry in previous.Deleted)
            {
                if (kept.Contains(entry.Server))
                {
                    continue;
                }
                if (entry.Server.HasConnections)
                {
                    deleted.Add(entry);
                }
                else
                {
                    entry.Server.Retire(statsSlots); // the last connection that held it is gone
                }
            }
        }
        return new RuleSet(spec, services.MoveToImmutable(), deleted.ToImmutable(), statsSlots);
    }

    private static RealServer? FindDeleted(RuleSet? previous, VirtualServiceSpec service, RealServerSpec server)
    {
        if (previous is null)
        {
            return null;
        }
        foreach (DeletedRealServer entry in previous.Deleted)
        {
            if (service.SameService(entry.Protocol, entry.ServiceAddress, entry.ServicePort, entry.FirewallMark) &&
                entry.Server.Address == server.Address && entry.Server.Port == server.Port)
            {
                return entry.Server;
            }
        }
        return null;
    }

    private static bool Unchanged(VirtualServiceSpec a, VirtualServiceSpec b) =>
        a with { RealServers = [] } == b with { RealServers = [] } && a.RealServers.SequenceEqual(b.RealServers);
}

/// <summary>A real server deleted from the service (protocol, address, port; or firewall mark) while connections still hold it.</summary>
public readonly record struct DeletedRealServer(ServiceProtocol Protocol, InetAddress ServiceAddress, ushort ServicePort, RealServer Server)
{
    public uint FirewallMark { get; init; }
}
