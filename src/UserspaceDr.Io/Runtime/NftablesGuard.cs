using System.Globalization;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// Keeps the balancer's own kernel from answering service traffic (a RST or port-unreachable from the director
/// breaks every flow). An nftables netdev ingress chain drops VIP:port frames for the kernel; AF_PACKET ETH_P_ALL
/// sockets see frames before that hook (the taps run in __netif_receive_skb_core before the ingress hook), so udr
/// still receives them. ARP, neighbour discovery and ping for the VIP are left alone. It also drops, for the kernel only, what udr
/// handles as NAT replies: TCP/UDP from a NAT real server's service port, ICMP errors about packets to it (its own
/// or a router's before it) and its later fragments, when
/// not addressed to the balancer's own addresses (a forwarding kernel would otherwise send the un-translated reply on
/// to the client, which answers with a RST). The balancer's own traffic with the servers (health checks, ssh, ping)
/// is addressed to it and passes, and so does the servers' other traffic through their gateway.
/// One table per interface, named udr_IFNAME; replaced atomically on reload, deleted on exit, and deleted first
/// if a crashed run left it behind.
/// </summary>
public sealed class NftablesGuard : IDisposable
{
    private readonly string _interfaceName;
    private readonly uint[] _ownAddresses;
    private readonly UInt128[] _ownIpv6Addresses;
    private bool _installed;
    private string? _appliedScript;

