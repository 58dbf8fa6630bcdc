using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.ControlPlane.Keepalived;

/// <summary>What the checkers say of one real server: alive or not, and its weight (misc_dynamic may change it).</summary>
public readonly record struct ServerHealth(bool Alive, int Weight);

/// <summary>
/// Turns a keepalived configuration into udr's rule set, as keepalived turns it into IPVS entries (ipwrapper.c): a
/// virtual server is a service with its settings; its pool holds each live real server at its weight, each failed one
/// with <c>inhibit_on_failure</c> at weight 0, and no other failed one; while its quorum is lost and it has a sorry
/// server, the sorry server alone (the failed inhibited servers stay, at weight 0; with <c>sorry_server_inhibit</c> the
/// sorry server is listed at weight 0 while the pool serves). Real servers keep the order of the
/// file, so hashing schedulers build the same table from the same file on every balancer.
/// </summary>
public static class KeepalivedRules
{
    /// <summary>The rule set for <paramref name="config"/> with every server as <paramref name="health"/> says and every quorum as <paramref name="quorumUp"/> says.</summary>
    public static RuleSetSpec Build(KeepalivedConfig config, Func<VirtualServerConfig, RealServerConfig, ServerHealth> health,
        Func<VirtualServerConfig, bool> quorumUp)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(health);
        ArgumentNullException.ThrowIfNull(quorumUp);
        return new RuleSetSpec([.. config.VirtualServers.Select(vs =>
            Service(vs) with { RealServers = Pool(vs, [.. vs.RealServers.Select(rs => health(vs, rs))], quorumUp(vs)) })]);
    }

    /// <summary>
    /// How every server starts (init_service_rs): alive, unless one of its checkers starts failed (alpha, set on it, its
    /// server or its virtual server). A server without checkers is alive: no checker has failed.
    /// </summary>
    public static ServerHealth Initial(RealServerConfig server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return new ServerHealth(!server.Checkers.Any(c => c.Alpha), server.Weight);
    }

    /// <summary>
    /// <paramref name="rules"/> with the pool of <paramref name="vs"/> replaced; the same instance when the service is not
    /// in it (an operator deleted it) or already has that pool.
    /// </summary>
    public static RuleSetSpec WithPool(RuleSetSpec rules, VirtualServerConfig vs, ImmutableArray<RealServerSpec> pool)
    {
        ArgumentNullException.ThrowIfNull(rules);
        VirtualServiceSpec service = Service(vs);
        for (int i = 0; i < rules.Services.Length; i++)
        {
            VirtualServiceSpec live = rules.Services[i];
            if (live.SameService(service))
            {
                return live.RealServers.SequenceEqual(pool)
                    ? rules
                    : rules with { Services = rules.Services.SetItem(i, live with { RealServers = pool }) };
            }
        }
        return rules;
    }

    /// <summary>
    /// Refuses what udr's data plane cannot serve (servers of the other family by another method than TUN), with the
    /// place, before anything is applied.
    /// </summary>
    public static void Validate(KeepalivedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        _ = Build(config, (_, rs) => Initial(rs), _ => true);
    }

    /// <summary>The service's settings, without servers.</summary>
    public static VirtualServiceSpec Service(VirtualServerConfig vs)
    {
        ArgumentNullException.ThrowIfNull(vs);
        bool ipv6 = vs.Address.AddressFamily == AddressFamily.InterNetworkV6;
        // IPv4: a netmask; IPv6: a prefix length (IPVS's netmask field holds the prefix for AF_INET6), 128 by default.
        uint mask = ipv6 ? (uint)(vs.PersistencePrefix ?? 128)
            : vs.PersistencePrefix is int prefix ? uint.MaxValue << (32 - prefix) : uint.MaxValue;
        return new VirtualServiceSpec(vs.Protocol, InetAddress.FromIPAddress(vs.Address), vs.Port, vs.Scheduler, vs.Flags,
            vs.PersistenceTimeout, mask, vs.OnePacket)
        {
            FirewallMark = vs.FirewallMark,
        };
    }

    /// <summary>The pool of <paramref name="vs"/>, <paramref name="health"/> in the order of its real servers.</summary>
    public static ImmutableArray<RealServerSpec> Pool(VirtualServerConfig vs, IReadOnlyList<ServerHealth> health, bool quorumUp)
    {
        ArgumentNullException.ThrowIfNull(vs);
        ArgumentNullException.ThrowIfNull(health);
        var pool = ImmutableArray.CreateBuilder<RealServerSpec>();
        bool sorry = !quorumUp && vs.SorryServer is not null;
        for (int i = 0; i < vs.RealServers.Length; i++)
        {
            RealServerConfig rs = vs.RealServers[i];
            ServerHealth state = health[i];
            if (state.Alive && !sorry)
            {
                pool.Add(ServerOf(vs, rs, state.Weight));
            }
            else if (!state.Alive && rs.InhibitOnFailure)
            {
                pool.Add(ServerOf(vs, rs, 0));
            }
        }
        if (vs.SorryServer is SorryServerConfig server && (sorry || server.Inhibit))
        {
            // sorry_server_inhibit keeps it listed at weight 0 while the pool serves, as inhibit_on_failure does a server.
            pool.Add(new RealServerSpec(ServerAddress(vs, server.Address, server.Method, vs.Place, "sorry_server"), server.Port, server.Method, sorry ? 1 : 0));
        }
        return pool.ToImmutable();
    }

    /// <summary>
    /// The syncid of <c>lvs_sync_daemon</c>: its <c>id</c>, else its VRRP instance's <c>virtual_router_id</c> (keepalived's
    /// default), else 0.
    /// </summary>
    public static int SyncIdOf(KeepalivedConfig config, LvsSyncDaemon daemon)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(daemon);
        if (daemon.SyncId is int id)
        {
            return id;
        }
        ConfigNode? instance = config.VrrpBlocks.FirstOrDefault(b => b.Keyword == "vrrp_instance" && b.Arguments.Count > 0 && b.Arguments[0] == daemon.Instance);
        ConfigNode? vrid = instance?.Block?.FirstOrDefault(k => k.Keyword == "virtual_router_id" && k.Arguments.Count == 1);
        return vrid is not null && int.TryParse(vrid.Arguments[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int value) && value <= 255
            ? value
            : 0;
    }

    /// <summary>
    /// The addresses each vrrp_instance puts on its master (virtual_ipaddress and virtual_ipaddress_excluded: "ADDRESS[/PREFIX]
    /// [dev IF] ..."), with the instance's name. Entries that are not a single address (keepalived's ranges) are left out.
    /// </summary>
    public static IReadOnlyList<(IPAddress Address, string Instance)> VrrpAddresses(KeepalivedConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var addresses = new List<(IPAddress, string)>();
        foreach (ConfigNode instance in config.VrrpBlocks.Where(b => b.Keyword == "vrrp_instance" && b.Arguments.Count > 0))
        {
            foreach (ConfigNode block in (instance.Block ?? []).Where(k => k.Keyword is "virtual_ipaddress" or "virtual_ipaddress_excluded"))
            {
                foreach (ConfigNode entry in block.Block ?? [])
                {
                    string text = entry.Keyword.Split('/')[0];
                    if (IPAddress.TryParse(text, out IPAddress? address))
                    {
                        addresses.Add((address, instance.Arguments[0]));
                    }
                }
            }
        }
        return addresses;
    }

    /// <summary>Σ weight of the live servers: what quorum compares.</summary>
    public static long LiveWeight(IReadOnlyList<ServerHealth> health)
    {
        ArgumentNullException.ThrowIfNull(health);
        long sum = 0;
        foreach (ServerHealth state in health)
        {
            sum += state.Alive ? state.Weight : 0;
        }
        return sum;
    }

    private static RealServerSpec ServerOf(VirtualServerConfig vs, RealServerConfig rs, int weight) =>
        new(ServerAddress(vs, rs.Address, rs.Method, rs.Place, "real_server"), rs.Port, rs.Method, weight, rs.UpperThreshold, rs.LowerThreshold)
        {
            Tunnel = rs.Tunnel,
        };

    /// <summary>
    /// A server's address: of the virtual server's family, or of the other for a tunnel server (IPVS allows the mix
    /// for tunnels only; the parser has refused it for the other methods).
    /// </summary>
    private static InetAddress ServerAddress(VirtualServerConfig vs, IPAddress address, ForwardingMethod method, ConfigPlace place, string what)
    {
        if (address.AddressFamily != vs.Address.AddressFamily && method != ForwardingMethod.Tunnel)
        {
            throw new ConfigException(place, $"{what} {address}: a real server of the other address family needs lb_kind TUN");
        }
        return InetAddress.FromIPAddress(address);
    }
}
