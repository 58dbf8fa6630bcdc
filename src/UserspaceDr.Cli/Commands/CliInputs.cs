using UserspaceDr.Admin;
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

    public static MacAddress ParseMac(string text, string what) =>
        MacAddress.TryParse(text, out MacAddress mac) ? mac : throw new UsageException($"{what}: '{text}' is not a MAC address (aa:bb:cc:dd:ee:ff)");

    public static uint ParseAddress(string text, string what) =>
        Ipv4Address.TryParse(text, out uint address) ? address : throw new UsageException($"{what}: '{text}' is not an IPv4 address");

    /// <summary>IP=MAC pairs (the neighbours udr may send to).</summary>
    public static Dictionary<uint, MacAddress> ParseNeighbors(IEnumerable<string> pairs)
    {
        var neighbors = new Dictionary<uint, MacAddress>();
        foreach (string pair in pairs)
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--neighbor: '{pair}' is not IP=MAC");
            }
            uint address = ParseAddress(pair[..equals], "--neighbor");
            MacAddress mac = ParseMac(pair[(equals + 1)..], "--neighbor");
            if (mac == MacAddress.Zero)
            {
                throw new UsageException($"--neighbor: '{pair}' has the zero MAC");
            }
            if (!neighbors.TryAdd(address, mac))
            {
                throw new UsageException($"--neighbor: {Ipv4Address.Format(address)} is given twice");
            }
        }
        return neighbors;
    }
}
