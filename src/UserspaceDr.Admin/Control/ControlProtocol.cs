using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;

namespace UserspaceDr.Admin.Control;

/// <summary>One `udr adm` invocation: the program name for messages, the ipvsadm arguments, and what -R reads.</summary>
public sealed record ControlRequest(string Program, ImmutableArray<string> Arguments, string Stdin = "");

/// <summary>The answer: ipvsadm's exit status and what it printed.</summary>
public sealed record ControlResponse(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>A failure of the socket protocol itself (not an ipvsadm error).</summary>
    public static ControlResponse ProtocolError(string message) => new(ControlProtocol.ProtocolErrorExitCode, "", "udr: " + message + "\n");
}

/// <summary>How far a buffer holds a frame.</summary>
public enum ControlFrameStatus
{
    /// <summary>Not all of the frame is here yet; nothing was consumed.</summary>
    Incomplete,
    /// <summary>A frame was read and consumed.</summary>
    Complete,
    /// <summary>The length prefix announces more than the limit; nothing was consumed.</summary>
    TooLarge,
    /// <summary>The frame is whole but not a valid message.</summary>
    Malformed,
}

/// <summary>
/// The control socket's framing. Every message is a frame: a 4-byte big-endian length, then that many bytes of
/// body. Bodies start with a 4-byte tag ("udr" and a kind byte) and hold big-endian integers and length-prefixed
/// strict UTF-8 strings:
/// <code>
/// request  (kind 'Q'): "udrQ" u16 argc, argc × (u32 length, bytes) [argv[0] = program name], u32 length, stdin bytes
/// response (kind 'A'): "udrA" i32 exit status, u32 length, stdout bytes, u32 length, stderr bytes
/// </code>
/// A request body is at most <see cref="MaxRequestBytes"/>; a response at most <see cref="MaxResponseBytes"/>.
/// The parsers only look at the buffer they are given: a frame split across reads comes back
/// <see cref="ControlFrameStatus.Incomplete"/> until it is whole.
/// </summary>
public static class ControlProtocol
{
    /// <summary>1 MiB: far more than any ipvsadm command line or rules file needs.</summary>
    public const int MaxRequestBytes = 1 << 20;

    /// <summary>Listings of a million connections run to about 100 MB.</summary>
    public const int MaxResponseBytes = 512 << 20;

    /// <summary>The exit status of a refused or malformed request (as ipvsadm's own command-line failures).</summary>
    public const int ProtocolErrorExitCode = 2;

    public const int MaxArguments = 4096;

