using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Tests.Io;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.Node;

/// <summary>The outcome of one udr invocation inside a lab host.</summary>
internal sealed record UdrRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}--- stderr\n{Error}";
}

/// <summary>What the node lab tests share: the udr binary, running it in a namespace, host snapshots, ARP probes, HTTP.</summary>
internal static class NodeLab
{
    private static readonly Lazy<string> Binary = new(LocateOrPublish, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>
    /// The udr executable: the newer of the Cli's build output for this configuration (what `dotnet build
    /// UserspaceDr.sln` just made) and artifacts/udr/udr; published to artifacts/udr when neither exists.
    /// </summary>
    public static string UdrPath => Binary.Value;

    /// <summary>Runs `ip netns exec NS udr ARGS…` (optionally as the unprivileged user nobody) and waits for it.</summary>
    public static UdrRun Udr(LabNetwork lab, LabHost host, params string[] arguments) => Udr(lab, host, asNobody: false, arguments);

    public static UdrRun Udr(LabNetwork lab, LabHost host, bool asNobody, params string[] arguments)
    {
        var startInfo = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        startInfo.ArgumentList.Add("netns");
        startInfo.ArgumentList.Add("exec");
        startInfo.ArgumentList.Add(lab.Namespace(host));
        if (asNobody)
        {
            foreach (string argument in new[] { "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups" })
            {
                startInfo.ArgumentList.Add(argument);
            }
            startInfo.Environment["HOME"] = "/tmp";
        }
        startInfo.ArgumentList.Add(UdrPath);
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }
        using Process process = Process.Start(startInfo)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(30)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"udr {string.Join(' ', arguments)} did not finish within 30 s");
        }
        process.WaitForExit();
        return new UdrRun(process.ExitCode, output.Result, error.Result);
    }

    /// <summary>
    /// Everything setup could touch in a host: every /proc/sys/net/ipv4/conf/*/* value and every IPv4 address.
    /// Equal snapshots mean teardown left the host exactly as it found it.
    /// </summary>
    public static string Snapshot(LabNetwork lab, LabHost host) => lab.Exec(host,
        "grep -r '^' /proc/sys/net/ipv4/conf/ | sort; ip -4 -o addr show");

    /// <summary>
    /// Sends one real ARP request "who has <paramref name="target"/>" from the client's eth0 and returns the MAC of every
    /// host that answered within <paramref name="wait"/>: the question DR lives or dies by.
    /// </summary>
    public static unsafe List<MacAddress> ArpRepliersFromClient(LabNetwork lab, string target, TimeSpan wait)
    {
        MacAddress clientMac = lab.MacAddressOf(LabHost.Client);
        uint targetAddress = CapturedFrame.Address(target);
        uint clientAddress = CapturedFrame.Address(LabNetwork.ClientAddress);
        var arpOnly = new ClassicBpfProgram([
            new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, 12),
            new(ClassicBpfInstruction.JumpIfEqual, 0, 1, EtherTypes.Arp),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, uint.MaxValue),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, 0),
        ]);
        using PacketRxRing ring = lab.RunIn(LabHost.Client, () => new PacketRxRing(new PacketRxRingOptions("eth0")
        {
            BlockSize = 1 << 16,
            BlockCount = 4,
            RetireTimeoutMs = 10,
            Filter = arpOnly,
        }));
        using PacketTxBatch tx = lab.RunIn(LabHost.Client, () => new PacketTxBatch(new PacketTxBatchOptions("eth0") { Capacity = 4 }));

        byte[] request = new byte[60];
        MacAddress.Broadcast.Write(request);
        clientMac.Write(request.AsSpan(6));
        BinaryPrimitives.WriteUInt16BigEndian(request.AsSpan(12), EtherTypes.Arp);
        Span<byte> arp = request.AsSpan(14);
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);
        BinaryPrimitives.WriteUInt16BigEndian(arp[2..], EtherTypes.Ipv4);
        arp[4] = 6;
        arp[5] = 4;
        Assert.That(ArpPacket.TryCreate(arp, out ArpPacket packet), Is.True);
        packet.Operation = ArpOperation.Request;
        packet.SenderMac = clientMac;
        packet.SenderAddress = clientAddress;
        packet.TargetMac = MacAddress.Zero;
        packet.TargetAddress = targetAddress;
        fixed (byte* start = request)
        {
            tx.Add(start, request.Length);
            Assert.That(tx.Flush(), Is.EqualTo(1), $"ARP request not sent, errno {tx.LastErrno}");
        }

        var repliers = new List<MacAddress>();
        foreach (CapturedFrame frame in FrameTestSupport.Drain(ring, wait))
        {
            if (frame.IsArp && ArpPacket.TryCreate(frame.Bytes.AsSpan(frame.NetworkOffset), out ArpPacket reply) &&
                reply.Operation == ArpOperation.Reply && reply.SenderAddress == targetAddress && reply.TargetAddress == clientAddress &&
                !repliers.Contains(reply.SenderMac))
            {
                repliers.Add(reply.SenderMac);
            }
        }
        return repliers;
    }

    /// <summary>
    /// A minimal HTTP/1.0 server on port 80 inside a lab host, answering "served by NAME": the real server's kernel
    /// TCP stack terminates the connection, as with any real web server.
    /// </summary>
    public static HttpResponder StartHttp(LabNetwork lab, LabHost host) =>
        new(lab.RunIn(host, () =>
        {
            var listener = new TcpListener(IPAddress.Any, 80);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start();
            return listener;
        }), LabNetwork.HostName(host));

    private static string LocateOrPublish()
    {
        string root = LabNetwork.RepositoryRoot;
        string configuration = AppContext.BaseDirectory.Contains("/bin/Debug/", StringComparison.Ordinal) ? "Debug" : "Release";
        string built = Path.Combine(root, "src", "UserspaceDr.Cli", "bin", configuration, "net10.0", "udr");
        string published = Path.Combine(root, "artifacts", "udr", "udr");
        string[] candidates = [.. new[] { built, published }.Where(File.Exists)
            .OrderByDescending(p => File.GetLastWriteTimeUtc(Path.ChangeExtension(p, ".dll")))];
        if (candidates.Length > 0)
        {
            return candidates[0];
        }
        var startInfo = new ProcessStartInfo("dotnet") { WorkingDirectory = root, UseShellExecute = false };
        foreach (string argument in new[] { "publish", "src/UserspaceDr.Cli", "-c", "Release", "-o", "artifacts/udr", "-v", "q", "-nologo" })
        {
            startInfo.ArgumentList.Add(argument);
        }
        using Process publish = Process.Start(startInfo)!;
        publish.WaitForExit();
        Assert.That(publish.ExitCode, Is.Zero, "dotnet publish src/UserspaceDr.Cli failed");
        return published;
    }
}

