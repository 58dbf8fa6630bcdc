using System.Collections.Immutable;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Services;

/// <summary>An address and a prefix length (198.18.0.0/24, 2001:2::/64); the length is the family's full width for one address.</summary>
public readonly record struct AddressPrefix(InetAddress Network, int Length)
{
    public IpFamily Family => Network.Family;

    /// <summary>How many addresses the prefix holds, capped at <paramref name="cap"/>.</summary>
    public long CountUpTo(long cap)
    {
        int hostBits = Network.MaxPrefixLength - Length;
        return hostBits >= 62 ? cap : Math.Min(cap, 1L << hostBits);
    }

    /// <summary>Every address of the prefix, in order (the caller bounds it with <see cref="CountUpTo"/>).</summary>
    public IEnumerable<InetAddress> Addresses()
    {
        long count = CountUpTo(long.MaxValue);
        for (long i = 0; i < count; i++)
        {
            yield return Network.IsIPv4 ? InetAddress.FromIPv4(Network.IPv4 + (uint)i) : InetAddress.FromIPv6(Network.IPv6 + (UInt128)(ulong)i);
        }
    }

    public override string ToString() => Length == Network.MaxPrefixLength ? Network.ToString() : $"{Network}/{Length}";
}

/// <summary>An inclusive port range of a rule (--dport 80, --dports 8000:8080); one port is a range of one.</summary>
public readonly record struct PortRange(ushort First, ushort Last)
{
    public bool Contains(ushort port) => port >= First && port <= Last;

    public override string ToString() => First == Last ? First.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{First}-{Last}";
}

/// <summary>
/// One mark rule as a site's mangle table holds it (iptables -t mangle -A PREROUTING ... -j MARK): what a packet must
/// match and how it changes the packet's mark. Every part is optional; a negated part matches what it does not name.
/// The mark is changed as xt_MARK does it: <c>mark = (mark &amp; ~Mask) ^ Value</c> (--set-xmark; --set-mark V/M is
/// Value V, Mask M|V; --and/--or/--xor-mark are the other forms of the same).
/// </summary>
public sealed record FirewallMarkRule(IpFamily Family, uint Value, uint Mask)
{
    public AddressPrefix? Source { get; init; }
    public bool SourceNegated { get; init; }
    public AddressPrefix? Destination { get; init; }
    public bool DestinationNegated { get; init; }

    /// <summary>IP protocol number; 0 for any (-p all, or none given).</summary>
    public byte Protocol { get; init; }
    public bool ProtocolNegated { get; init; }
    public ImmutableArray<PortRange> SourcePorts { get; init; } = [];
    public bool SourcePortsNegated { get; init; }
    public ImmutableArray<PortRange> DestinationPorts { get; init; } = [];
    public bool DestinationPortsNegated { get; init; }

    /// <summary>-i: the interface the packet arrived on, as iptables names it (a trailing '+' matches every name so begun).</summary>
    public string? InInterface { get; init; }
    public bool InInterfaceNegated { get; init; }

    /// <summary>-i matches <paramref name="interfaceName"/> (iptables' rule: "eth+" matches every name beginning "eth").</summary>
    public bool InterfaceMatches(string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(interfaceName);
        if (InInterface is not { } pattern)
        {
            return true;
        }
        bool named = pattern.EndsWith('+') ? interfaceName.StartsWith(pattern[..^1], StringComparison.Ordinal) : interfaceName == pattern;
        return named != InInterfaceNegated;
    }

    /// <summary>-m mark --mark V/M: the mark so far, masked, must equal V (rules before this one set it).</summary>
    public (uint Value, uint Mask)? MarkMatch { get; init; }
    public bool MarkMatchNegated { get; init; }

    /// <summary>Where the rule was read (file:line), for messages.</summary>
    public string Place { get; init; } = "";

    /// <summary>The mark a packet that had none leaves this rule with: what a rule "marks traffic for".</summary>
    public uint MarkOfUnmarked => Value;

    /// <summary>The rule selects only traffic to a known set of addresses (a positive -d), which udr can take from the kernel.</summary>
    public bool HasDestinations => Destination is not null && !DestinationNegated;
}

/// <summary>
/// The mark rules udr applies in place of the kernel's mangle table (a packet socket sees a frame before netfilter
/// marks it, so udr marks it itself, as the rules would): in order, every rule that matches changes the mark, since MARK
/// never ends the chain. Immutable; published with the rule set it belongs to. Reading it allocates nothing.
/// </summary>
public sealed class FirewallMarkRules
{
    public static readonly FirewallMarkRules None = new([]);

    private readonly Compiled[] _ipv4;
    private readonly Compiled[] _ipv6;

    public FirewallMarkRules(ImmutableArray<FirewallMarkRule> rules, string source = "")
        : this(rules, source, [])
    {
    }

    private FirewallMarkRules(ImmutableArray<FirewallMarkRule> rules, string source, IReadOnlyList<string> links)
    {
        Rules = rules;
        Source = source;
        Links = links;
        _ipv4 = [.. rules.Where(r => r.Family == IpFamily.IPv4).Select(r => Compile(r, links))];
        _ipv6 = [.. rules.Where(r => r.Family == IpFamily.IPv6).Select(r => Compile(r, links))];
    }

    /// <summary>
    /// The same rules for a data plane whose links (a frame's link index) are <paramref name="linkNames"/>, in order:
    /// what a rule's -i names is settled here, once. Before this, a rule with -i matches no frame (with ! -i, every one).
    /// </summary>
    public FirewallMarkRules ForLinks(IReadOnlyList<string> linkNames)
    {
        ArgumentNullException.ThrowIfNull(linkNames);
        return new FirewallMarkRules(Rules, Source, [.. linkNames]);
    }