    /// <param name="ownAddresses">The balancer's own addresses (every served link's): traffic to them stays the kernel's.</param>
    /// <param name="ownIpv6Addresses">The same, IPv6.</param>
    public NftablesGuard(string interfaceName, IEnumerable<uint>? ownAddresses = null, IEnumerable<UInt128>? ownIpv6Addresses = null)
    {
        _interfaceName = interfaceName;
        _ownAddresses = [.. (ownAddresses ?? []).Distinct().Order()];
        _ownIpv6Addresses = [.. (ownIpv6Addresses ?? []).Distinct().Order()];
        TableName = "udr_" + new string(interfaceName.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_').ToArray());
    }

    public string TableName { get; }

    /// <summary>The nft script that (re)creates the table for <paramref name="rules"/> in one transaction.</summary>
    public string Script(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return Script(rules.Spec);
    }

    /// <summary>The nft script for a rule set not yet built (a reload checks nft before it touches anything that runs).</summary>
    public string Script(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        var script = new StringBuilder();
        // "add" then "delete" makes the delete succeed whether or not the table exists: one atomic replace.
        script.AppendLine(CultureInfo.InvariantCulture, $"add table netdev {TableName}");
        script.AppendLine(CultureInfo.InvariantCulture, $"delete table netdev {TableName}");
        script.AppendLine(CultureInfo.InvariantCulture, $"table netdev {TableName} {{");
        script.AppendLine(CultureInfo.InvariantCulture, $"  chain ingress {{ type filter hook ingress device \"{_interfaceName}\" priority -500; policy accept;");
        foreach (VirtualServiceSpec service in rules.Services.Where(s => !s.IsFirewallMark))
        {
            string protocol = service.Protocol == ServiceProtocol.Tcp ? "tcp" : "udp";
            string vip = service.Address.ToString();
            string family = service.Address.IsIPv6 ? "ip6" : "ip";
            script.AppendLine(service.Port == 0
                ? $"    {family} daddr {vip} meta l4proto {protocol} drop"
                : string.Create(CultureInfo.InvariantCulture, $"    {family} daddr {vip} {protocol} dport {service.Port} drop"));
        }
        AppendMarkedServices(script, rules);
        foreach (InetAddress vip in RuleSetTraffic.Destinations(rules, _interfaceName).Where(a => a.IsIPv6))
        {
            // Fragments carry their ports in the first one only; the kernel would reassemble them and answer.
            script.AppendLine(CultureInfo.InvariantCulture, $"    ip6 daddr {vip} exthdr frag exists meta l4proto {{ tcp, udp }} drop");
        }
        foreach (uint vip in RuleSetTraffic.Destinations(rules, _interfaceName).Where(a => a.IsIPv4).Select(a => a.IPv4))
        {
            // Later fragments carry no ports; the kernel would reassemble them and answer for the datagram.
            script.AppendLine(CultureInfo.InvariantCulture, $"    ip daddr {Ipv4Address.Format(vip)} ip frag-off & 0x1fff != 0 meta l4proto {{ tcp, udp }} drop");
        }
        uint[] natServers = [.. RuleSetTraffic.NatServers(rules).Order()];
        if (natServers.Length > 0)
        {
            // Only what can be a NAT reply: from a server's service port (any port for a port-0 service), its ICMP
            // errors, and later fragments (no ports to tell). A NAT server's own traffic through its gateway (DNS, NTP,
            // updates, answers to ssh from elsewhere) stays the kernel's to route, as IPVS leaves it.
            string notOwn = _ownAddresses.Length == 0 ? "" : $" ip daddr != {{ {string.Join(", ", _ownAddresses.Select(Ipv4Address.Format))} }}";
            foreach ((uint address, ServiceProtocol protocol, ushort port) in RuleSetTraffic.NatServerPorts(rules))
            {
                AppendReplyRule(script, "ip", Ipv4Address.Format(address), notOwn, protocol, port);
            }
            string sources = string.Join(", ", natServers.Select(Ipv4Address.Format));
            // ICMP errors quoting a packet to a NAT server, from the server itself or a router before it: @th,192,32
            // is the quoted IPv4 header's destination (ICMP header 8 bytes + 16), whatever options the outer has.
            string quoted = string.Join(", ", natServers.Select(a => string.Create(CultureInfo.InvariantCulture, $"0x{a:x8}")));
            script.AppendLine(CultureInfo.InvariantCulture,
                $"   {notOwn} icmp type {{ destination-unreachable, source-quench, time-exceeded, parameter-problem }} @th,192,32 {{ {quoted} }} drop");
            script.AppendLine(CultureInfo.InvariantCulture, $"    ip saddr {{ {sources} }}{notOwn} ip frag-off & 0x1fff != 0 meta l4proto {{ tcp, udp }} drop");
        }
        AppendIpv6NatServers(script, rules);
        script.AppendLine("  }");
        script.AppendLine("}");
        return script.ToString();
    }

    /// <summary>
    /// What udr takes from the kernel for the firewall-mark services: for each mark rule that marks a service's traffic,
    /// the same selection in nft's words (addresses, protocol, ports; a -m mark condition is left out, so the guard
    /// keeps from the kernel at least what udr may serve).
    /// </summary>
    private void AppendMarkedServices(StringBuilder script, RuleSetSpec rules)
    {
        foreach (VirtualServiceSpec service in rules.Services.Where(s => s.IsFirewallMark))
        {
            // A rule whose -i names another interface marks nothing that arrives on this one.
            foreach (FirewallMarkRule rule in rules.MarkRules.Rules.Where(r => r.Family == service.Address.Family &&
                r.MarkOfUnmarked == service.FirewallMark && r.HasDestinations && r.InterfaceMatches(_interfaceName)))
            {
                string family = rule.Family == IpFamily.IPv6 ? "ip6" : "ip";
                var line = new StringBuilder("   ");
                if (rule.Source is { } source)
                {
                    line.Append(CultureInfo.InvariantCulture, $" {family} saddr {(rule.SourceNegated ? "!= " : "")}{source.Network}/{source.Length}");
                }
                line.Append(CultureInfo.InvariantCulture, $" {family} daddr {rule.Destination!.Value.Network}/{rule.Destination.Value.Length}");
                if (rule.Protocol != 0)
                {
                    string protocol = rule.Protocol switch
                    {
                        IpProtocol.Tcp => "tcp",
                        IpProtocol.Udp => "udp",
                        _ => rule.Protocol.ToString(CultureInfo.InvariantCulture),
                    };
                    line.Append(CultureInfo.InvariantCulture, $" meta l4proto {(rule.ProtocolNegated ? "!= " : "")}{protocol}");
                }
                AppendPorts(line, "sport", rule.SourcePorts, rule.SourcePortsNegated);
                AppendPorts(line, "dport", rule.DestinationPorts, rule.DestinationPortsNegated);
                script.Append(line).AppendLine(" drop");
            }
        }

        static void AppendPorts(StringBuilder line, string field, System.Collections.Immutable.ImmutableArray<PortRange> ports, bool negated)
        {
            if (!ports.IsEmpty)
            {
                line.Append(CultureInfo.InvariantCulture, $" th {field} {(negated ? "!= " : "")}{{ {string.Join(", ", ports)} }}");
            }
        }
    }

    /// <summary>
    /// A NAT server's replies from its service port (every port for a port-0 service), in <paramref name="family"/>'s
    /// syntax ("ip" or "ip6"), unless <paramref name="notOwn"/> says they are addressed to the balancer.
    /// </summary>
    private static void AppendReplyRule(StringBuilder script, string family, string server, string notOwn, ServiceProtocol protocol, ushort port)
    {
        string name = protocol == ServiceProtocol.Tcp ? "tcp" : "udp";
        script.AppendLine(port == 0
            ? $"    {family} saddr {server}{notOwn} meta l4proto {name} drop"
            : string.Create(CultureInfo.InvariantCulture, $"    {family} saddr {server}{notOwn} {name} sport {port} drop"));
    }

    /// <summary>
    /// The IPv6 form of the NAT server rules: a server's replies from its service ports, the ICMPv6 errors it sends
    /// (udr translates them), and later fragments from it, unless addressed to the balancer itself.
    /// </summary>
    private void AppendIpv6NatServers(StringBuilder script, RuleSetSpec rules)
    {
        InetAddress[] natServers = [.. RuleSetTraffic.Ipv6NatServers(rules).Order().Select(InetAddress.FromIPv6)];
        if (natServers.Length == 0)
        {
            return;
        }
        string notOwn = _ownIpv6Addresses.Length == 0 ? "" : $" ip6 daddr != {{ {string.Join(", ", _ownIpv6Addresses.Select(InetAddress.FromIPv6))} }}";
        foreach ((UInt128 address, ServiceProtocol protocol, ushort port) in RuleSetTraffic.Ipv6NatServerPorts(rules))
        {
            AppendReplyRule(script, "ip6", InetAddress.FromIPv6(address).ToString(), notOwn, protocol, port);
        }
        string sources = string.Join(", ", natServers);
        script.AppendLine(CultureInfo.InvariantCulture,
            $"    ip6 saddr {{ {sources} }}{notOwn} icmpv6 type {{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem }} drop");
        script.AppendLine(CultureInfo.InvariantCulture, $"    ip6 saddr {{ {sources} }}{notOwn} exthdr frag exists meta l4proto {{ tcp, udp }} drop");
    }

    /// <summary>Installs or replaces the table. Throws <see cref="InvalidOperationException"/> with nft's message on failure.</summary>
    public void Apply(RuleSet rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        Apply(rules.Spec);
    }

    /// <summary>
    /// Installs or replaces the table for <paramref name="rules"/>; does nothing when the table already says the same
    /// (an edit of weights or schedulers does not touch nftables). Throws <see cref="InvalidOperationException"/>
    /// with nft's message on failure.
    /// </summary>
    public void Apply(RuleSetSpec rules)
    {
        string script = Script(rules);
        if (_installed && script == _appliedScript)
        {
            return;
        }
        RunNft(script, check: true);
        _installed = true;
        _appliedScript = script;
    }

    /// <summary>Deletes the table if present (also a leftover from a crashed run).</summary>
    public void Remove()
    {
        RunNft($"add table netdev {TableName}\ndelete table netdev {TableName}\n", check: false);
        _installed = false;
        _appliedScript = null;
    }

    public void Dispose()
    {
        if (_installed)
        {
            Remove();
        }
    }

    private static void RunNft(string script, bool check)
    {
        CommandResult result = CommandRunner.RunWithInput("nft", script, "-f", "-");
        if (check && !result.Succeeded)
        {
            throw new InvalidOperationException($"nft failed ({result.ExitCode}): {result.Error.Trim()}");
        }
    }
}