/// <summary>A running <see cref="NodeLab.StartHttp"/> server; counts the requests it answered.</summary>
internal sealed class HttpResponder : IDisposable
{
    private readonly TcpListener _listener;
    private readonly string _name;
    private readonly Task _loop;
    private int _served;

    public HttpResponder(TcpListener listener, string name)
    {
        _listener = listener;
        _name = name;
        _loop = Task.Run(ServeAsync);
    }

    public int Served => Volatile.Read(ref _served);

    public void Dispose()
    {
        _listener.Stop();
        _listener.Dispose();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using (client)
            {
                try
                {
                    NetworkStream stream = client.GetStream();
                    stream.ReadTimeout = 5000;
                    // Read the whole request head, so that closing never resets the connection under unread data.
                    var head = new StringBuilder();
                    byte[] buffer = new byte[1024];
                    while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        int read = await stream.ReadAsync(buffer).ConfigureAwait(false);
                        if (read == 0)
                        {
                            break;
                        }
                        head.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    }
                    byte[] body = Encoding.ASCII.GetBytes($"served by {_name}\n");
                    byte[] response = Encoding.ASCII.GetBytes($"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
                    await stream.WriteAsync(response).ConfigureAwait(false);
                    await stream.WriteAsync(body).ConfigureAwait(false);
                    Interlocked.Increment(ref _served);
                    client.Client.Shutdown(SocketShutdown.Send);
                }
                catch (Exception e) when (e is IOException or SocketException)
                {
                    // A broken request is the test's finding (curl reports it), not the server's.
                }
            }
        }
    }
}