    private const int LengthPrefix = 4;
    private static readonly byte[] RequestTag = "udrQ"u8.ToArray();
    private static readonly byte[] ResponseTag = "udrA"u8.ToArray();
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static void WriteRequest(IBufferWriter<byte> output, ControlRequest request)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(request);
        var body = new ArrayBufferWriter<byte>();
        body.Write(RequestTag);
        WriteUInt16(body, checked((ushort)(request.Arguments.Length + 1)));
        WriteString(body, request.Program);
        foreach (string argument in request.Arguments)
        {
            WriteString(body, argument);
        }
        WriteString(body, request.Stdin);
        WriteFrame(output, body.WrittenSpan);
    }

    public static void WriteResponse(IBufferWriter<byte> output, ControlResponse response)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(response);
        var body = new ArrayBufferWriter<byte>();
        body.Write(ResponseTag);
        WriteUInt32(body, unchecked((uint)response.ExitCode));
        WriteString(body, response.Stdout);
        WriteString(body, response.Stderr);
        WriteFrame(output, body.WrittenSpan);
    }

    /// <summary>Reads one request frame from the start of <paramref name="buffer"/>, consuming it when whole.</summary>
    public static ControlFrameStatus TryReadRequest(ref ReadOnlySequence<byte> buffer, out ControlRequest? request, out string? error)
    {
        request = null;
        ControlFrameStatus status = TryReadFrame(ref buffer, MaxRequestBytes, out ReadOnlySequence<byte> body, out error);
        if (status != ControlFrameStatus.Complete)
        {
            return status;
        }
        var reader = new SequenceReader<byte>(body);
        if (!reader.IsNext(RequestTag, advancePast: true))
        {
            error = "not a udr control request";
            return ControlFrameStatus.Malformed;
        }
        if (!reader.TryReadBigEndian(out short rawCount) || (ushort)rawCount is 0 or > MaxArguments)
        {
            error = "bad argument count";
            return ControlFrameStatus.Malformed;
        }
        int count = (ushort)rawCount;
        var words = ImmutableArray.CreateBuilder<string>(count);
        for (int i = 0; i < count; i++)
        {
            if (!TryReadString(ref reader, out string? word, out error) || word!.Contains('\0', StringComparison.Ordinal))
            {
                error ??= "an argument holds a NUL character";
                return ControlFrameStatus.Malformed;
            }
            words.Add(word);
        }
        if (!TryReadString(ref reader, out string? stdin, out error))
        {
            return ControlFrameStatus.Malformed;
        }
        if (!reader.End)
        {
            error = "bytes after the end of the request";
            return ControlFrameStatus.Malformed;
        }
        request = new ControlRequest(words[0], words.ToImmutable().RemoveAt(0), stdin!);
        return ControlFrameStatus.Complete;
    }

    /// <summary>Reads one response frame from the start of <paramref name="buffer"/>, consuming it when whole.</summary>
    public static ControlFrameStatus TryReadResponse(ref ReadOnlySequence<byte> buffer, out ControlResponse? response, out string? error)
    {
        response = null;
        ControlFrameStatus status = TryReadFrame(ref buffer, MaxResponseBytes, out ReadOnlySequence<byte> body, out error);
        if (status != ControlFrameStatus.Complete)
        {
            return status;
        }
        var reader = new SequenceReader<byte>(body);
        if (!reader.IsNext(ResponseTag, advancePast: true) || !reader.TryReadBigEndian(out int exitCode) ||
            !TryReadString(ref reader, out string? stdout, out error) || !TryReadString(ref reader, out string? stderr, out error) ||
            !reader.End)
        {
            error ??= "not a udr control response";
            return ControlFrameStatus.Malformed;
        }
        response = new ControlResponse(exitCode, stdout!, stderr!);
        return ControlFrameStatus.Complete;
    }

    private static ControlFrameStatus TryReadFrame(ref ReadOnlySequence<byte> buffer, int limit, out ReadOnlySequence<byte> body, out string? error)
    {
        body = default;
        error = null;
        if (buffer.Length < LengthPrefix)
        {
            return ControlFrameStatus.Incomplete;
        }
        Span<byte> prefix = stackalloc byte[LengthPrefix];
        buffer.Slice(0, LengthPrefix).CopyTo(prefix);
        uint length = BinaryPrimitives.ReadUInt32BigEndian(prefix);
        if (length > (uint)limit)
        {
            error = $"message of {length} bytes is over the limit of {limit}";
            return ControlFrameStatus.TooLarge;
        }
        if (buffer.Length < LengthPrefix + length)
        {
            return ControlFrameStatus.Incomplete;
        }
        body = buffer.Slice(LengthPrefix, length);
        buffer = buffer.Slice(body.End);
        return ControlFrameStatus.Complete;
    }

    private static bool TryReadString(ref SequenceReader<byte> reader, out string? text, out string? error)
    {
        text = null;
        error = null;
        if (!reader.TryReadBigEndian(out int rawLength) || rawLength < 0 || reader.Remaining < rawLength)
        {
            error = "a string runs past the end of the message";
            return false;
        }
        ReadOnlySequence<byte> bytes = reader.UnreadSequence.Slice(0, rawLength);
        try
        {
            text = StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            error = "a string is not valid UTF-8";
            return false;
        }
        reader.Advance(rawLength);
        return true;
    }

    private static void WriteFrame(IBufferWriter<byte> output, ReadOnlySpan<byte> body)
    {
        Span<byte> prefix = output.GetSpan(LengthPrefix);
        BinaryPrimitives.WriteUInt32BigEndian(prefix, (uint)body.Length);
        output.Advance(LengthPrefix);
        output.Write(body);
    }

    private static void WriteUInt16(ArrayBufferWriter<byte> output, ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(output.GetSpan(2), value);
        output.Advance(2);
    }

    private static void WriteUInt32(ArrayBufferWriter<byte> output, uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(output.GetSpan(4), value);
        output.Advance(4);
    }

    private static void WriteString(ArrayBufferWriter<byte> output, string text)
    {
        byte[] bytes = StrictUtf8.GetBytes(text);
        WriteUInt32(output, (uint)bytes.Length);
        output.Write(bytes);
    }
}
