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

    // Open-addressed lookup keyed by (protocol, address, port); power-of-two capacity, at most half full.
    private readonly VirtualService?[] _slots;
    private readonly bool[] _slotHasTunnel;
    private readonly int _mask;
    private readonly uint[] _virtualAddresses;

    private RuleSet(RuleSetSpec spec, ImmutableArray<VirtualService> services, ImmutableArray<DeletedRealServer> deleted, ServerStatsSlots statsSlots)
    {
        StatsSlots = statsSlots;
        Spec = spec;
        Services = services;
        Deleted = deleted;
        int capacity = 16;
        while (capacity < services.Length * 2)
        {
            capacity <<= 1;
        }
        _slots = new VirtualService?[capacity];
        _slotHasTunnel = new bool[capacity];
        _mask = capacity - 1;
        foreach (VirtualService service in services)
        {
            int slot = Slot(service.Protocol, service.Address, service.Port);
            while (_slots[slot] is not null)
            {
                slot = (slot + 1) & _mask;
            }
            _slots[slot] = service;
            _slotHasTunnel[slot] = service.Destinations.Any(d => d.Method == ForwardingMethod.Tunnel);
        }
        Generation = Interlocked.Increment(ref s_lastGeneration);
        _virtualAddresses = services.Where(s => s.Address.IsIPv4).Select(s => s.Address.IPv4).Distinct().Order().ToArray();
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
    public ReadOnlySpan<uint> VirtualAddresses => _virtualAddresses;

    public bool IsVirtualAddress(uint address) => Array.BinarySearch(_virtualAddresses, address) >= 0;

    /// <summary>The traffic-counter rows of this rule set's data plane: shared by every rule set built from this one.</summary>
    internal ServerStatsSlots StatsSlots { get; }

    /// <summary>
    /// Tells this rule set from every other built in this process (never 0): a value that names it without holding a
    /// reference, so that what a worker remembers per frame (<see cref="Forwarding.FlowHint"/>) has no GC references and
    /// costs no write barriers.
    /// </summary>
    internal int Generation { get; }

    /// <summary>The service for a packet to address:port; a persistent port-0 service matches any port.</summary>
    public VirtualService? Find(byte protocol, InetAddress address, ushort port)
    {
        int slot = FindSlot(protocol, address, port);
        return slot >= 0 ? _slots[slot] : null;
    }

    /// <summary>As <see cref="Find"/>, the service's slot in this rule set (<see cref="ServiceAt"/>); -1 when there is none.</summary>
    internal int FindSlot(byte protocol, uint address, ushort port) => FindSlot(protocol, InetAddress.FromIPv4(address), port);

    /// <inheritdoc cref="FindSlot(byte, uint, ushort)"/>
    internal int FindSlot(byte protocol, InetAddress address, ushort port)
    {
        int exact = FindExactSlot((ServiceProtocol)protocol, address, port);
        return exact >= 0 || port == 0 ? exact : FindExactSlot((ServiceProtocol)protocol, address, 0);
    }

    /// <summary>The service in a slot <see cref="FindSlot"/> gave for this rule set.</summary>
    internal VirtualService ServiceAt(int slot) => _slots[slot]!;

    /// <summary>The service in a slot <see cref="FindSlot"/> gave has an IP-in-IP server.</summary>
    internal bool SlotHasTunnel(int slot) => _slotHasTunnel[slot];

    private int FindExactSlot(ServiceProtocol protocol, InetAddress address, ushort port)
    {
        int slot = Slot(protocol, address, port);
        while (true)
        {
            VirtualService? service = _slots[slot];
            if (service is null)
            {
                return -1;
            }
            if (service.Port == port && service.Address == address && service.Protocol == protocol)
            {
                return slot;
            }
            slot = (slot + 1) & _mask;
        }
    }

    private int Slot(ServiceProtocol protocol, InetAddress address, ushort port)
    {
        uint hash = (address.Fold() ^ ((uint)port << 16) ^ (uint)protocol) * 0x9E3779B1u;
        return (int)(hash >> 16) & _mask;
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
            int oldSlot = previous?.FindExactSlot(serviceSpec.Protocol, serviceSpec.Address, serviceSpec.Port) ?? -1;
            VirtualService? old = oldSlot >= 0 ? previous!.ServiceAt(oldSlot) : null;
            VirtualServiceSpec? oldSpec = previous?.Spec.Services.FirstOrDefault(s => s.SameService(serviceSpec.Protocol, serviceSpec.Address, serviceSpec.Port));
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
                    existing.Update(d.Weight, d.UpperThreshold, d.LowerThreshold, d.Method);
                    existing.Reinstate();
                    kept.Add(existing);
                    dests.Add(existing);
                }
                else
                {
                    var server = new RealServer(d.Address, d.Port, d.Method, d.Weight, d.UpperThreshold, d.LowerThreshold);
                    server.TakeStatsSlot(statsSlots);
                    dests.Add(server);
                }
            }
            services.Add(new VirtualService(serviceSpec.Protocol, serviceSpec.Address, serviceSpec.Port, serviceSpec.Scheduler,
                serviceSpec.Flags, serviceSpec.PersistenceTimeout, serviceSpec.PersistenceNetmask, serviceSpec.OnePacket,
                dests.MoveToImmutable(), old?.Scheduler));
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
                            deleted.Add(new DeletedRealServer(old.Protocol, old.Address, old.Port, dest));
                        }
                        else
                        {
                            dest.ReleaseStatsSlot(statsSlots);
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
                    entry.Server.ReleaseStatsSlot(statsSlots); // the last connection that held it is gone
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
            if (entry.Protocol == service.Protocol && entry.ServiceAddress == service.Address && entry.ServicePort == service.Port &&
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

/// <summary>A real server deleted from the service (protocol, address, port) while connections still hold it.</summary>
public readonly record struct DeletedRealServer(ServiceProtocol Protocol, InetAddress ServiceAddress, ushort ServicePort, RealServer Server);
