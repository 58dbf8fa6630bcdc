using System.Globalization;
using System.Text.Json;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>Parsers for what the host tools print: `ip -j addr`, `ip -j route`, `ethtool -k`, /proc files.</summary>
public static class HostParsers
{
    /// <summary>`ip -j addr show`: every interface with its IPv4 and IPv6 addresses (other families are skipped).</summary>
    public static IReadOnlyList<LinkInfo> ParseAddresses(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var links = new List<LinkInfo>();
        using JsonDocument document = ParseJson(json, "ip -j addr");
        foreach (JsonElement link in document.RootElement.EnumerateArray())
        {
            string name = GetString(link, "ifname") ?? throw new HostException("ip -j addr: an interface without a name");
            int index = link.TryGetProperty("ifindex", out JsonElement i) && i.ValueKind == JsonValueKind.Number ? i.GetInt32() : 0;
            int mtu = link.TryGetProperty("mtu", out JsonElement m) && m.ValueKind == JsonValueKind.Number ? m.GetInt32() : 0;
            var flags = new List<string>();
            if (link.TryGetProperty("flags", out JsonElement f) && f.ValueKind == JsonValueKind.Array)
            {
                flags.AddRange(f.EnumerateArray().Select(e => e.GetString()).OfType<string>());
            }
            var addresses = new List<InterfaceAddress>();
            var ipv6Addresses = new List<LinkAddress>();
            if (link.TryGetProperty("addr_info", out JsonElement info) && info.ValueKind == JsonValueKind.Array)
            {
                foreach (JsonElement address in info.EnumerateArray())
                {
                    string? family = GetString(address, "family");
                    if (family is not ("inet" or "inet6") || GetString(address, "local") is not { } local ||
                        !InetAddress.TryParse(local, out InetAddress value) || value.IsIPv4 != (family == "inet") ||
                        !address.TryGetProperty("prefixlen", out JsonElement prefix) || prefix.ValueKind != JsonValueKind.Number)
                    {
                        continue;
                    }
                    string scope = GetString(address, "scope") ?? "global";
                    if (value.IsIPv4)
                    {
                        addresses.Add(new InterfaceAddress(value.IPv4, prefix.GetInt32(), scope));
                    }
                    else
                    {
                        ipv6Addresses.Add(new LinkAddress(value, prefix.GetInt32(), scope));
                    }
                }
            }
            links.Add(new LinkInfo(name, index, flags, mtu, GetString(link, "operstate") ?? "UNKNOWN", addresses, GetString(link, "link_type"))
            {
                Mac = GetString(link, "address") is { } hardware && MacAddress.TryParse(hardware, out MacAddress mac) ? mac : MacAddress.Zero,
                Ipv6Addresses = ipv6Addresses,
                Xdp = ParseXdp(link),
            });
        }
        return links;
    }

    /// <summary>The XDP program attached to a link (`"xdp": {"mode": N, "prog": {"id": N, "name": …}}`), or null.</summary>
    private static XdpProgramInfo? ParseXdp(JsonElement link) =>
        link.TryGetProperty("xdp", out JsonElement xdp) && xdp.ValueKind == JsonValueKind.Object &&
        xdp.TryGetProperty("prog", out JsonElement program) && program.ValueKind == JsonValueKind.Object &&
        program.TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.Number
            ? new XdpProgramInfo(id.GetInt32(), GetString(program, "name"))
            : null;

    /// <summary>`ip -j route show …` or `ip -j route get …`: the first route, or null when there is none.</summary>
    public static RouteInfo? ParseFirstRoute(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (string.IsNullOrWhiteSpace(json))
        {
            return null;
        }
        using JsonDocument document = ParseJson(json, "ip -j route");
        foreach (JsonElement route in document.RootElement.EnumerateArray())
        {
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
            return new RouteInfo(GetString(route, "dev"), ParseOptionalAddress(GetString(route, "gateway")),
                ParseOptionalAddress(GetString(route, "prefsrc")), mtu, GetString(route, "type") ?? "unicast");
        }
        return null;
    }

    /// <summary>`ethtool -k IF`: GRO and LRO as "generic-receive-offload: on" / "large-receive-offload: off [fixed]".</summary>
    public static OffloadFeatures ParseOffloads(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        OffloadState? gro = null;
        OffloadState? lro = null;
        foreach (string rawLine in text.Split('\n'))
        {
            string line = rawLine.Trim();
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }
            string name = line[..colon];
            string[] words = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0 || words[0] is not ("on" or "off"))
            {
                continue;
            }
            var state = new OffloadState(words[0] == "on", words.Contains("[fixed]"));
            if (name == "generic-receive-offload")
            {
                gro = state;
            }
            else if (name == "large-receive-offload")
            {
                lro = state;
            }
        }
        return new OffloadFeatures(gro, lro);
    }

    /// <summary>The CapEff mask from /proc/self/status; 0 when absent.</summary>
    public static ulong ParseEffectiveCapabilities(string status)
    {
        ArgumentNullException.ThrowIfNull(status);
        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith("CapEff:", StringComparison.Ordinal) &&
                ulong.TryParse(line.AsSpan(7).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong mask))
            {
                return mask;
            }
        }
        return 0;
    }

    /// <summary>/proc/net/arp: the MAC of <paramref name="address"/> on <paramref name="device"/> when the entry is complete (flag 0x2).</summary>
    public static string? FindCompleteArpEntry(string table, uint address, string device)
    {
        ArgumentNullException.ThrowIfNull(table);
        string wanted = Ipv4Address.Format(address);
        foreach (string line in table.Split('\n').Skip(1))
        {
            string[] columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // IP address, HW type, Flags, HW address, Mask, Device
            if (columns.Length < 6 || columns[0] != wanted || columns[5] != device)
            {
                continue;
            }
            string flags = columns[2].StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? columns[2][2..] : columns[2];
            if (int.TryParse(flags, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value) && (value & 0x2) != 0)
            {
                return columns[3];
            }
        }
        return null;
    }

    private static JsonDocument ParseJson(string json, string what)
    {
        try
        {
            JsonDocument document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Array)
            {
                document.Dispose();
                throw new HostException($"{what}: expected a JSON array");
            }
            return document;
        }
        catch (JsonException e)
        {
            throw new HostException($"{what}: unreadable output ({e.Message})", e);
        }
    }

    private static string? GetString(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static InetAddress? ParseOptionalAddress(string? text) =>
        text != null && InetAddress.TryParse(text, out InetAddress address) ? address : (InetAddress?)null;
}
