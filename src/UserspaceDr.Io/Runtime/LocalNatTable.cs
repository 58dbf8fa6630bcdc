using System.Globalization;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Engine;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// NAT to a real server on the balancer itself, done by the kernel: IPVS rewrites the destination and translates the
/// replies in its OUTPUT hook (ip_vs_local_reply4), which a user-space balancer does not have. So udr hands the
/// client's frame unchanged to its own stack (<see cref="LocalDelivery"/>), and this table's DNAT rule for frames
/// entering by that device rewrites VIP:vport to the server's address and port; conntrack then gives the server's
/// replies VIP:vport back as they leave, so the client sees the service's address as with any NAT server. Only
/// frames from udr's device match: the host's other traffic is untouched. One such server per service (the kernel's
/// rule, not udr's scheduler, names it); NAT to 127.0.0.0/8 or ::1 is not offered, as IPVS drops it for traffic from
/// outside. Table inet udr_local, present only while a rule set has such a server; replaced atomically, deleted on exit.
/// </summary>
public sealed class LocalNatTable : IDisposable
{
    public const string TableName = "udr_local";

    private readonly Func<InetAddress, bool> _isOwnAddress;
    private string? _appliedScript;

    /// <param name="isOwnAddress">Whether an address is the balancer's own (its route is local); the kernel's routes by default.</param>
    public LocalNatTable(Func<InetAddress, bool>? isOwnAddress = null)
    {
        _isOwnAddress = isOwnAddress ?? (address => KernelRoutes.Get(address, out _)?.Type == "local");
    }

    /// <summary>127.0.0.0/8 and ::1: a NAT server there is refused for traffic from outside (IPVS drops it).</summary>
    public static bool IsLoopback(InetAddress address) => address.IsIPv4 ? (address.IPv4 >> 24) == 127 : address.IPv6 == UInt128.One;

    /// <summary>
    /// Each service's NAT server on the balancer itself (loopback ones aside). Throws <see cref="ArgumentException"/>
    /// for a service with two, naming it.
    /// </summary>
    public IReadOnlyList<(VirtualServiceSpec Service, RealServerSpec Server)> LocalNatServers(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var found = new List<(VirtualServiceSpec, RealServerSpec)>();
        foreach (VirtualServiceSpec service in rules.Services)
        {
            RealServerSpec[] local = [.. service.RealServers.Where(s => s.Method == ForwardingMethod.Masquerade && !IsLoopback(s.Address) && _isOwnAddress(s.Address))];
            if (local.Length > 0 && service.IsFirewallMark)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"FWM {service.FirewallMark} has a NAT real server on the balancer itself ({Endpoint(local[0].Address, local[0].Port)}): udr hands such a server's frames to the kernel's DNAT by address and port, which a firewall-mark service has not; use -g for it"),
                    nameof(rules));
            }
            if (local.Length > 1)
            {
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                    $"{Describe(service)} has {local.Length} NAT real servers on the balancer itself ({string.Join(", ", local.Select(s => Endpoint(s.Address, s.Port)))}): at most one per service, since the kernel's DNAT, not udr's scheduler, picks it"),
                    nameof(rules));
            }
            if (local.Length == 1)
            {
                found.Add((service, local[0]));
            }
        }
        return found;
    }

    /// <summary>The nft script that (re)creates the table for these servers in one transaction; deletes it when there are none.</summary>
    public static string Script(IReadOnlyList<(VirtualServiceSpec Service, RealServerSpec Server)> servers)
    {
        ArgumentNullException.ThrowIfNull(servers);
        var script = new StringBuilder();
        script.AppendLine(CultureInfo.InvariantCulture, $"add table inet {TableName}");
        script.AppendLine(CultureInfo.InvariantCulture, $"delete table inet {TableName}");
        if (servers.Count == 0)
        {
            return script.ToString();
        }
        script.AppendLine(CultureInfo.InvariantCulture, $"table inet {TableName} {{");
        script.AppendLine("  chain prerouting { type nat hook prerouting priority dstnat; policy accept;");
        foreach ((VirtualServiceSpec service, RealServerSpec server) in servers)
        {
            string family = service.Address.IsIPv6 ? "ip6" : "ip";
            string protocol = service.Protocol == ServiceProtocol.Tcp ? "tcp" : "udp";
            string port = service.Port == 0 ? $"meta l4proto {protocol}" : string.Create(CultureInfo.InvariantCulture, $"{protocol} dport {service.Port}");
            string target = server.Port == 0 || service.Port == 0 ? server.Address.ToString() : Endpoint(server.Address, server.Port);
            script.AppendLine(CultureInfo.InvariantCulture,
                $"    iifname \"{LocalDelivery.DeviceName}\" {family} daddr {service.Address} {port} dnat {family} to {target}");
        }
        script.AppendLine("  }");
        // The replies' source is put back (VIP:vport) where conntrack undoes the DNAT: a nat chain must hook here.
        script.AppendLine("  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }");
        script.AppendLine("}");
        return script.ToString();
    }

    /// <summary>
    /// Installs, replaces or removes the table for <paramref name="rules"/>; does nothing when nothing changed. Throws
    /// <see cref="ArgumentException"/> for rules it cannot serve and <see cref="InvalidOperationException"/> when nft refuses.
    /// </summary>
    public void Apply(RuleSetSpec rules)
    {
        string script = Script(LocalNatServers(rules));
        if (script == _appliedScript || (_appliedScript is null && script == Script([])))
        {
            return;
        }
        CommandResult result = CommandRunner.RunWithInput("nft", script, "-f", "-");
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"nft failed ({result.ExitCode}) on table inet {TableName}: {result.Error.Trim()}");
        }
        _appliedScript = script == Script([]) ? null : script;
    }

    /// <summary>Deletes the table if present (also a leftover from a crashed run).</summary>
    public void Remove()
    {
        CommandRunner.RunWithInput("nft", Script([]), "-f", "-");
        _appliedScript = null;
    }

    public void Dispose()
    {
        if (_appliedScript is not null)
        {
            Remove();
        }
    }

    private static string Describe(VirtualServiceSpec service) =>
        $"{(service.Protocol == ServiceProtocol.Tcp ? "TCP" : "UDP")} {Endpoint(service.Address, service.Port)}";

    private static string Address(InetAddress address) => address.IsIPv6 ? $"[{address}]" : address.ToString();

    private static string Endpoint(InetAddress address, ushort port) => string.Create(CultureInfo.InvariantCulture, $"{Address(address)}:{port}");
}
