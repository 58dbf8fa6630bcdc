using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.ControlPlane.Sync;

/// <summary>
/// The master half of IPVS's connection sync (ip_vs_sync.c sync_thread_master, make_send_sock): a UDP socket bound to
/// the sync interface's primary IPv4 address, multicast out of that interface with the daemon's TTL, loopback off,
/// connected to the group and port. Every <see cref="SendDelay"/> it collects what the workers posted
/// (<c>drain</c>), packs it into version 1 messages of at most sync_maxlen (<see cref="SyncMessageWriter"/>), sends
/// each full message at once and a partial one once its first entry has waited <see cref="FlushTime"/>.
/// </summary>
public sealed partial class SyncMasterSender : IAsyncDisposable
{
    /// <summary>IPVS_SYNC_SEND_DELAY: how often queued entries are collected.</summary>
    public static readonly TimeSpan SendDelay = TimeSpan.FromMilliseconds(20);

    /// <summary>A partial message waits at most this long (within IPVS_SYNC_FLUSH_TIME, 2 s).</summary>
    public static readonly TimeSpan FlushTime = TimeSpan.FromSeconds(1);

    private readonly Func<List<SyncedConnection>, int> _drain;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SyncMessageWriter _writer;
    private Socket? _socket;
    private Task? _loop;
    private long _messages;
    private long _entries;
    private long _sendErrors;

    public SyncMasterSender(SyncDaemonConfig config, Func<List<SyncedConnection>, int> drain, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(drain);
        ArgumentNullException.ThrowIfNull(log);
        Config = config;
        _drain = drain;
        _log = log;
        _writer = new SyncMessageWriter(config.SyncId, Math.Max(config.MaxLength, SyncMessageWriter.HeaderLength + SyncMessageWriter.Ipv6EntryLength + SyncMessageWriter.SequenceOptionLength));
    }

    public SyncDaemonConfig Config { get; }

    public long MessagesSent => Interlocked.Read(ref _messages);

    public long EntriesSent => Interlocked.Read(ref _entries);

    /// <summary>Opens the socket (errors as <see cref="SocketException"/>/<see cref="ArgumentException"/>) and starts sending.</summary>
    public void Start()
    {
        NetworkInterface device = SyncDaemonConfig.Find(Config.Interface);
        int index = Config.InterfaceIndex(device);
        AddressFamily family = Config.Group.AddressFamily;
        // The interface's first address of the group's family (IPv6: its link-local one first, the scope of ff02::).
        IPAddress source = device.GetIPProperties().UnicastAddresses.Select(a => a.Address).Where(a => a.AddressFamily == family)
            .OrderBy(a => a.IsIPv6LinkLocal ? 0 : 1).FirstOrDefault()
            ?? throw new ArgumentException($"{Config.Interface} has no {(Config.IsIpv6 ? "IPv6" : "IPv4")} address to send sync from");
        var socket = new Socket(family, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Bind(new IPEndPoint(source, 0));
            if (Config.IsIpv6)
            {
                socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastInterface, index);
                socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastTimeToLive, (int)Config.Ttl);
                socket.SetSocketOption(SocketOptionLevel.IPv6, SocketOptionName.MulticastLoopback, false);
                socket.Connect(new IPEndPoint(new IPAddress(Config.Group.GetAddressBytes(), index), Config.Port));
            }
            else
            {
                socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastInterface, IPAddress.HostToNetworkOrder(index));
                socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastTimeToLive, (int)Config.Ttl);
                socket.SetSocketOption(SocketOptionLevel.IP, SocketOptionName.MulticastLoopback, false);
                socket.DontFragment = false; // IP_PMTUDISC_DONT: fragments allowed if the MTU shrinks
                socket.Connect(new IPEndPoint(Config.Group, Config.Port));
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        _socket = socket;
        _loop = Task.Run(SendLoopAsync);
        Started(_log, Config.Interface, source.ToString(), Config.SyncId, Config.Group.ToString(), Config.Port);
    }

    private async Task SendLoopAsync()
    {
        var waiting = new List<SyncedConnection>();
        long firstQueuedAt = 0;
        CancellationToken stop = _stop.Token;
        while (true)
        {
            bool stopping = stop.IsCancellationRequested;
            waiting.Clear();
            _drain(waiting);
            foreach (SyncedConnection connection in waiting)
            {
                SyncEntry entry = ToEntry(connection);
                if (!_writer.TryAppend(entry))
                {
                    Send();
                    _writer.TryAppend(entry);
                }
                if (_writer.Count == 1)
                {
                    firstQueuedAt = Stopwatch.GetTimestamp();
                }
            }
            if (_writer.Count > 0 && (stopping || Stopwatch.GetElapsedTime(firstQueuedAt) >= FlushTime))
            {
                Send();
            }
            if (stopping)
            {
                return;
            }
            try
            {
                await Task.Delay(SendDelay, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // One more round: what was posted before the stop is still sent.
            }
        }
    }

    private void Send()
    {
        try
        {
            _socket!.Send(_writer.Message);
            Interlocked.Increment(ref _messages);
            Interlocked.Add(ref _entries, _writer.Count);
        }
        catch (SocketException e)
        {
            if (Interlocked.Increment(ref _sendErrors) == 1)
            {
                SendFailed(_log, e.Message);
            }
        }
        _writer.Reset();
    }

    /// <summary>What the master sends for a connection of its table (ip_vs_sync_conn): flags as the kernel keeps them.</summary>
    public static SyncEntry ToEntry(in SyncedConnection connection)
    {
        var flags = (SyncConnectionFlags)(uint)connection.Method;
        if (connection.Method != ForwardingMethod.Masquerade || connection.IsTemplate)
        {
            flags |= SyncConnectionFlags.NoOutput;
        }
        if (connection.IsInactive)
        {
            flags |= SyncConnectionFlags.Inactive;
        }
        if (connection.IsTemplate)
        {
            flags |= SyncConnectionFlags.Template;
        }
        return new SyncEntry(connection.Protocol, flags, connection.State, connection.ClientAddress.ToIPAddress(), connection.ClientPort,
            connection.VirtualAddress.ToIPAddress(), connection.VirtualPort, connection.DestAddress.ToIPAddress(),
            connection.DestPort, connection.FirewallMark, connection.TimeoutSeconds);
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
        Stopped(_log, MessagesSent, EntriesSent, Interlocked.Read(ref _sendErrors));
    }

    [LoggerMessage(EventId = 123, Level = LogLevel.Information, Message = "master sync daemon on {Interface} (from {Source}, syncid {SyncId}, to {Group}:{Port}) sending")]
    private static partial void Started(ILogger logger, string @interface, string source, byte syncId, string group, ushort port);

    [LoggerMessage(EventId = 124, Level = LogLevel.Warning, Message = "master sync daemon: send failed: {Message} (further failures are counted)")]
    private static partial void SendFailed(ILogger logger, string message);

    [LoggerMessage(EventId = 125, Level = LogLevel.Information, Message = "master sync daemon stopped; sent {Messages} message(s), {Entries} entries, {Errors} send error(s)")]
    private static partial void Stopped(ILogger logger, long messages, long entries, long errors);
}
