using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// What the kernel's routing table says about one destination, as the data plane needs it: a unicast route with an
/// output device, or a local one (the destination is this host's: `ip -j route get ADDR`). Control time only, never
/// on the data path.
/// </summary>
public static class KernelRoutes
{
    /// <summary>
    /// Asks the kernel, in the calling thread's network namespace. Null with <paramref name="error"/> set when there is no
    /// usable route or `ip` fails.
    /// </summary>
    public static RouteInfo? Get(InetAddress destination, out string? error)
    {
        CommandResult result = CommandRunner.Run("ip", "-j", "route", "get", destination.ToString());
        if (!result.Succeeded)
        {
            error = result.Error.Trim() is { Length: > 0 } message ? message : $"ip route get exited with {result.ExitCode}";
            return null;
        }
        return ParseUsable(result.Output, out error);
    }

    /// <summary>
    /// The first route of `ip -j route get` output when it is a unicast or local route with an output device; null with
    /// <paramref name="error"/> set otherwise (no route, an unreachable, prohibited or broadcast route, unreadable output).
    /// </summary>
    public static RouteInfo? ParseUsable(string json, out string? error)
    {
        RouteInfo? route;
        try
        {
            route = HostParsers.ParseFirstRoute(json);
        }
        catch (HostException e)
        {
            error = e.Message;
            return null;
        }
        error = route switch
        {
            null => "no route",
            { Type: not ("unicast" or "local") } => $"route type {route.Type}",
            { Device: null or "" } => "route has no output device",
            _ => null,
        };
        return error is null ? route : null;
    }
}
