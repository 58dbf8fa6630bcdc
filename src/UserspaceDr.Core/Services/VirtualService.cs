using UserspaceDr.Core.Packets;
using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;

namespace UserspaceDr.Core.Services;

/// <summary>
/// One virtual service (VIP:port and protocol, or a firewall mark) in a published rule set. Immutable: an edit publishes a new
/// instance. Its real servers are in the kernel's list order, newest first (list_add_rcu inserts at the head),
/// which is the order every scheduler scans and breaks ties in.
/// </summary>
public sealed class VirtualService
{
    /// <summary>IPVS_SVC_PERSISTENT_TIMEOUT: the timeout libipvs uses for a bare -p.</summary>
    public const int DefaultPersistenceTimeout = 360;

    public VirtualService(
        ServiceProtocol protocol,
        InetAddress address,
        ushort port,
        string schedulerName,
        SchedulerFlags flags,
        int persistenceTimeout,
        uint persistenceNetmask,
        bool onePacket,
        ImmutableArray<RealServer> destinations,
        Scheduler? previousScheduler = null)
    {
        Protocol = protocol;
        Address = address;
        Port = port;
        SchedulerName = schedulerName;
        Flags = flags;
        PersistenceTimeout = persistenceTimeout;
        PersistenceNetmask = persistenceNetmask;
        OnePacket = onePacket;
        Destinations = destinations;
        Scheduler = SchedulerFactory.Create(schedulerName, destinations, flags,
            previousScheduler?.GetType() == SchedulerFactory.TypeOf(schedulerName) ? previousScheduler : null);
    }

    public ServiceProtocol Protocol { get; }
    public InetAddress Address { get; }

    /// <summary>0 only for a persistent service that matches every port.</summary>
    public ushort Port { get; }

    public string SchedulerName { get; }
    public SchedulerFlags Flags { get; }

    /// <summary>Seconds; 0 = not persistent.</summary>
    public int PersistenceTimeout { get; }

    public bool Persistent => PersistenceTimeout != 0;

    /// <summary>-M: the client address is masked with this before it keys a persistence template.</summary>
    public uint PersistenceNetmask { get; }

    /// <summary>-o: one-packet scheduling (UDP only): no connection entry outlives the datagram.</summary>
    public bool OnePacket { get; }

    public ImmutableArray<RealServer> Destinations { get; }
    public Scheduler Scheduler { get; }

    /// <summary>-f: the firewall mark that selects this service's packets (0: an address/port service).</summary>
    public uint FirewallMark { get; init; }

    public override string ToString() => FirewallMark != 0
        ? VirtualServiceSpec.FirewallMarkName(FirewallMark, Address.Family)
        : $"{(Protocol == ServiceProtocol.Tcp ? "TCP" : "UDP")} {Address.WithPort(Port)}";
}
