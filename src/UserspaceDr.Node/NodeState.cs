using System.Text.Json;
using System.Text.Json.Serialization;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node.Plans;

namespace UserspaceDr.Node;

/// <summary>A sysctl that setup changed: the value it had before the first setup, and the value setup set.</summary>
public sealed record SysctlRecord(string Path, string Previous, string Applied);

/// <summary>An address that setup added (it was not there before).</summary>
public sealed record AddressRecord(string Device, string Address, int PrefixLength);

/// <summary>A file that setup wrote; <see cref="Previous"/> is its text before, null when setup created it.</summary>
public sealed record FileRecord(string Path, string? Previous);

/// <summary>
/// What `udr node setup` changed on this host, so that `udr node teardown` restores exactly the earlier values and
/// removes exactly what was added. A second setup merges into it: the first recorded "previous" value wins.
/// </summary>
public sealed record NodeState
{
    public const int CurrentVersion = 1;
    public const string DefaultPath = "/run/udr/node-state.json";

    public int Version { get; init; } = CurrentVersion;

    public string Mode { get; init; } = "dr";

    public IReadOnlyList<string> Interfaces { get; init; } = [];

    public IReadOnlyList<string> Vips { get; init; } = [];

    /// <summary>In the order they were applied; teardown walks them backwards.</summary>
    public IReadOnlyList<SysctlRecord> Sysctls { get; init; } = [];

    public IReadOnlyList<AddressRecord> Addresses { get; init; } = [];

    public IReadOnlyList<FileRecord> Files { get; init; } = [];

    [JsonIgnore]
    public bool IsEmpty => Sysctls.Count == 0 && Addresses.Count == 0 && Files.Count == 0;

    /// <summary>This state with <paramref name="changes"/> (just applied) recorded; earlier "previous" values are kept.</summary>
    public NodeState Merge(IEnumerable<NodeChange> changes, string mode, string networkInterface, IEnumerable<InetAddress> vips)
    {
        ArgumentNullException.ThrowIfNull(changes);
        var sysctls = Sysctls.ToList();
        var addresses = Addresses.ToList();
        var files = Files.ToList();
        foreach (NodeChange change in changes)
        {
            switch (change)
            {
                case SysctlChange sysctl:
                    int index = sysctls.FindIndex(s => s.Path == sysctl.Key.RelativePath);
                    if (index >= 0)
                    {
                        sysctls[index] = sysctls[index] with { Applied = sysctl.Value };
                    }
                    else
                    {
                        sysctls.Add(new SysctlRecord(sysctl.Key.RelativePath, sysctl.Previous, sysctl.Value));
                    }
                    break;
                case AddressAddChange add:
                    var record = new AddressRecord(add.Device, add.Address.ToString(), add.PrefixLength);
                    if (!addresses.Contains(record))
                    {
                        addresses.Add(record);
                    }
                    break;
                case FileWriteChange file:
                    if (!files.Exists(f => f.Path == file.Path))
                    {
                        files.Add(new FileRecord(file.Path, file.Previous));
                    }
                    break;
                default:
                    throw new InvalidOperationException($"setup does not record {change.GetType().Name}");
            }
        }
        return this with
        {
            Mode = mode,
            Interfaces = [.. Interfaces.Append(networkInterface).Distinct()],
            Vips = [.. Vips.Concat(vips.Select(v => v.ToString())).Distinct()],
            Sysctls = sysctls,
            Addresses = addresses,
            Files = files,
        };
    }

    public string ToJson() => JsonSerializer.Serialize(this, NodeStateJsonContext.Default.NodeState) + "\n";

    public static NodeState FromJson(string json, string path)
    {
        NodeState? state;
        try
        {
            state = JsonSerializer.Deserialize(json, NodeStateJsonContext.Default.NodeState);
        }
        catch (JsonException e)
        {
            throw new NodeException($"state file {path} is not readable JSON ({e.Message}); not touching anything", e);
        }
        if (state == null || state.Version != CurrentVersion)
        {
            throw new NodeException($"state file {path} has an unknown format (version {state?.Version}); not touching anything");
        }
        foreach (SysctlRecord sysctl in state.Sysctls)
        {
            SysctlKey.FromRelativePath(sysctl.Path);
        }
        foreach (AddressRecord address in state.Addresses)
        {
            if (!InetAddress.TryParse(address.Address, out InetAddress parsed) || address.PrefixLength < 0 || address.PrefixLength > parsed.MaxPrefixLength)
            {
                throw new NodeException($"state file {path}: '{address.Address}/{address.PrefixLength}' is not an address");
            }
        }
        return state;
    }

    /// <summary>Reads the state file; an empty state when there is none.</summary>
    public static NodeState Load(IHostSystem host, string path)
    {
        ArgumentNullException.ThrowIfNull(host);
        string? json = host.ReadFile(path);
        return json == null ? new NodeState() : FromJson(json, path);
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NodeState))]
internal sealed partial class NodeStateJsonContext : JsonSerializerContext;