    /// <summary>The link names -i was settled against (<see cref="ForLinks"/>).</summary>
    public IReadOnlyList<string> Links { get; }

    public ImmutableArray<FirewallMarkRule> Rules { get; }

    /// <summary>The file the rules came from ("" when none).</summary>
    public string Source { get; }

    /// <summary>
    /// The destinations of the rules that can mark a packet with <paramref name="mark"/>, for one family: the traffic
    /// udr takes from the kernel for that mark's service. A rule without a positive destination adds none (it marks only
    /// frames udr takes for another reason).
    /// </summary>
    /// <param name="interfaceName">Only rules whose -i admits frames arriving on it; null: every rule.</param>
    public IEnumerable<AddressPrefix> DestinationsOf(IpFamily family, uint mark, string? interfaceName = null) =>
        Rules.Where(r => r.Family == family && r.MarkOfUnmarked == mark && r.HasDestinations && (interfaceName is null || r.InterfaceMatches(interfaceName)))
            .Select(r => r.Destination!.Value).Distinct();

    /// <summary>The mark of a TCP or UDP packet after every rule of its family (0: unmarked).</summary>
    public uint Classify<TAddress>(TAddress source, TAddress destination, byte protocol, ushort sourcePort, ushort destinationPort, byte link = 0)
        where TAddress : unmanaged
    {
        Compiled[] rules = AddressBits.IsIPv4<TAddress>() ? _ipv4 : _ipv6;
        if (rules.Length == 0)
        {
            return 0;
        }
        UInt128 from = AddressBits.Widen(source);
        UInt128 to = AddressBits.Widen(destination);
        uint mark = 0;
        foreach (Compiled rule in rules)
        {
            if (((rule.Links >> link) & 1) != 0 && rule.Matches(from, to, protocol, sourcePort, destinationPort, mark))
            {
                mark = (mark & ~rule.Mask) ^ rule.Value;
            }
        }
        return mark;
    }

    private static Compiled Compile(FirewallMarkRule rule, IReadOnlyList<string> links)
    {
        // The links whose frames the rule's -i admits, one bit per link index.
        ulong admitted = rule.InInterface is null ? ulong.MaxValue : 0;
        for (int i = 0; i < links.Count && i < 64 && rule.InInterface is not null; i++)
        {
            admitted |= rule.InterfaceMatches(links[i]) ? 1UL << i : 0;
        }
        if (rule.InInterface is not null && rule.InInterfaceNegated && links.Count == 0)
        {
            admitted = ulong.MaxValue;
        }
        (UInt128 sourceNetwork, UInt128 sourceMask) = Bits(rule.Source);
        (UInt128 destinationNetwork, UInt128 destinationMask) = Bits(rule.Destination);
        return new Compiled(sourceNetwork, sourceMask, rule.SourceNegated, destinationNetwork, destinationMask, rule.DestinationNegated,
            rule.Protocol, rule.ProtocolNegated, [.. rule.SourcePorts], rule.SourcePortsNegated, [.. rule.DestinationPorts],
            rule.DestinationPortsNegated, rule.MarkMatch is not null, rule.MarkMatch?.Value ?? 0, rule.MarkMatch?.Mask ?? 0, rule.MarkMatchNegated,
            rule.Value, rule.Mask, admitted);

        static (UInt128 Network, UInt128 Mask) Bits(AddressPrefix? prefix)
        {
            if (prefix is not { } p)
            {
                return (UInt128.Zero, UInt128.Zero); // matches everything
            }
            int width = p.Network.MaxPrefixLength;
            UInt128 all = width == 32 ? uint.MaxValue : UInt128.MaxValue;
            UInt128 mask = p.Length == 0 ? UInt128.Zero : (all << (width - p.Length)) & all;
            UInt128 network = p.Network.IsIPv4 ? p.Network.IPv4 : p.Network.IPv6;
            return (network & mask, mask);
        }
    }

    /// <summary>A rule in the form a frame is matched against: both families' addresses widened to 128 bits.</summary>
    private sealed record Compiled(
        UInt128 SourceNetwork, UInt128 SourceMask, bool SourceNegated,
        UInt128 DestinationNetwork, UInt128 DestinationMask, bool DestinationNegated,
        byte Protocol, bool ProtocolNegated,
        PortRange[] SourcePorts, bool SourcePortsNegated,
        PortRange[] DestinationPorts, bool DestinationPortsNegated,
        bool HasMarkMatch, uint MarkMatchValue, uint MarkMatchMask, bool MarkMatchNegated,
        uint Value, uint Mask, ulong Links)
    {
        public bool Matches(UInt128 source, UInt128 destination, byte protocol, ushort sourcePort, ushort destinationPort, uint mark) =>
            (!HasMarkMatch || ((mark & MarkMatchMask) == MarkMatchValue) != MarkMatchNegated) &&
            ((destination & DestinationMask) == DestinationNetwork) != DestinationNegated &&
            ((source & SourceMask) == SourceNetwork) != SourceNegated &&
            (Protocol == 0 || (protocol == Protocol) != ProtocolNegated) &&
            (SourcePorts.Length == 0 || InAny(SourcePorts, sourcePort) != SourcePortsNegated) &&
            (DestinationPorts.Length == 0 || InAny(DestinationPorts, destinationPort) != DestinationPortsNegated);

        private static bool InAny(PortRange[] ranges, ushort port)
        {
            foreach (PortRange range in ranges)
            {
                if (range.Contains(port))
                {
                    return true;
                }
            }
            return false;
        }
    }
}
