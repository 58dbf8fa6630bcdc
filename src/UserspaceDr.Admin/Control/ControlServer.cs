using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;

namespace UserspaceDr.Admin.Control;

/// <summary>Limits of the control socket.</summary>
public sealed record ControlServerOptions
{
    /// <summary>A connection with no request under way is closed after this long.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A request must arrive whole within this long of its first byte (a stalled client is cut off).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Connections served at once; more are closed as soon as they are accepted.</summary>
    public int MaxConnections { get; init; } = 32;

    /// <summary>The only peer user id served (SO_PEERCRED); root.</summary>
    public uint AllowedUid { get; init; }
}

/// <summary>
/// The daemon's control socket: a Unix domain stream socket, mode 0600 and owned by the daemon's user (root),
/// that refuses any peer whose SO_PEERCRED uid is not <see cref="ControlServerOptions.AllowedUid"/>. Each
/// connection reads frames through a <see cref="PipeReader"/> (<see cref="ControlProtocol"/>); requests from all
/// connections are handled one at a time. A malformed, oversized or stalled request gets an error reply (when the
/// peer can still take one) and its connection is closed; nothing it sends reaches the handler, and no other
/// connection waits on it (reads are never under the one-at-a-time gate).
/// </summary>
public sealed partial class ControlServer : IDisposable
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    private readonly Func<ControlRequest, ControlResponse> _handler;
    private readonly ControlServerOptions _options;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private readonly Lock _connectionsLock = new();
    private readonly HashSet<Task> _connections = [];
    private Socket? _listener;
    private Task? _acceptLoop;
    private int _connectionCount;
    private bool _disposed;

    public ControlServer(string path, Func<ControlRequest, ControlResponse> handler, ILogger log, ControlServerOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(handler);
        ArgumentNullException.ThrowIfNull(log);
        Path = path;
        _handler = handler;
        _log = log;
        _options = options ?? new ControlServerOptions();
    }

    public string Path { get; }

    /// <summary>
    /// Binds and listens. A socket file left by a process that is gone is replaced; one that a live process still
    /// answers on, or a path that is not a socket, is refused with <see cref="InvalidOperationException"/>.
    /// </summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        string? directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path));
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("the control socket needs a Unix system (modes, SO_PEERCRED)");
        }
        if (directory is not null && !Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        RemoveStaleSocket();
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(Path));
            // The mode is set before listen(): until then no client can connect, so none ever sees a wider mode.
            // (SO_PEERCRED below is the real gate; the mode keeps other users from even connecting.)
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(64);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        _listener = listener;
        _acceptLoop = Task.Run(AcceptLoopAsync);
        Log.Listening(_log, Path);
    }

    private void RemoveStaleSocket()
    {
        if (!File.Exists(Path))
        {
            return;
        }
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(Path));
                throw new InvalidOperationException($"another process already serves the control socket {Path}");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: a leftover socket, or a path that is not a socket at all (checked next).
            }
        }
        try
        {
            // open(2) of a socket fails (ENXIO); anything that opens is a file udr must not delete.
            using FileStream file = File.OpenRead(Path);
        }
        catch (IOException)
        {
            File.Delete(Path);
            return;
        }
        throw new InvalidOperationException($"{Path} exists and is not a socket");
    }

    private async Task AcceptLoopAsync()
    {
        CancellationToken stop = _stop.Token;
        while (!stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(stop).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (stop.IsCancellationRequested)
                {
                    return;
                }
                Log.AcceptFailed(_log, e.Message);
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
                continue;
            }
            if (Interlocked.Increment(ref _connectionCount) > _options.MaxConnections)
            {
                Interlocked.Decrement(ref _connectionCount);
                Log.TooManyConnections(_log, _options.MaxConnections);
                RefuseBusy(client);
                continue;
            }
            Task connection = ServeConnectionAsync(client);
            lock (_connectionsLock)
            {
                _connections.Add(connection);
            }
            _ = connection.ContinueWith(done =>
            {
                lock (_connectionsLock)
                {
                    _connections.Remove(done);
                }
                Interlocked.Decrement(ref _connectionCount);
            }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>A short reply into a fresh socket's empty send buffer (never blocks), then the connection is closed.</summary>
    private void RefuseBusy(Socket client)
    {
        using (client)
        {
            var reply = new ArrayBufferWriter<byte>();
            ControlProtocol.WriteResponse(reply, ControlResponse.ProtocolError(
                $"busy: {_options.MaxConnections} connections to the control socket are open; try again"));
            try
            {
                client.Blocking = false;
                client.Send(reply.WrittenSpan);
                client.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // The peer is already gone.
            }
        }
    }

    private async Task ServeConnectionAsync(Socket socket)
    {
        await Task.Yield(); // off the accept loop
        CancellationToken stop = _stop.Token;
        try
        {
            using (socket)
            {
                using var stream = new NetworkStream(socket, ownsSocket: false);
                PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
                PipeWriter writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
                try
                {
                    if (PeerUid(socket) is not uint uid || uid != _options.AllowedUid)
                    {
                        Log.PeerRefused(_log, PeerUid(socket)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown");
                        await ReplyAsync(writer, ControlResponse.ProtocolError(
                            "permission denied: the control socket serves root only"), stop).ConfigureAwait(false);
                        return;
                    }
                    await ServeRequestsAsync(reader, writer, stop).ConfigureAwait(false);
                }
                finally
                {
                    await reader.CompleteAsync().ConfigureAwait(false);
                    await writer.CompleteAsync().ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
        {
            // The peer went away, or the server is stopping: this connection ends, nothing else is affected.
        }
    }

    private async Task ServeRequestsAsync(PipeReader reader, PipeWriter writer, CancellationToken stop)
    {
        long deadline = 0; // when the request under way must be whole; 0 = none under way
        while (true)
        {
            TimeSpan wait = deadline == 0
                ? _options.IdleTimeout
                : TimeSpan.FromMilliseconds(Math.Max(1, deadline - Environment.TickCount64));
            ReadResult result;
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop))
            {
                timeout.CancelAfter(wait);
                try
                {
                    result = await reader.ReadAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    if (deadline != 0)
                    {
                        Log.RequestRefused(_log, "incomplete request (timed out)");
                        await ReplyAsync(writer, ControlResponse.ProtocolError("incomplete request (timed out)"), stop).ConfigureAwait(false);
                    }
                    return;
                }
            }
            ReadOnlySequence<byte> buffer = result.Buffer;
            ControlFrameStatus status = ControlProtocol.TryReadRequest(ref buffer, out ControlRequest? request, out string? error);
            switch (status)
            {
                case ControlFrameStatus.Complete:
                    reader.AdvanceTo(buffer.Start);
                    deadline = 0;
                    ControlResponse response = await HandleAsync(request!, stop).ConfigureAwait(false);
                    await ReplyAsync(writer, response, stop).ConfigureAwait(false);
                    continue;
                case ControlFrameStatus.TooLarge:
                case ControlFrameStatus.Malformed:
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    Log.RequestRefused(_log, error!);
                    await ReplyAsync(writer, ControlResponse.ProtocolError("malformed request: " + error), stop).ConfigureAwait(false);
                    return;
                default:
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    if (result.IsCompleted)
                    {
                        if (!buffer.IsEmpty)
                        {
                            Log.RequestRefused(_log, "incomplete request (connection closed)");
                            await ReplyAsync(writer, ControlResponse.ProtocolError("incomplete request"), stop).ConfigureAwait(false);
                        }
                        return;
                    }
                    if (deadline == 0 && !buffer.IsEmpty)
                    {
                        deadline = Environment.TickCount64 + (long)_options.RequestTimeout.TotalMilliseconds;
                    }
                    continue;
            }
        }
    }

    private async Task<ControlResponse> HandleAsync(ControlRequest request, CancellationToken stop)
    {
        await _oneAtATime.WaitAsync(stop).ConfigureAwait(false);
        try
        {
            return _handler(request);
        }
#pragma warning disable CA1031 // a failing command must answer its client and leave the daemon and other clients alone
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.HandlerFailed(_log, e);
            return new ControlResponse(1, "", $"udr: internal error: {e.Message}\n");
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private static async Task ReplyAsync(PipeWriter writer, ControlResponse response, CancellationToken stop)
    {
        ControlProtocol.WriteResponse(writer, response);
        await writer.FlushAsync(stop).ConfigureAwait(false);
    }

    /// <summary>The peer's uid from SO_PEERCRED (struct ucred: pid, uid, gid); null when the kernel does not say.</summary>
    private static uint? PeerUid(Socket socket)
    {
        Span<byte> credentials = stackalloc byte[12];
        try
        {
            int length = socket.GetRawSocketOption(SolSocket, SoPeerCred, credentials);
            return length >= 8 ? MemoryMarshal.Read<uint>(credentials[4..]) : null; // native byte order
        }
        catch (SocketException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _stop.Cancel();
        _listener?.Dispose();
        Task[] pending;
        lock (_connectionsLock)
        {
            pending = [.. _connections];
        }
        try
        {
            Task.WaitAll([.. pending, _acceptLoop ?? Task.CompletedTask], TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
            // Connections end with their own exceptions handled; nothing to add at shutdown.
        }
        if (_listener is not null)
        {
            try
            {
                File.Delete(Path);
            }
            catch (IOException)
            {
                // Left behind; the next start replaces a stale socket.
            }
        }
        _stop.Dispose();
        _oneAtATime.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "control socket listening on {Path} (mode 0600, root only)")]
        public static partial void Listening(ILogger logger, string path);

        [LoggerMessage(Level = LogLevel.Warning, Message = "control socket: refused a peer with uid {Uid}")]
        public static partial void PeerRefused(ILogger logger, string uid);

        [LoggerMessage(Level = LogLevel.Warning, Message = "control socket: refused a request: {Reason}")]
        public static partial void RequestRefused(ILogger logger, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "control socket: more than {Max} connections; closed a new one")]
        public static partial void TooManyConnections(ILogger logger, int max);

        [LoggerMessage(Level = LogLevel.Warning, Message = "control socket: accept failed: {Reason}")]
        public static partial void AcceptFailed(ILogger logger, string reason);

        [LoggerMessage(Level = LogLevel.Error, Message = "control socket: a command failed")]
        public static partial void HandlerFailed(ILogger logger, Exception exception);
    }
}
