using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;

namespace UserspaceDr.Admin.Control;

/// <summary>The control socket could not be reached, or it did not answer with a response.</summary>
public sealed class ControlClientException : Exception
{
    public ControlClientException(string message) : base(message)
    {
    }

    public ControlClientException(string message, Exception inner) : base(message, inner)
    {
    }

    public ControlClientException()
    {
    }
}

/// <summary>The client side of <see cref="ControlServer"/>: one request, one response, over one connection.</summary>
public static class ControlClient
{
    /// <summary>Default path of the daemon's control socket.</summary>
    public const string DefaultPath = "/run/udr/udr.sock";

    public static async Task<ControlResponse> SendAsync(string path, ControlRequest request, TimeSpan timeout)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(request);
        var encoded = new ArrayBufferWriter<byte>();
        ControlProtocol.WriteRequest(encoded, request);
        if (encoded.WrittenCount - 4 > ControlProtocol.MaxRequestBytes)
        {
            throw new ControlClientException(
                $"the request is {encoded.WrittenCount - 4} bytes, over the control socket's limit of {ControlProtocol.MaxRequestBytes} (-R input too long?)");
        }
        if (!File.Exists(path))
        {
            throw new ControlClientException($"cannot connect to {path}: no such socket (is `udr run` running, with --control {path}?)");
        }
        using var cancel = new CancellationTokenSource(timeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancel.Token).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new ControlClientException($"cannot connect to {path}: {e.Message} (is `udr run` running, with --control {path}?)", e);
        }
        using var stream = new NetworkStream(socket, ownsSocket: false);
        PipeWriter writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
        PipeReader reader = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
        try
        {
            await writer.WriteAsync(encoded.WrittenMemory, cancel.Token).ConfigureAwait(false);
            while (true)
            {
                ReadResult result = await reader.ReadAsync(cancel.Token).ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = result.Buffer;
                ControlFrameStatus status = ControlProtocol.TryReadResponse(ref buffer, out ControlResponse? response, out string? error);
                if (status == ControlFrameStatus.Complete)
                {
                    reader.AdvanceTo(buffer.Start);
                    return response!;
                }
                if (status != ControlFrameStatus.Incomplete)
                {
                    throw new ControlClientException($"bad response from {path}: {error}");
                }
                if (result.IsCompleted)
                {
                    throw new ControlClientException($"{path} closed the connection without an answer");
                }
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (OperationCanceledException e)
        {
            throw new ControlClientException($"no answer from {path} within {timeout.TotalSeconds:0.#} s", e);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new ControlClientException($"lost the connection to {path}: {e.Message}", e);
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await writer.CompleteAsync().ConfigureAwait(false);
        }
    }

    public static ControlResponse Send(string path, ControlRequest request, TimeSpan timeout) =>
        SendAsync(path, request, timeout).GetAwaiter().GetResult();
}
