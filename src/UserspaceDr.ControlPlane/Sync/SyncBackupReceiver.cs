using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.ControlPlane.Sync;

/// <summary>A sync daemon's settings with every default filled in, as the kernel reports them (ipvsadm -L --daemon).</summary>
public sealed record SyncDaemonConfig(string Interface, byte SyncId, IPAddress Group, ushort Port, byte Ttl, int MaxLength)
{
    /// <summary>IPVS's group (IP_VS_SYNC_GROUP) and port (IP_VS_SYNC_PORT).</summary>
    public static readonly IPAddress DefaultGroup = IPAddress.Parse("224.0.0.81");
    public const ushort DefaultPort = 8848;

    /// <summary>
    /// The settings a daemon on <paramref name="interfaceName"/> gets for what was not given (start_sync_thread):
    /// group 224.0.0.81, port 8848, TTL 1, sync_maxlen = MTU − headers for a master, clamp(MTU, 1500, 65535) − headers
    /// for a backup, the headers being UDP's and the group's IP header (28 bytes for an IPv4 group, 48 for IPv6).
    /// Throws <see cref="ArgumentException"/> for an interface that does not exist.
    /// </summary>
    public static SyncDaemonConfig Complete(string interfaceName, bool master, byte syncId, IPAddress? group, ushort port, byte ttl, int maxLength)
    {
        NetworkInterface device = Find(interfaceName);
        group ??= DefaultGroup;
        int mtu = device.GetIPProperties().GetIPv4Properties()?.Mtu ?? device.GetIPProperties().GetIPv6Properties()?.Mtu ?? 1500;
        int headers = group.AddressFamily == AddressFamily.InterNetworkV6 ? 48 : 28;
        int defaultLength = (master ? mtu : Math.Clamp(mtu, 1500, 65535)) - headers;
        return new SyncDaemonConfig(interfaceName, syncId, group, port == 0 ? DefaultPort : port,
            ttl == 0 ? (byte)1 : ttl, maxLength != 0 ? maxLength : defaultLength);
    }

    /// <summary>True for an IPv6 group (ff02::/16 and the rest): the daemon's sockets are then IPv6 ones.</summary>
    public bool IsIpv6 => Group.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>The interface's index for the group's family (IP_MULTICAST_IF/IPV6_MULTICAST_IF, the membership).</summary>
    public int InterfaceIndex(NetworkInterface device)
    {
        ArgumentNullException.ThrowIfNull(device);
        return IsIpv6
            ? device.GetIPProperties().GetIPv6Properties()?.Index ?? throw new ArgumentException($"{Interface} has no IPv6")
            : device.GetIPProperties().GetIPv4Properties()?.Index ?? throw new ArgumentException($"{Interface} has no IPv4");
    }

    /// <summary>The interface named <paramref name="interfaceName"/>; <see cref="ArgumentException"/> when there is none.</summary>
    public static NetworkInterface Find(string interfaceName) =>
        NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == interfaceName)
        ?? throw new ArgumentException($"no interface named '{interfaceName}'", nameof(interfaceName));
}

/// <summary>
/// The backup half of IPVS's connection sync (ip_vs_sync.c sync_thread_backup, make_receive_sock): a UDP socket bound
/// to the group and port on the sync interface, member of the group there; each message read by
/// <see cref="SyncMessageReader"/> and its connections handed to the data plane (<c>apply</c>), which enters them in the
/// right worker's table (IPv4 and IPv6 entries alike). Everything it refuses is counted by reason and reported in the
/// log, never thrown.
/// </summary>
public sealed partial class SyncBackupReceiver : IAsyncDisposable
{
    private readonly Func<IReadOnlyList<SyncedConnection>, int> _apply;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly long[] _entryDrops = new long[Enum.GetValues<SyncEntryDrop>().Length];
    private readonly long[] _messages = new long[Enum.GetValues<SyncMessageOutcome>().Length];
    private Socket? _socket;
    private Task? _loop;
    private long _entries;
    private long _refused;

    public SyncBackupReceiver(SyncDaemonConfig config, Func<IReadOnlyList<SyncedConnection>, int> apply, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(apply);
        ArgumentNullException.ThrowIfNull(log);
        Config = config;
        _apply = apply;
        _log = log;
    }

    public SyncDaemonConfig Config { get; }

    /// <summary>Messages received, by what became of them.</summary>
    public long Messages(SyncMessageOutcome outcome) => Interlocked.Read(ref _messages[(int)outcome]);

    /// <summary>Entries refused, by reason.</summary>
    public long EntryDrops(SyncEntryDrop drop) => Interlocked.Read(ref _entryDrops[(int)drop]);

