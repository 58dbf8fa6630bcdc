using System.Diagnostics;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using UserspaceDr.Admin;
using UserspaceDr.ControlPlane.Health;
using UserspaceDr.ControlPlane.Vrrp;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Cli.Commands;

/// <summary>A real server's row in `udr top`: its weight, connections, and IPVS's estimator rates (ipvsadm --rate).</summary>
internal sealed record TopServer(string Name, string Method, int Weight, int Active, int Inactive, long ConnectionsPerSecond,
    long InPacketsPerSecond, long OutPacketsPerSecond, long InBytesPerSecond, long OutBytesPerSecond);

/// <summary>A virtual service's row and its servers'.</summary>
internal sealed record TopService(string Name, string Scheduler, long ConnectionsPerSecond, long InPacketsPerSecond, long OutPacketsPerSecond,
    long InBytesPerSecond, long OutBytesPerSecond, IReadOnlyList<TopServer> Servers);

/// <summary>A checker's state (keepalived.conf's checkers only).</summary>
internal sealed record TopChecker(string Service, string Server, string Checker, bool Up, string LastResult);

/// <summary>
/// What `udr top` shows of the running daemon at one moment, as the daemon answers the control request
/// <see cref="Program"/> (JSON): services and servers with rates, frame counters by drop reason (the client turns two
/// snapshots into rates), ring drops, table fill, checkers and VRRP roles.
/// </summary>
internal sealed record TopSnapshot(DateTimeOffset Time, string Version, double UptimeSeconds, IReadOnlyList<string> Interfaces,
    int Connections, int ConnectionCapacity, long Forwarded, long RingDrops, long TransmitErrors, IReadOnlyDictionary<string, long> Drops,
    IReadOnlyList<TopService> Services, IReadOnlyList<TopChecker> Checkers, IReadOnlyDictionary<string, string> Vrrp)
{
    /// <summary>The program name of the control request that asks for a snapshot.</summary>
    public const string Program = "udr top";

    public static TopSnapshot Take(DataPlane plane, IpvsState state, IReadOnlyList<CheckerStatus> checkers,
        IReadOnlyList<(string Instance, VrrpRole Role)> vrrp)
    {
        IReadOnlyList<WorkerReading> workers = plane.ReadWorkers();
        var drops = new Dictionary<string, long>(StringComparer.Ordinal);
        long forwarded = 0;
        long[] frames = WorkerReading.FramesOfAll(workers);
        for (int i = 0; i < frames.Length; i++)
        {
            var reason = (FrameReason)i;
            long count = frames[i];
            if (FrameReasons.VerdictOf(reason) == Verdict.Drop && count != 0)
            {
                drops[FrameReasons.Name(reason)] = count;
            }
            else if (FrameReasons.VerdictOf(reason) == Verdict.Transmit)
            {
                forwarded += count;
            }
        }
        TopService[] services = [.. state.Services.Select(service => new TopService(
            service.Spec.IsFirewallMark
                ? VirtualServiceSpec.FirewallMarkName(service.Spec.FirewallMark, service.Spec.Address.Family)
                : $"{IpvsadmPrinter.ProtocolName(service.Spec.Protocol)} {service.Spec.Address.WithPort(service.Spec.Port)}", service.Spec.Scheduler,
            service.Rates.ConnectionsPerSecond, service.Rates.InPacketsPerSecond, service.Rates.OutPacketsPerSecond,
            service.Rates.InBytesPerSecond, service.Rates.OutBytesPerSecond,
            [.. service.RealServers.Select(server => new TopServer(server.Spec.Address.WithPort(server.Spec.Port),
                IpvsadmPrinter.ForwardingName(server.Spec.Method), server.Spec.Weight, server.ActiveConnections, server.InactiveConnections,
                server.Rates.ConnectionsPerSecond, server.Rates.InPacketsPerSecond, server.Rates.OutPacketsPerSecond,
                server.Rates.InBytesPerSecond, server.Rates.OutBytesPerSecond))]))];
        using Process self = Process.GetCurrentProcess();
        return new TopSnapshot(DateTimeOffset.UtcNow, DaemonVersion, (DateTime.Now - self.StartTime).TotalSeconds,
            [.. plane.Links.Select(l => l.Name)], workers.Sum(w => w.Connections), workers.Sum(w => w.ConnectionCapacity), forwarded,
            workers.Sum(w => w.RingDrops), workers.Sum(w => w.TransmitErrors), drops, services,
            [.. checkers.Select(c => new TopChecker(c.Service, c.Server, c.Checker, c.Up, c.LastResult))],
            vrrp.ToDictionary(v => v.Instance, v => v.Role.ToString().ToUpperInvariant(), StringComparer.Ordinal));
    }

    /// <summary>udr's version and commit, as `udr --version` prints them.</summary>
    public static string DaemonVersion { get; } =
        typeof(TopSnapshot).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    public string ToJson() => JsonSerializer.Serialize(this, TopJson.Default.TopSnapshot);

    /// <summary>The snapshot in <paramref name="json"/>; null when it is not one.</summary>
    public static TopSnapshot? FromJson(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, TopJson.Default.TopSnapshot);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSerializable(typeof(TopSnapshot))]
internal sealed partial class TopJson : JsonSerializerContext;
