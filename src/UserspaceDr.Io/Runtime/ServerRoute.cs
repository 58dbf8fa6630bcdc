using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// How udr reaches one real server (either family), decided at control time from the kernel's route
/// (<see cref="KernelRoutes"/>): the link (index into the served interfaces), the neighbour whose MAC frames go to (the
/// gateway, else the server itself), the source address on that route (null when the link has none of the family), and
/// the path MTU (the route's metric, else the link's MTU).
/// </summary>
public readonly record struct ServerRoute(byte Link, InetAddress Neighbor, InetAddress? Source, int Mtu)
{
    /// <summary>The MTU of the local stack's link: a frame handed to the balancer's own stack is never refused as too big.</summary>
    public const int LocalMtu = 65535;

    /// <summary>
    /// Maps a kernel route onto the served links; null with <paramref name="problem"/> set when the route leaves by an
    /// interface udr does not serve (frames for the server then stay neighbor-unresolved). A local route (the server is
    /// an address of the balancer's own, 127.0.0.0/8 or ::1) maps to <paramref name="localLink"/>, the link that stands
    /// for the balancer's own stack, when there is one (-1: none).
    /// </summary>
    public static ServerRoute? From(InetAddress server, RouteInfo route, IReadOnlyList<LinkInfo> links, out string? problem, int localLink = -1)
    {
        ArgumentNullException.ThrowIfNull(route);
        ArgumentNullException.ThrowIfNull(links);
        problem = null;
        if (route.Type == "local")
        {
            if (localLink >= 0)
            {
                return new ServerRoute((byte)localLink, server, null, LocalMtu);
            }
            problem = $"{server} is an address of the balancer itself, and this data plane has no way into its stack";
            return null;
        }
        for (int i = 0; i < links.Count; i++)
        {
            LinkInfo link = links[i];
            if (link.Name != route.Device)
            {
                continue;
            }
            InetAddress neighbor = route.Gateway ?? server;
            InetAddress? source = route.PreferredSource ?? link.SourceAddressFor(neighbor);
            int mtu = route.Mtu is > 0 and int m ? Math.Min(m, link.Mtu) : link.Mtu;
            return new ServerRoute((byte)i, neighbor, source, mtu);
        }
        problem = $"the route to {server} leaves by {route.Device}, which is not one of the --interface links " +
            $"({string.Join(", ", links.Select(l => l.Name))})";
        return null;
    }
}
