using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using UserspaceDr.Admin.Control;

namespace UserspaceDr.Tests.Control;

/// <summary>The control socket's framing: round trips, frames split anywhere, and every way a frame can be bad.</summary>
public class ControlProtocolTests
{
    private static byte[] Request(ControlRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>();
        ControlProtocol.WriteRequest(buffer, request);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Frame(params byte[][] parts)
    {
        byte[] body = [.. parts.SelectMany(p => p)];
        byte[] frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame, 4);
        return frame;
    }

    private static byte[] U16(int value) => [(byte)(value >> 8), (byte)value];

    private static byte[] Text(byte[] bytes)
    {
        byte[] result = new byte[4 + bytes.Length];
        BinaryPrimitives.WriteInt32BigEndian(result, bytes.Length);
        bytes.CopyTo(result, 4);
        return result;
    }

    private static ControlFrameStatus Read(byte[] bytes, out ControlRequest? request, out string? error, out long consumed)
    {
        var buffer = new ReadOnlySequence<byte>(bytes);
        ControlFrameStatus status = ControlProtocol.TryReadRequest(ref buffer, out request, out error);
        consumed = bytes.Length - buffer.Length;
        return status;
    }

    [Test]
    public void Requests_and_responses_round_trip()
    {
        var request = new ControlRequest("udr adm", ["-A", "-t", "198.18.0.100:80", "-s", "wrr", "ünïcode"], "-a -t x\n# comment\n");
        byte[] bytes = Request(request);
        Assert.That(Read(bytes, out ControlRequest? read, out _, out long consumed), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(consumed, Is.EqualTo(bytes.Length));
        Assert.That(read!.Program, Is.EqualTo(request.Program));
        Assert.That(read.Arguments, Is.EqualTo(request.Arguments));
        Assert.That(read.Stdin, Is.EqualTo(request.Stdin));

        var response = new ControlResponse(255, "out\n", "Service already exists\n");
        var writer = new ArrayBufferWriter<byte>();
        ControlProtocol.WriteResponse(writer, response);
        var sequence = new ReadOnlySequence<byte>(writer.WrittenMemory);
        Assert.That(ControlProtocol.TryReadResponse(ref sequence, out ControlResponse? back, out _), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(back, Is.EqualTo(response));
        Assert.That(sequence.IsEmpty, Is.True);
    }

    [Test]
    public void A_frame_split_anywhere_is_incomplete_until_whole_and_two_frames_read_one_after_the_other()
    {
        byte[] bytes = Request(new ControlRequest("ipvsadm", ["-L", "-n"]));
        for (int cut = 0; cut < bytes.Length; cut++)
        {
            Assert.That(Read(bytes[..cut], out _, out _, out long consumed), Is.EqualTo(ControlFrameStatus.Incomplete), $"cut at {cut}");
            Assert.That(consumed, Is.Zero);
        }
        byte[] two = [.. bytes, .. Request(new ControlRequest("ipvsadm", ["-S"]))];
        var buffer = new ReadOnlySequence<byte>(two);
        Assert.That(ControlProtocol.TryReadRequest(ref buffer, out ControlRequest? first, out _), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(ControlProtocol.TryReadRequest(ref buffer, out ControlRequest? second, out _), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(first!.Arguments, Is.EqualTo(new[] { "-L", "-n" }));
        Assert.That(second!.Arguments, Is.EqualTo(new[] { "-S" }));
        Assert.That(buffer.IsEmpty, Is.True);
    }

    [Test]
    public void An_oversized_frame_is_refused_from_its_length_alone()
    {
        byte[] header = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(header, ControlProtocol.MaxRequestBytes + 1);
        Assert.That(Read(header, out _, out string? error, out long consumed), Is.EqualTo(ControlFrameStatus.TooLarge));
        Assert.That(consumed, Is.Zero);
        Assert.That(error, Does.Contain("over the limit"));
        BinaryPrimitives.WriteUInt32BigEndian(header, uint.MaxValue);
        Assert.That(Read(header, out _, out _, out _), Is.EqualTo(ControlFrameStatus.TooLarge));
    }

    private static readonly byte[] Tag = "udrQ"u8.ToArray();

    private static IEnumerable<TestCaseData> MalformedFrames()
    {
        yield return new TestCaseData(Frame("GET / HTTP/1.1\r\n"u8.ToArray())).SetName("not a udr request");
        yield return new TestCaseData(Frame(Tag, U16(0), Text([]))).SetName("no program name");
        yield return new TestCaseData(Frame(Tag, U16(5000))).SetName("too many arguments");
        yield return new TestCaseData(Frame(Tag, U16(1))).SetName("arguments missing");
        yield return new TestCaseData(Frame(Tag, U16(1), [0, 0, 0, 50, 65])).SetName("string longer than the frame");
        yield return new TestCaseData(Frame(Tag, U16(1), [0xFF, 0xFF, 0xFF, 0xFF])).SetName("negative string length");
        yield return new TestCaseData(Frame(Tag, U16(1), Text([0xC3, 0x28]), Text([]))).SetName("invalid UTF-8");
        yield return new TestCaseData(Frame(Tag, U16(2), Text("p"u8.ToArray()), Text("-L\0"u8.ToArray()), Text([]))).SetName("NUL in an argument");
        yield return new TestCaseData(Frame(Tag, U16(1), Text("p"u8.ToArray()))).SetName("stdin missing");
        yield return new TestCaseData(Frame(Tag, U16(1), Text("p"u8.ToArray()), Text([]), [1])).SetName("bytes after the end");
        yield return new TestCaseData(Frame([])).SetName("empty body");
    }

    [TestCaseSource(nameof(MalformedFrames))]
    public void Malformed_frames_are_refused_with_a_reason(byte[] frame)
    {
        Assert.That(Read(frame, out ControlRequest? request, out string? error, out _), Is.EqualTo(ControlFrameStatus.Malformed));
        Assert.That(request, Is.Null);
        Assert.That(error, Is.Not.Empty);
    }

    [Test]
    public void A_well_formed_hand_built_frame_reads()
    {
        byte[] frame = Frame(Tag, U16(3), Text(Encoding.UTF8.GetBytes("ipvsadm")), Text("-L"u8.ToArray()), Text("-n"u8.ToArray()), Text([]));
        Assert.That(Read(frame, out ControlRequest? request, out _, out _), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(request!.Arguments, Is.EqualTo(new[] { "-L", "-n" }));
    }
}
