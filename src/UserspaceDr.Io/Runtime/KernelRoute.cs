using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// What the kernel's routing table says about one destination (`ip -j route get ADDR`): the output device, the
/// gateway (absent on a connected route), the preferred source address, and the route's MTU metric (absent unless
/// the route sets one).
/// </summary>
public sealed record KernelRoute(string Device, uint? Gateway, uint? PreferredSource, int? Mtu)
{
    private static readonly TimeSpan LookupTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Parses the JSON `ip -j route get` prints: an array with one object, e.g.
    /// <c>[{"dst":"198.19.7.9","gateway":"198.18.5.254","dev":"eth1","prefsrc":"198.18.5.1","metrics":[{"mtu":1400}],...}]</c>.
    /// Returns null with <paramref name="error"/> set when there is no usable route in it.
    /// </summary>
    public static KernelRoute? Parse(string json, out string? error)
    {
        error = null;
        try
        {
            using var document = JsonDocument.Parse(json);
            JsonElement root = document.RootElement;
            JsonElement route = root.ValueKind == JsonValueKind.Array
                ? (root.GetArrayLength() > 0 ? root[0] : default)
                : root;
            if (route.ValueKind != JsonValueKind.Object)
            {
                error = "no route";
                return null;
            }
            if (route.TryGetProperty("type", out JsonElement type) && type.GetString() is { } kind && kind != "unicast")
            {
                error = $"route type {kind}";
                return null;
            }
            if (!route.TryGetProperty("dev", out JsonElement dev) || dev.GetString() is not { Length: > 0 } device)
            {
                error = "route has no output device";
                return null;
            }
            uint? gateway = Address(route, "gateway");
            uint? source = Address(route, "prefsrc");
            int? mtu = null;
            if (route.TryGetProperty("metrics", out JsonElement metrics) && metrics.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement metric in metrics.EnumerateArray())
                {
                    if (metric.ValueKind == JsonValueKind.Object && metric.TryGetProperty("mtu", out JsonElement value) &&
                        value.TryGetInt32(out int m) && m > 0)
                    {
                        mtu = m;
                    }
                }
            }
            return new KernelRoute(device, gateway, source, mtu);
        }
        catch (JsonException e)
        {
            error = "unreadable `ip -j route get` output: " + e.Message;
            return null;
        }
    }

    private static uint? Address(JsonElement route, string name) =>
        route.TryGetProperty(name, out JsonElement value) && value.GetString() is { } text && Ipv4Address.TryParse(text, out uint address)
            ? address
            : null;

    /// <summary>
    /// Asks the kernel (runs `ip -j route get ADDR` in the calling thread's network namespace). Control time only,
    /// never on the data path. Returns null with <paramref name="error"/> set when there is no route or ip fails.
    /// </summary>
    public static KernelRoute? Lookup(uint address, out string? error)
    {
        var start = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in new[] { "-j", "route", "get", Ipv4Address.Format(address) })
        {
            start.ArgumentList.Add(argument);
        }
        try
        {
            using Process process = Process.Start(start) ?? throw new InvalidOperationException("cannot start ip");
            Task<string> output = process.StandardOutput.ReadToEndAsync();
            Task<string> failure = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(LookupTimeout))
            {
                process.Kill();
                error = "ip route get timed out";
                return null;
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                error = failure.Result.Trim() is { Length: > 0 } message ? message
                    : string.Create(CultureInfo.InvariantCulture, $"ip route get exited with {process.ExitCode}");
                return null;
            }
            return Parse(output.Result, out error);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException or IOException)
        {
            error = "cannot run ip: " + e.Message;
            return null;
        }
    }
}

/// <summary>
/// How udr reaches one real server, decided at control time from <see cref="KernelRoute"/>: the link (index into the
/// served interfaces), the neighbour whose MAC frames go to (the gateway, else the server itself), the source
/// address on that route, and the path MTU (the route's metric, else the link's MTU).
/// </summary>
public readonly record struct ServerRoute(byte Link, uint Neighbor, uint Source, int Mtu)
{
    /// <summary>
    /// Maps a kernel route onto the served links; null with <paramref name="problem"/> set when the route leaves by an
    /// interface udr does not serve (frames for the server then stay neighbor-unresolved).
    /// </summary>
    public static ServerRoute? From(uint server, KernelRoute route, IReadOnlyList<NetworkInterfaceInfo> links, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(route);
        ArgumentNullException.ThrowIfNull(links);
        problem = null;
        for (int i = 0; i < links.Count; i++)
        {
            NetworkInterfaceInfo link = links[i];
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
