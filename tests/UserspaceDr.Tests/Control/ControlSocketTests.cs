using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using UserspaceDr.Admin;
using UserspaceDr.Admin.Control;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Admin;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// The control socket end to end in one process: <see cref="ControlServer"/> in front of an
/// <see cref="IpvsadmExecutor"/> (over an in-memory backend), driven by <see cref="ControlClient"/> and by raw
/// sockets that misbehave. Permission tests need root (to own the socket and to become "nobody" for a client).
/// </summary>
[NonParallelizable]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public class ControlSocketTests
{
    private string _directory = "";
    private string _path = "";
    private InMemoryIpvsBackend _backend = null!;
    private ControlServer _server = null!;

    [SetUp]
    public void StartServer()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("Unix domain sockets with SO_PEERCRED");
        }
        _directory = Path.Combine(Path.GetTempPath(), "udr-control-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_directory);
        File.SetUnixFileMode(_directory, (UnixFileMode)0b111_101_101); // 0755: "nobody" must reach the socket to be refused by it
        _path = Path.Combine(_directory, "udr.sock");
        _backend = new InMemoryIpvsBackend();
        var executor = new IpvsadmExecutor(_backend);
        _server = new ControlServer(_path, request =>
        {
            IpvsadmOutcome outcome = executor.Execute(request.Program, request.Arguments, request.Stdin);
            return new ControlResponse(outcome.ExitCode, outcome.Stdout, outcome.Stderr);
        }, NullLogger.Instance, new ControlServerOptions
        {
            AllowedUid = CurrentUid(),
            RequestTimeout = TimeSpan.FromSeconds(1),
            IdleTimeout = TimeSpan.FromSeconds(5),
            MaxConnections = 8,
        });
        _server.Start();
    }

    [TearDown]
    public void StopServer()
    {
        _server?.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static uint CurrentUid() => uint.Parse(RunProcess("id", "-u").Output.Trim(), System.Globalization.CultureInfo.InvariantCulture);

    private ControlResponse Send(params string[] args) => Restore("", args);

    private ControlResponse Restore(string stdin, params string[] args) =>
        ControlClient.Send(_path, new ControlRequest("ipvsadm", [.. args], stdin), TimeSpan.FromSeconds(10));

    [Test]
    public void The_socket_is_mode_0600_and_owned_by_the_daemons_user()
    {
        Assert.That(File.GetUnixFileMode(_path), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(RunProcess("stat", "-c", "%F %u", _path).Output.Trim(), Is.EqualTo($"socket {CurrentUid()}"));
        if (Environment.IsPrivilegedProcess)
        {
            Assert.That(CurrentUid(), Is.Zero, "as the daemon runs: owned by root");
        }
    }

    [Test]
    public void Commands_run_and_answer_with_ipvsadms_output_and_status()
    {
        Assert.That(Send("-A", "-t", "198.18.0.100:80", "-s", "wrr"), Is.EqualTo(new ControlResponse(0, "", "")));
        Assert.That(Send("-a", "-t", "198.18.0.100:80", "-r", "198.18.0.11:80", "-w", "2"), Is.EqualTo(new ControlResponse(0, "", "")));
        Assert.That(Send("-S", "-n"), Is.EqualTo(new ControlResponse(0,
            "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 2\n", "")));
        Assert.That(Send("-A", "-t", "198.18.0.100:80"), Is.EqualTo(new ControlResponse(255, "", "Service already exists\n")));
        Assert.That(Send("-d", "-t", "198.18.0.100:80", "-r", "198.18.0.12"), Is.EqualTo(new ControlResponse(255, "", "No such destination\n")));
        Assert.That(Send("-L", "-t", "198.18.0.100:81"), Is.EqualTo(new ControlResponse(1, "", "No such service\n")));
        Assert.That(Send("-A", "-t", "198.18.0.100"), Is.EqualTo(new ControlResponse(2, "", "Zero port specified for non-persistent service\n")));
        Assert.That(Send("-X"), Is.EqualTo(new ControlResponse(255, "", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n")));
        Assert.That(Send("-R"), Is.EqualTo(new ControlResponse(0, "", "")));
        Assert.That(Restore("-C\n-A -u 198.18.0.100:53 -s rr\n", "-R").ExitCode, Is.Zero);
        Assert.That(Send("-S", "-n").Stdout, Is.EqualTo("-A -u 198.18.0.100:53 -s rr\n"));
        Assert.That(Send("-L", "-n").Stdout, Does.StartWith("IP Virtual Server version 1.2.1 (size=4096)\n"));
    }

    [Test]
    public void Several_requests_on_one_connection_are_answered_in_order()
    {
        using Socket socket = Connect();
        byte[] two = [.. Encode(new ControlRequest("ipvsadm", ["-A", "-t", "198.18.0.100:80"])), .. Encode(new ControlRequest("ipvsadm", ["-S", "-n"]))];
        socket.Send(two);
        Assert.That(ReadResponse(socket), Is.EqualTo(new ControlResponse(0, "", "")));
        Assert.That(ReadResponse(socket), Is.EqualTo(new ControlResponse(0, "-A -t 198.18.0.100:80 -s wlc\n", "")));
    }

    [Test]
    public void Concurrent_clients_are_served_one_change_at_a_time()
    {
        // Four at a time: with the limit of 8 connections, closing ones never push a new one over it.
        Parallel.For(0, 16, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            ControlResponse added = Send("-A", "-t", $"198.18.1.{i}:80", "-s", "rr");
            Assert.That(added.ExitCode, Is.Zero, added.Stderr);
        });
        Assert.That(_backend.Rules.Services, Has.Length.EqualTo(16), "no change was lost to a race");
        Assert.That(_backend.Publishes, Is.EqualTo(16));
    }

    [Test]
    public void A_malformed_request_gets_an_error_reply_and_the_daemon_serves_the_next_client()
    {
        using (Socket socket = Connect())
        {
            socket.Send(Frame("GET / HTTP/1.0\r\n\r\n"u8.ToArray()));
            ControlResponse reply = ReadResponse(socket);
            Assert.That(reply.ExitCode, Is.EqualTo(ControlProtocol.ProtocolErrorExitCode));
            Assert.That(reply.Stderr, Is.EqualTo("udr: malformed request: not a udr control request\n"));
            Assert.That(ReadToEnd(socket), Is.Empty, "the connection is closed after the reply");
        }
        Assert.That(Send("-A", "-t", "198.18.0.100:80").ExitCode, Is.Zero);
        Assert.That(_backend.Publishes, Is.EqualTo(1), "nothing of the malformed request reached the rules");
    }

    [Test]
    public void An_oversized_request_is_refused_before_its_body_is_read()
    {
        using (Socket socket = Connect())
        {
            byte[] header = new byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(header, 64u << 20);
            socket.Send(header);
            ControlResponse reply = ReadResponse(socket);
            Assert.That(reply.Stderr, Does.StartWith("udr: malformed request: message of 67108864 bytes is over the limit of 1048576"));
            // The server closes without waiting for 64 MiB that will never come.
            Assert.That(ReadToEnd(socket), Is.Empty);
        }
        // A request of just under the limit is fine (a big -R input).
        string big = string.Concat(Enumerable.Repeat("# padding padding padding padding padding padding padding padding\n", 15000));
        Assert.That(Restore(big + "-A -t 198.18.0.100:80\n", "-R").ExitCode, Is.Zero);
    }

    [Test]
    public void The_client_refuses_to_send_a_request_over_the_limit()
    {
        string huge = new('#', ControlProtocol.MaxRequestBytes);
        Assert.That(() => Restore(huge, "-R"), Throws.TypeOf<ControlClientException>().With.Message.Contains("over the control socket's limit"));
        Assert.That(_backend.Publishes, Is.Zero);
    }

    [Test]
    public void A_partial_request_does_not_hold_up_other_clients_and_is_cut_off()
    {
        byte[] request = Encode(new ControlRequest("ipvsadm", ["-A", "-t", "198.18.0.100:80"]));
        using Socket stalled = Connect();
        stalled.Send(request.AsSpan(0, request.Length - 3));

        var clock = Stopwatch.StartNew();
        Assert.That(Send("-A", "-t", "198.18.0.100:81").ExitCode, Is.Zero);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromMilliseconds(800)), "served while the other request is still incomplete");

        // RequestTimeout is 1 s in these tests: the stalled request is answered with an error and closed.
        ControlResponse reply = ReadResponse(stalled);
        Assert.That(reply.Stderr, Is.EqualTo("udr: incomplete request (timed out)\n"));
        Assert.That(ReadToEnd(stalled), Is.Empty);
        Assert.That(Send("-S", "-n").Stdout, Is.EqualTo("-A -t 198.18.0.100:81 -s wlc\n"), "the partial request was never applied");
    }

    [Test]
    public void A_request_cut_short_by_the_client_is_answered_as_incomplete()
    {
        byte[] request = Encode(new ControlRequest("ipvsadm", ["-C"]));
        using Socket socket = Connect();
        socket.Send(request.AsSpan(0, 6));
        socket.Shutdown(SocketShutdown.Send);
        Assert.That(ReadResponse(socket).Stderr, Is.EqualTo("udr: incomplete request\n"));
        Assert.That(Send("-L", "-n").ExitCode, Is.Zero);
    }

    [Test]
    public void Connections_beyond_the_limit_are_closed_and_the_rest_keep_working()
    {
        var idle = new List<Socket>();
        try
        {
            for (int i = 0; i < 8; i++)
            {
                idle.Add(Connect());
            }
            Thread.Sleep(200);
            using Socket extra = Connect();
            Assert.That(ReadResponse(extra).Stderr, Is.EqualTo("udr: busy: 8 connections to the control socket are open; try again\n"));
            Assert.That(ReadToEnd(extra), Is.Empty, "closed at once");
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
        Thread.Sleep(200);
        Assert.That(Send("-L", "-n").ExitCode, Is.Zero, "served again once the idle connections are gone");
    }

    [Test]
    public void A_second_server_on_a_live_socket_is_refused_and_a_stale_socket_is_replaced()
    {
        using (var second = new ControlServer(_path, _ => new ControlResponse(0, "", ""), NullLogger.Instance))
        {
            Assert.That(second.Start, Throws.InvalidOperationException.With.Message.Contains("already serves"));
        }
        Assert.That(Send("-L", "-n").ExitCode, Is.Zero, "the refused second server left the first one alone");

        _server.Dispose();
        Assert.That(File.Exists(_path), Is.False, "the socket file is removed on exit");

        // A socket file left by a process that died (.NET would unlink its own on Dispose; SIGKILL does not).
        if (!File.Exists("/usr/bin/socat"))
        {
            Assert.Ignore("needs socat to leave a stale socket behind");
        }
        using (Process listener = Process.Start(new ProcessStartInfo("/usr/bin/socat", ["-u", "UNIX-LISTEN:" + _path, "/dev/null"]))!)
        {
            for (int i = 0; i < 100 && !File.Exists(_path); i++)
            {
                Thread.Sleep(20);
            }
            listener.Kill();
            listener.WaitForExit();
        }
        Assert.That(File.Exists(_path), Is.True, "stale socket file");
        _server = new ControlServer(_path, _ => new ControlResponse(7, "fresh", ""), NullLogger.Instance, new ControlServerOptions { AllowedUid = CurrentUid() });
        _server.Start();
        Assert.That(Send("-L").ExitCode, Is.EqualTo(7));
    }

    [Test]
    public void A_path_that_is_not_a_socket_is_never_deleted()
    {
        string file = Path.Combine(_directory, "precious");
        File.WriteAllText(file, "keep me");
        using var server = new ControlServer(file, _ => new ControlResponse(0, "", ""), NullLogger.Instance);
        Assert.That(server.Start, Throws.InvalidOperationException.With.Message.Contains("not a socket"));
        Assert.That(File.ReadAllText(file), Is.EqualTo("keep me"));
    }

    [Test]
    public void A_client_that_is_not_root_cannot_connect_and_is_refused_even_if_the_mode_is_opened()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Ignore("needs root: the socket must belong to root and a client must become nobody");
        }
        if (!File.Exists("/usr/bin/setpriv") || !File.Exists("/usr/bin/socat"))
        {
            Assert.Ignore("needs setpriv and socat");
        }
        byte[] request = Encode(new ControlRequest("ipvsadm", ["-A", "-t", "198.18.0.100:80"]));

        // Mode 0600, root's: the kernel refuses nobody's connect() outright.
        (int exitCode, byte[] output, string error) = AsNobody(request);
        Assert.That(exitCode, Is.Not.Zero);
        Assert.That(error, Does.Contain("Permission denied"));
        Assert.That(output, Is.Empty);

        // Even with the mode opened up, SO_PEERCRED says uid 65534: refused, nothing applied.
        File.SetUnixFileMode(_path, (UnixFileMode)0b110_110_110);
        (_, output, _) = AsNobody(request);
        var buffer = new ReadOnlySequence<byte>(output);
        Assert.That(ControlProtocol.TryReadResponse(ref buffer, out ControlResponse? reply, out _), Is.EqualTo(ControlFrameStatus.Complete));
        Assert.That(reply, Is.EqualTo(new ControlResponse(2, "", "udr: permission denied: the control socket serves root only\n")));
        Assert.That(_backend.Publishes, Is.Zero);
        Assert.That(Send("-A", "-t", "198.18.0.100:80").ExitCode, Is.Zero, "root is still served");
    }

    private (int ExitCode, byte[] Output, string Error) AsNobody(byte[] stdin)
    {
        var start = new ProcessStartInfo("/usr/bin/setpriv")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string argument in (string[])["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/socat", "-t", "5", "-", "UNIX-CONNECT:" + _path])
        {
            start.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(start)!;
        Task<string> error = process.StandardError.ReadToEndAsync();
        var output = new MemoryStream();
        Task copy = process.StandardOutput.BaseStream.CopyToAsync(output);
        try
        {
            process.StandardInput.BaseStream.Write(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // socat may be gone already (its connect() refused: the first case): EPIPE on its stdin, and its stderr says why.
        }
        Assert.That(process.WaitForExit(15_000), Is.True, "socat ended");
        copy.Wait(5_000);
        return (process.ExitCode, output.ToArray(), error.Result);
    }

    private Socket Connect()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 5000 };
        socket.Connect(new UnixDomainSocketEndPoint(_path));
        return socket;
    }

    private static byte[] Encode(ControlRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>();
        ControlProtocol.WriteRequest(buffer, request);
        return buffer.WrittenSpan.ToArray();
    }

    private static byte[] Frame(byte[] body)
    {
        byte[] frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)body.Length);
        body.CopyTo(frame, 4);
        return frame;
    }

    private static ControlResponse ReadResponse(Socket socket)
    {
        var received = new List<byte>();
        byte[] chunk = new byte[4096];
        while (true)
        {
            var buffer = new ReadOnlySequence<byte>(received.ToArray());
            ControlFrameStatus status = ControlProtocol.TryReadResponse(ref buffer, out ControlResponse? response, out string? error);
            if (status == ControlFrameStatus.Complete)
            {
                // Keep what followed (a second response) for the next call.
                Leftovers[socket] = buffer.ToArray();
                return response!;
            }
            Assert.That(status, Is.EqualTo(ControlFrameStatus.Incomplete), error);
            if (Leftovers.Remove(socket, out byte[]? earlier))
            {
                received.InsertRange(0, earlier);
                continue;
            }
            int read = socket.Receive(chunk);
            Assert.That(read, Is.Positive, "the server closed the connection without a response");
            received.AddRange(chunk.AsSpan(0, read).ToArray());
        }
    }

    private static readonly Dictionary<Socket, byte[]> Leftovers = [];

    private static byte[] ReadToEnd(Socket socket)
    {
        var received = new List<byte>();
        if (Leftovers.Remove(socket, out byte[]? earlier))
        {
            received.AddRange(earlier);
        }
        byte[] chunk = new byte[4096];
        int read;
        while ((read = socket.Receive(chunk)) > 0)
        {
            received.AddRange(chunk.AsSpan(0, read).ToArray());
        }
        return [.. received];
    }

    private static (int ExitCode, string Output) RunProcess(string file, params string[] arguments)
    {
        CommandResult result = ProcessRunner.Run(file, arguments, TimeSpan.FromSeconds(30));
        return (result.ExitCode, result.Output);
    }
}
