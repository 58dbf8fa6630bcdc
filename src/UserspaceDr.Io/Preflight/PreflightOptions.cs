using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Io.Preflight;

/// <summary>What the balancer host is checked for: the interface udr serves and the rules it will run.</summary>
public sealed record PreflightOptions(string InterfaceName, RuleSetSpec Rules)
{
    /// <summary>udr will answer ARP for VIPs itself (`udr run --answer-arp`): a VIP need not be on the interface.</summary>
    public bool AnswerArp { get; init; }

    /// <summary>udr will use the AF_XDP backend (`udr run --backend xdp`): its XDP program must be able to attach.</summary>
    public bool AfXdp { get; init; }

    /// <summary>udr will install the nftables ingress drop (`udr run` without --no-kernel-isolation).</summary>
    public bool KernelIsolation { get; init; } = true;

    /// <summary>Repair what can be repaired safely (GRO/LRO off) and report the state after the repair.</summary>
    public bool Fix { get; init; }

    /// <summary>How long to wait for a real server to answer ARP.</summary>
    public TimeSpan ResolveTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Every interface of the run, in order, this one among them (`udr run --interface` given more than once). A VIP or
    /// a real server found on another of them is that interface's to report; one found on none is reported once, by
    /// the first. Empty: this interface alone.
    /// </summary>
    public IReadOnlyList<string> RunInterfaces { get; init; } = [];

    /// <summary>
    /// Addresses keepalived's VRRP puts on the master (virtual_ipaddress), with their instance's name: such a VIP is
    /// on the interface only while this balancer is master, so its absence is expected.
    /// </summary>
    public IReadOnlyDictionary<InetAddress, string> VrrpAddresses { get; init; } = new Dictionary<InetAddress, string>();
}