    /// <summary>Entries read and handed to the data plane.</summary>
    public long Entries => Interlocked.Read(ref _entries);

    /// <summary>Opens the socket (errors as <see cref="SocketException"/>/<see cref="ArgumentException"/>) and starts receiving.</summary>
    public void Start()
    {
        NetworkInterface device = SyncDaemonConfig.Find(Config.Interface);
        int index = Config.InterfaceIndex(device);
        var socket = new Socket(Config.Group.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            // SO_BINDTODEVICE: only the sync interface's datagrams, as the kernel binds sk_bound_dev_if.
            socket.SetRawSocketOption(1, 25, System.Text.Encoding.ASCII.GetBytes(Config.Interface + "\0"));
            if (Config.IsIpv6)
            {
                socket.Bind(new IPEndPoint(new IPAddress(Config.Group.GetAddressBytes(), index), Config.Port));
                socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.AddMembership, new IPv6MulticastOption(Config.Group, index));
            }
            else
            {
                socket.Bind(new IPEndPoint(Config.Group, Config.Port));
                socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.AddMembership, new MulticastOption(Config.Group, index));
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _socket = socket;
        _loop = Task.Run(ReceiveLoopAsync);
        Started(_log, Config.Interface, Config.SyncId, Config.Group.ToString(), Config.Port);
    }

    private async Task ReceiveLoopAsync()
    {
        byte[] buffer = new byte[65535];
        var entries = new List<SyncEntry>();
        var connections = new List<SyncedConnection>();
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            int length;
            try
            {
                length = await _socket!.ReceiveAsync(buffer, SocketFlags.None, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (SocketException e)
            {
                ReceiveFailed(_log, e.Message);
                continue;
            }
            entries.Clear();
            connections.Clear();
            SyncReadResult result = SyncMessageReader.Read(buffer.AsSpan(0, length), Config.SyncId, entries, _entryDrops);
            Interlocked.Increment(ref _messages[(int)result.Outcome]);
            foreach (SyncEntry entry in entries)
            {
                connections.Add(ToConnection(entry));
            }
            Interlocked.Add(ref _entries, connections.Count);
            if (connections.Count > 0)
            {
                Interlocked.Add(ref _refused, _apply(connections));
            }
        }
    }

    /// <summary>A version 1 entry as the data plane's table takes it.</summary>
    public static SyncedConnection ToConnection(SyncEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return new SyncedConnection(entry.Protocol, entry.IsTemplate, (entry.Flags & SyncConnectionFlags.Inactive) != 0, entry.State,
            InetAddress.FromIPAddress(entry.ClientAddress), entry.ClientPort, InetAddress.FromIPAddress(entry.VirtualAddress), entry.VirtualPort,
            InetAddress.FromIPAddress(entry.DestinationAddress), entry.DestinationPort, entry.TimeoutSeconds)
        {
            FirewallMark = entry.FirewallMark,
        };
    }

    /// <summary>"messages read=12 other-syncid=1; entries 480, skipped: unknown-mandatory-option=2".</summary>
    public string Totals()
    {
        var parts = new List<string>();
        foreach (SyncMessageOutcome outcome in Enum.GetValues<SyncMessageOutcome>())
        {
            if (Messages(outcome) != 0)
            {
                parts.Add($"{outcome}={Messages(outcome)}");
            }
        }
        var drops = new List<string>();
        foreach (SyncEntryDrop drop in Enum.GetValues<SyncEntryDrop>())
        {
            if (EntryDrops(drop) != 0)
            {
                drops.Add($"{SyncMessageReader.Name(drop)}={EntryDrops(drop)}");
            }
        }
        if (Interlocked.Read(ref _refused) != 0)
        {
            drops.Add($"inbox-full={Interlocked.Read(ref _refused)}");
        }
        return $"messages {string.Join(' ', parts)}; entries {Entries}{(drops.Count == 0 ? "" : ", skipped: " + string.Join(' ', drops))}";
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        _socket?.Dispose();
        _stop.Dispose();
        Stopped(_log, Totals());
    }

    [LoggerMessage(EventId = 120, Level = LogLevel.Information, Message = "backup sync daemon on {Interface} (syncid {SyncId}, group {Group}:{Port}) receiving")]
    private static partial void Started(ILogger logger, string @interface, byte syncId, string group, ushort port);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "backup sync daemon: receive failed: {Message}")]
    private static partial void ReceiveFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 122, Level = LogLevel.Information, Message = "backup sync daemon stopped; {Totals}")]
    private static partial void Stopped(ILogger logger, string totals);
}
