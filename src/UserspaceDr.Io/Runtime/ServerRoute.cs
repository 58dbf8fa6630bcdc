using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// How udr reaches one real server, decided at control time from the kernel's route (<see cref="KernelRoutes"/>): the link (index into the
/// served interfaces), the neighbour whose MAC frames go to (the gateway, else the server itself), the source
/// address on that route, and the path MTU (the route's metric, else the link's MTU).
/// </summary>
public readonly record struct ServerRoute(byte Link, uint Neighbor, uint Source, int Mtu)
{
    /// <summary>
    /// Maps a kernel route onto the served links; null with <paramref name="problem"/> set when the route leaves by an
    /// interface udr does not serve (frames for the server then stay neighbor-unresolved).
    /// </summary>
    public static ServerRoute? From(uint server, RouteInfo route, IReadOnlyList<LinkInfo> links, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(route);
        ArgumentNullException.ThrowIfNull(links);
        problem = null;
        for (int i = 0; i < links.Count; i++)
        {
            LinkInfo link = links[i];
            if (link.Name != route.Device)
            {
                continue;
            }
            uint neighbor = route.Gateway ?? server;
            uint source = route.PreferredSource ?? link.SourceAddressFor(neighbor) ?? 0;
            int mtu = route.Mtu is > 0 and int m ? Math.Min(m, link.Mtu) : link.Mtu;
            return new ServerRoute((byte)i, neighbor, source, mtu);
        }
        problem = $"the route to {Ipv4Address.Format(server)} leaves by {route.Device}, which is not one of the --interface links " +
            $"({string.Join(", ", links.Select(l => l.Name))})";
        return null;
    }
}
