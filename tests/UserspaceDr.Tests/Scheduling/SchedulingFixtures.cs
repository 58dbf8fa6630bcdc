using UserspaceDr.Core.Packets;
using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>Builders for scheduler tests: servers 198.18.1.id:80 in the given (kernel, newest-first) list order, VIP 198.18.0.100.</summary>
internal static class SchedulingFixtures
{
    public static RealServer Server(int id, int weight, ushort port = 80) =>
        new(InetAddress.FromIPv4(0xC6120100u + (uint)id), port, ForwardingMethod.Route, weight); // 198.18.1.id

    public static ImmutableArray<RealServer> List(params RealServer[] servers) => [.. servers];

    public static SchedulingKey Key(uint clientAddress, ushort clientPort = 40000) =>
        new(clientAddress, clientPort, 0xC6120064u, 80); // VIP 198.18.0.100

    public static Scheduler Create(string name, ImmutableArray<RealServer> servers, SchedulerFlags flags = SchedulerFlags.None) =>
        SchedulerFactory.Create(name, servers, flags);

    public static void AddActive(RealServer server, int count)
    {
        for (int i = 0; i < count; i++)
        {
            server.BindConnection(active: true, template: false);
        }
    }

    public static void AddInactive(RealServer server, int count)
    {
        for (int i = 0; i < count; i++)
        {
            server.BindConnection(active: false, template: false);
        }
    }

    /// <summary>Sets an upper threshold of one connection and binds one (inactive) connection, which raises
    /// IP_VS_DEST_F_OVERLOAD the way ip_vs_bind_dest does.</summary>
    public static void Overload(RealServer server)
    {
        server.Update(server.Weight, upperThreshold: 1, lowerThreshold: 0);
        server.BindConnection(active: false, template: false);
        Assert.That(server.Overloaded, Is.True, "fixture failed to overload the server");
    }

    /// <summary>Picks <paramref name="count"/> times and names each pick by its server's id (the last address octet),
    /// "-" for none.</summary>
    public static string PickSequence(Scheduler scheduler, int count, Func<RealServer, string> name)
    {
        var picks = new System.Text.StringBuilder();
        for (int i = 0; i < count; i++)
        {
            RealServer? picked = scheduler.Pick(Key((uint)i));
            picks.Append(picked is null ? "-" : name(picked));
        }
        return picks.ToString();
    }
}
