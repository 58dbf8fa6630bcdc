using UserspaceDr.Admin;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Cli.Commands;

/// <summary>Turns operator input (files, addresses) into validated values, or a <see cref="UsageException"/>.</summary>
internal static class CliInputs
{
    public static RuleSetSpec LoadRules(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"cannot read rules file {path}: {e.Message}", e);
        }
        var result = RulesFile.Load(text);
        if (!result.IsSuccess)
        {
            throw new UsageException($"rules file {path}: {result.Error!.Message}");
        }
        return result.Value!;
    }

    /// <summary>Every --fwmark-rules file's mark rules, in the order given (none: no rules).</summary>
    public static FirewallMarkRules LoadMarkRules(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        try
        {
            FirewallMarkRules[] files = [.. paths.Select(MarkRulesFile.Load)];
            return files.Length switch
            {
                0 => FirewallMarkRules.None,
                1 => files[0],
                _ => new FirewallMarkRules([.. files.SelectMany(f => f.Rules)], string.Join(", ", files.Select(f => f.Source))),
            };
        }
        catch (MarkRulesException e)
        {
            throw new UsageException($"--fwmark-rules: {e.Message}", e);
        }
    }

    public static MacAddress ParseMac(string text, string what) =>
        MacAddress.TryParse(text, out MacAddress mac) ? mac : throw new UsageException($"{what}: '{text}' is not a MAC address (aa:bb:cc:dd:ee:ff)");

    public static uint ParseAddress(string text, string what) =>
        Ipv4Address.TryParse(text, out uint address) ? address : throw new UsageException($"{what}: '{text}' is not an IPv4 address");

    /// <summary>IP=MAC pairs (the neighbours udr may send to).</summary>
    /// <summary>`--neighbor IP=MAC` pairs, IPv4 or IPv6 (link 0, the default MTU), as the table replay forwards by.</summary>
    public static NeighborTable ParseNeighbors(IEnumerable<string> pairs)
    {
        var ipv4 = new Dictionary<uint, NextHop>();
        var ipv6 = new Dictionary<UInt128, NextHop>();
        foreach (string pair in pairs)
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--neighbor: '{pair}' is not IP=MAC");
            }
            string text = pair[..equals];
            if (!InetAddress.TryParse(text, out InetAddress address))
            {
                throw new UsageException($"--neighbor: '{text}' is not an IPv4 or IPv6 address");
            }
            MacAddress mac = ParseMac(pair[(equals + 1)..], "--neighbor");
            if (mac == MacAddress.Zero)
            {
                throw new UsageException($"--neighbor: '{pair}' has the zero MAC");
            }
            bool added = address.IsIPv4 ? ipv4.TryAdd(address.IPv4, new NextHop(mac)) : ipv6.TryAdd(address.IPv6, new NextHop(mac));
            if (!added)
            {
                throw new UsageException($"--neighbor: {address} is given twice");
            }
        }
        return new NeighborTable(ipv4, ipv6);
    }
}
