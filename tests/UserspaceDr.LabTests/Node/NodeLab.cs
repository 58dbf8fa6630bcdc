using System.Net;
using System.Net.Sockets;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.Io;
using UserspaceDr.Tests.Lab;
using UserspaceDr.Tests.TestSupport;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Node;

/// <summary>The outcome of one udr invocation inside a lab host.</summary>
internal sealed record UdrRun(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}--- stderr\n{Error}";
}

/// <summary>What the node lab tests share: the udr binary, running it in a namespace, host snapshots, ARP probes, HTTP.</summary>
internal static class NodeLab
{
    /// <summary>The udr executable (<see cref="UdrBinary"/>).</summary>
    public static string UdrPath => UdrBinary.Ensure();

    /// <summary>Runs `ip netns exec NS udr ARGS…` (optionally as the unprivileged user nobody) and waits for it.</summary>
    public static UdrRun Udr(LabNetwork lab, LabHost host, params string[] arguments) => Udr(lab, host, asNobody: false, arguments);

    public static UdrRun Udr(LabNetwork lab, LabHost host, bool asNobody, params string[] arguments)
    {
        // nobody may not reach the checkout (under /root it cannot): it runs a world-readable copy of the daemon.
        string[] user = asNobody ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", UdrBinary.EnsureWorldReadable()] : [UdrPath];
        CommandResult result = ProcessRunner.Run("ip", ["netns", "exec", lab.Namespace(host), .. user, .. arguments], TimeSpan.FromSeconds(30),
            environment: asNobody ? new Dictionary<string, string> { ["HOME"] = "/tmp" } : null);
        Assert.That(result.TimedOut, Is.False, $"udr {string.Join(' ', arguments)} did not finish within 30 s");
        return new UdrRun(result.ExitCode, result.Output, result.Error);
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
        uint targetAddress = Ipv4Address.Parse(target);
        uint clientAddress = Ipv4Address.Parse(LabNetwork.ClientAddress);
        using PacketRxRing ring = lab.RunIn(LabHost.Client, () => new PacketRxRing(new PacketRxRingOptions("eth0")
        {
            BlockSize = 1 << 16,
            BlockCount = 4,
            RetireTimeoutMs = 10,
            Filter = ClassicBpfProgram.ArpOnly,
        }));
        using PacketTxBatch tx = lab.RunIn(LabHost.Client, () => new PacketTxBatch(new PacketTxBatchOptions("eth0") { Capacity = 4 }));

        byte[] request = new byte[ArpPacket.RequestFrameLength];
        ArpPacket.WriteRequestFrame(request, clientMac, clientAddress, targetAddress);
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
