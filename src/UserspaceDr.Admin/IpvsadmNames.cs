using System.Globalization;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// What ipvsadm asks the C library when -n is not given: gethostbyaddr for addresses, getservbyport for ports.
/// Null = no name (the number is printed).
/// </summary>
public interface IIpvsadmNames
{
    string? HostName(InetAddress address);

    string? ServiceName(ushort port, ServiceProtocol protocol);
}

/// <summary>No names at all: every address and port prints as a number (what -n does anyway).</summary>
public sealed class NumericNames : IIpvsadmNames
{
    public static readonly NumericNames Instance = new();

    public string? HostName(InetAddress address) => null;

    public string? ServiceName(ushort port, ServiceProtocol protocol) => null;
}

/// <summary>
/// Names from the files the C library reads first: /etc/hosts for addresses (no DNS: a daemon must never block on a
/// resolver) and /etc/services for ports. Read when created; make one per request to see edits.
/// </summary>
public sealed class FileNames : IIpvsadmNames
{
    private readonly Dictionary<InetAddress, string> _hosts = [];
    private readonly Dictionary<(ushort, ServiceProtocol), string> _services = [];

    public FileNames(string hostsPath = "/etc/hosts", string servicesPath = "/etc/services")
    {
        foreach (string[] fields in Lines(hostsPath))
        {
            // "address canonical-name aliases...": the first line for an address wins, as with gethostbyaddr.
            if (fields.Length >= 2 && InetAddress.TryParse(fields[0], out InetAddress address))
            {
                _hosts.TryAdd(address, fields[1]);
            }
        }
        foreach (string[] fields in Lines(servicesPath))
        {
            // "name port/protocol aliases...".
            if (fields.Length < 2)
            {
                continue;
            }
            int slash = fields[1].IndexOf('/', StringComparison.Ordinal);
            if (slash <= 0 || !ushort.TryParse(fields[1].AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out ushort port))
            {
                continue;
            }
            ServiceProtocol? protocol = fields[1][(slash + 1)..] switch
            {
                "tcp" => ServiceProtocol.Tcp,
                "udp" => ServiceProtocol.Udp,
                _ => null,
            };
            if (protocol is ServiceProtocol known)
            {
                _services.TryAdd((port, known), fields[0]);
            }
        }
    }

    public string? HostName(InetAddress address) => _hosts.GetValueOrDefault(address);

    public string? ServiceName(ushort port, ServiceProtocol protocol) => _services.GetValueOrDefault((port, protocol));

    private static IEnumerable<string[]> Lines(string path)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            yield break;
        }
        foreach (string line in lines)
        {
            int comment = line.IndexOf('#', StringComparison.Ordinal);
            string content = comment >= 0 ? line[..comment] : line;
            string[] fields = content.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 0)
            {
                yield return fields;
            }
        }
    }
}
