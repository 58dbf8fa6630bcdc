using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using PacketDotNet;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Tests.Io;
using UserspaceDr.Tests.Lab;
using static UserspaceDr.Tests.Node.IpipPackets;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Node;

/// <summary>
/// `udr node tunnel` in a real server of the namespace lab: the balancer's IP-in-IP packets are built by hand and sent
/// from the lb namespace through a raw IPPROTO_RAW socket, and what rs1 answers is captured at the client. This kernel
/// has no ipip module, so the endpoint is the user-space one (raw IPPROTO_IPIP socket → TUN device udrtun0).
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class NodeTunnelLabTests
{
    private const string Device = "udrtun0";
    private const ushort EchoPort = 7777;
    private const ushort ClientUdpPort = 5555;
    private const ushort ClientTcpPort = 40001;
    private const uint SynSequence = 0x0C0FFEE0;
    private static readonly TimeSpan CaptureTime = TimeSpan.FromSeconds(2);

    /// <summary>The command the tests start the endpoint with (others reuse it for end-to-end TUN tests).</summary>
    public static string TunnelCommand(string vip = LabNetwork.Vip) =>
        $"exec {NodeLab.UdrPath} node tunnel --vip {vip} --mode user --stats-interval 1";

    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public void The_real_server_answers_tunnelled_udp_and_tcp_directly_from_the_vip_and_drops_wrong_outer_or_inner_destinations()
    {
        using var lab = new LabNetwork();
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        using var echo = new UdpEcho(lab, LabHost.Rs1, LabNetwork.Vip, EchoPort);
        // Bound to rs1's own address: anything the endpoint wrongly delivered to a non-VIP destination would land here.
        using Socket trap = FrameTestSupport.UdpSocket(lab, LabHost.Rs1, LabNetwork.Rs1Address, EchoPort);
        using TcpListener web = lab.RunIn(LabHost.Rs1, () =>
        {
            var listener = new TcpListener(IPAddress.Parse(LabNetwork.Vip), 80);
            listener.Start();
            return listener;
        });
        using Socket raw = lab.RunIn(LabHost.Lb, () => new Socket(AddressFamily.InterNetwork, SocketType.Raw, System.Net.Sockets.ProtocolType.Raw));
        using Socket icmpAtLb = lab.RunIn(LabHost.Lb, () => new Socket(AddressFamily.InterNetwork, SocketType.Raw, System.Net.Sockets.ProtocolType.Icmp));
        icmpAtLb.ReceiveTimeout = 200;
        var rs1 = new IPEndPoint(IPAddress.Parse(LabNetwork.Rs1Address), 0);

        byte[] udpHello = Ipip(LabNetwork.LbAddress, LabNetwork.Rs1Address,
            InnerUdp(LabNetwork.ClientAddress, LabNetwork.Vip, ClientUdpPort, EchoPort, "tunnelled hello"));

        // Control: without the endpoint the same packet goes unanswered, and rs1's kernel says "protocol unreachable".
        using (PacketRxRing ring = ClientCapture(lab))
        {
            raw.SendTo(udpHello, rs1);
            Assert.That(AnswersFromVip(FrameTestSupport.Drain(ring, CaptureTime)), Is.Empty, "no endpoint, no answer");
        }
        Assert.That(ProtocolUnreachables(icmpAtLb), Is.EqualTo(1), "without an endpoint the node's kernel refuses protocol 4");

        using LabProcess endpoint = lab.StartProcess(LabHost.Rs1, TunnelCommand());
        WaitForDeviceUp(lab, endpoint);

        List<Packet> answers;
        using (PacketRxRing ring = ClientCapture(lab))
        {
            raw.SendTo(udpHello, rs1);
            raw.SendTo(Ipip(LabNetwork.LbAddress, LabNetwork.Rs1Address,
                InnerTcpSyn(LabNetwork.ClientAddress, LabNetwork.Vip, ClientTcpPort, 80, SynSequence)), rs1);
            // Outer destination the VIP (rs1 has it on lo, so its kernel delivers the packet locally): not this node.
            raw.SendTo(Ipip(LabNetwork.LbAddress, LabNetwork.Vip,
                InnerUdp(LabNetwork.ClientAddress, LabNetwork.Vip, ClientUdpPort, EchoPort, "wrong outer")), rs1);
            // Inner destination rs1's own address: not a VIP served here.
            raw.SendTo(Ipip(LabNetwork.LbAddress, LabNetwork.Rs1Address,
                InnerUdp(LabNetwork.ClientAddress, LabNetwork.Rs1Address, ClientUdpPort, EchoPort, "not a vip")), rs1);
            // The whole capture time, not just until two answers: an answer to a packet that should have been dropped
            // would come after them.
            List<CapturedFrame> frames = AnswersFromVip(FrameTestSupport.Drain(ring, CaptureTime));
            Assert.That(frames.Select(f => f.SourceMac), Is.All.EqualTo(rs1Mac), "every answer comes straight from rs1, not through the balancer");
            answers = [.. frames.Select(f => Packet.ParsePacket(LinkLayers.Ethernet, f.Bytes))];
        }

        UdpPacket[] udp = [.. answers.Select(a => a.Extract<UdpPacket>()).OfType<UdpPacket>()];
        Assert.That(udp.Select(u => Encoding.ASCII.GetString(u.PayloadData)), Is.EqualTo(new[] { "echo: tunnelled hello" }));
        Assert.That((udp[0].SourcePort, udp[0].DestinationPort), Is.EqualTo((EchoPort, ClientUdpPort)));
        TcpPacket[] tcp = [.. answers.Select(a => a.Extract<TcpPacket>()).OfType<TcpPacket>()];
        // The client's kernel resets the unexpected SYN-ACK towards the VIP, which is the balancer's: rs1 never hears
        // of it and retransmits after a second. So: at least one, and every one the same SYN-ACK.
        Assert.That(tcp, Is.Not.Empty, "the VIP's listener answered the tunnelled SYN");
        Assert.That(tcp.Select(t => (t.Synchronize, t.Acknowledgment, t.AcknowledgmentNumber, t.SourcePort, t.DestinationPort)),
            Is.All.EqualTo((true, true, SynSequence + 1, (ushort)80, ClientTcpPort)));
        Assert.That(echo.Received, Is.EqualTo(new[] { "tunnelled hello" }), "the packet with the wrong outer destination never reached the VIP");
        trap.ReceiveTimeout = 300;
        Assert.That(FrameTestSupport.ReceiveUdp(trap, 1), Is.Empty, "the packet for a non-VIP destination was not delivered");
        Assert.That(ProtocolUnreachables(icmpAtLb), Is.Zero, "with the endpoint's raw socket open, the node's kernel stays quiet");

        // SIGTERM: a clean exit that names every drop, and the TUN device is gone.
        lab.Exec(LabHost.Rs1, $"kill -TERM {endpoint.Id}");
        Assert.That(endpoint.WaitForExit(TimeSpan.FromSeconds(15)), Is.True, "udr node tunnel ends on SIGTERM");
        Assert.That(endpoint.ExitCode, Is.Zero, endpoint.Error + endpoint.Output);
        Assert.That(endpoint.Output, Does.Contain("udr node tunnel (user) on udrtun0 for 198.18.0.100")
            .And.Contain("stopped: udrtun0 removed")
            .And.Contain("received 4 ").And.Contain("delivered 2 ").And.Contain("dropped 2: outer-not-local=1 inner-not-vip=1;"));
        Assert.That(lab.Exec(LabHost.Rs1, "ip -o link show").Split('\n'), Has.None.Contains(Device));
    }

    [Test]
    public void With_two_queues_each_tunnelled_flow_is_delivered_once_and_both_queues_take_flows()
    {
        const int Flows = 32;
        using var lab = new LabNetwork();
        using LabProcess endpoint = lab.StartProcess(LabHost.Rs1, TunnelCommand() + " --queues 2");
        WaitForDeviceUp(lab, endpoint);
        Assert.That(lab.Exec(LabHost.Rs1, $"ip -d link show dev {Device}"), Does.Contain("multi_queue").And.Contain("numqueues 2"));

        // One datagram per flow, each from another client port: the flows are split between the queues by that port.
        SendFlowsAndCheckEachDeliveredOnce(lab, Flows, TimeSpan.Zero);
        Thread.Sleep(1200); // one more --stats-interval 1: the periodic counter line is printed after the last packet

        lab.Exec(LabHost.Rs1, $"kill -TERM {endpoint.Id}");
        Assert.That(endpoint.WaitForExit(TimeSpan.FromSeconds(15)), Is.True, "udr node tunnel ends on SIGTERM");
        Assert.That(endpoint.ExitCode, Is.Zero, endpoint.Error + endpoint.Output);
        Assert.That(endpoint.Output, Does.Contain("(2 queues, a thread each)").And.Contain($"received {Flows} ").And.Contain($"delivered {Flows} "));
        System.Text.RegularExpressions.Match perQueue = System.Text.RegularExpressions.Regex.Match(endpoint.Output, @"received per queue (\d+)/(\d+)");
        Assert.That(perQueue.Success, Is.True, endpoint.Output);
        int first = int.Parse(perQueue.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        int second = int.Parse(perQueue.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That((first + second, first > 0, second > 0), Is.EqualTo((Flows, true, true)), $"per queue {first}/{second}");
        Assert.That(endpoint.Output.Split('\n').Where(l => l.StartsWith("counters: ", StringComparison.Ordinal)),
            Has.Some.Contains($"received {Flows} ").And.Some.Contains("received per queue "), "the periodic line shows the split too");
        Assert.That(lab.Exec(LabHost.Rs1, "ip -o link show").Split('\n'), Has.None.Contains(Device), "the last queue closed took the device");
    }

    [Test]
    public void With_busy_polling_packets_close_together_are_taken_without_a_wake_up_and_each_delivered_once()
    {
        const int Flows = 64;
        using var lab = new LabNetwork();
        using LabProcess endpoint = lab.StartProcess(LabHost.Rs1, TunnelCommand() + " --busy-poll-usecs 1000");
        WaitForDeviceUp(lab, endpoint);

        // A datagram every 100 µs: each comes inside the 1 ms the endpoint spins after the one before.
        SendFlowsAndCheckEachDeliveredOnce(lab, Flows, TimeSpan.FromMicroseconds(100));

        lab.Exec(LabHost.Rs1, $"kill -TERM {endpoint.Id}");
        Assert.That(endpoint.WaitForExit(TimeSpan.FromSeconds(15)), Is.True, "udr node tunnel ends on SIGTERM");
        Assert.That(endpoint.ExitCode, Is.Zero, endpoint.Error + endpoint.Output);
        Assert.That(endpoint.Output, Does.Contain("udr node tunnel (user)").And.Contain($"delivered {Flows} "));
        System.Text.RegularExpressions.Match spun = System.Text.RegularExpressions.Regex.Match(endpoint.Output, @"busy polling: (\d+) turn\(s\) took packets without a wake-up");
        Assert.That(spun.Success, Is.True, endpoint.Output);
        Assert.That(int.Parse(spun.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), Is.Positive, endpoint.Output);
    }

    /// <summary>
    /// From the balancer, one IP-in-IP datagram to rs1 for each of <paramref name="flows"/> client ports,
    /// <paramref name="gap"/> apart (spun, not slept: a sleep is a millisecond at best); then rs1's echo server must have
    /// each exactly once.
    /// </summary>
    private static void SendFlowsAndCheckEachDeliveredOnce(LabNetwork lab, int flows, TimeSpan gap)
    {
        using var echo = new UdpEcho(lab, LabHost.Rs1, LabNetwork.Vip, EchoPort);
        using Socket raw = lab.RunIn(LabHost.Lb, () => new Socket(AddressFamily.InterNetwork, SocketType.Raw, System.Net.Sockets.ProtocolType.Raw));
        var rs1 = new IPEndPoint(IPAddress.Parse(LabNetwork.Rs1Address), 0);
        string[] sent = [.. Enumerable.Range(0, flows).Select(flow => $"flow {flow}")];
        for (int flow = 0; flow < flows; flow++)
        {
            raw.SendTo(Ipip(LabNetwork.LbAddress, LabNetwork.Rs1Address,
                InnerUdp(LabNetwork.ClientAddress, LabNetwork.Vip, (ushort)(ClientUdpPort + flow), EchoPort, sent[flow])), rs1);
            var since = Stopwatch.StartNew();
            while (since.Elapsed < gap)
            {
                Thread.SpinWait(10);
            }
        }
        var clock = Stopwatch.StartNew();
        while (echo.Received.Length < flows && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(50);
        }
        Thread.Sleep(300); // a packet delivered twice would arrive by now
        Assert.That(echo.Received.Order(StringComparer.Ordinal), Is.EqualTo(sent.Order(StringComparer.Ordinal)), "each flow's datagram delivered exactly once");
    }

    [Test]
    public void It_turns_rp_filter_off_while_it_runs_and_sigint_puts_every_sysctl_back()
    {
        using var lab = new LabNetwork(bareServers: true);
        // Strict reverse-path filtering, as many distributions ship it: it would drop the decapsulated packets.
        lab.Exec(LabHost.Rs2, "ip addr add 198.18.0.100/32 dev lo && sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1");
        string before = NodeLab.Snapshot(lab, LabHost.Rs2);
        using LabProcess endpoint = lab.StartProcess(LabHost.Rs2, TunnelCommand());
        WaitForDeviceUp(lab, endpoint, LabHost.Rs2);
        Assert.That(lab.Exec(LabHost.Rs2, $"sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.{Device}.rp_filter").Split('\n', StringSplitOptions.RemoveEmptyEntries),
            Is.EqualTo(new[] { "0", "0" }));

        lab.Exec(LabHost.Rs2, $"kill -INT {endpoint.Id}");
        Assert.That(endpoint.WaitForExit(TimeSpan.FromSeconds(15)), Is.True, "udr node tunnel ends on SIGINT");
        Assert.That(endpoint.ExitCode, Is.Zero, endpoint.Error + endpoint.Output);
        Assert.That(endpoint.Output, Does.Contain("sysctl net.ipv4.conf.all.rp_filter: 1 -> 0").And.Contain("received 0 "));
        Assert.That(NodeLab.Snapshot(lab, LabHost.Rs2), Is.EqualTo(before), "every sysctl and address as before, and no udrtun0");
    }

    [Test]
    public void Bad_input_exits_2_with_a_message_and_leaves_no_device()
    {
        using var lab = new LabNetwork();
        string before = NodeLab.Snapshot(lab, LabHost.Rs1);
        var cases = new List<(string[] Arguments, bool AsNobody, string Message)>
        {
            (["node", "tunnel", "--vip", "198.18.0.300"], false, "'198.18.0.300' is not an IPv4 or IPv6 address"),
            (["node", "tunnel", "--vip", "2001:2::100", "--mode", "kernel"], false, "--mode kernel: the kernel endpoint here is tunl0 (IPv4 in IPv4) only"),
            (["node", "tunnel", "--vip", "127.0.0.1"], false, "loopback"),
            (["node", "tunnel", "--vip", LabNetwork.Rs1Address], false, "ARP-speaking interface"),
            (["node", "tunnel", "--vip", LabNetwork.Vip, "--mode", "bogus"], false, "'bogus' not recognized"),
            (["node", "tunnel", "--vip", LabNetwork.Vip, "--device", "a/b"], false, "not a valid interface name"),
            (["node", "tunnel", "--vip", LabNetwork.Vip, "--stats-interval", "-1"], false, "negative"),
            (["node", "tunnel", "--vip", LabNetwork.Vip, "--queues", "0"], false, "--queues: 0 is not 1 to 64"),
            (["node", "tunnel", "--vip", LabNetwork.Vip, "--queues", "2", "--mode", "kernel"], false, "--queues: the kernel's tunl0 is not udr's to split"),
            (["node", "tunnel", "--vip", LabNetwork.Vip], true, "run it as root"),
        };
        if (!lab.Exec(LabHost.Rs1, "ip -o link show").Contains("tunl0", StringComparison.Ordinal))
        {
            cases.Add((["node", "tunnel", "--vip", LabNetwork.Vip, "--mode", "kernel"], false, "--mode kernel: no ipip module"));
        }
        foreach ((string[] arguments, bool asNobody, string message) in cases)
        {
            UdrRun run = NodeLab.Udr(lab, LabHost.Rs1, asNobody, arguments);
            Assert.That(run.ExitCode, Is.EqualTo(2), $"{string.Join(' ', arguments)}: {run}");
            Assert.That(run.Error, Does.Contain(message), string.Join(' ', arguments));
            Assert.That(NodeLab.Snapshot(lab, LabHost.Rs1), Is.EqualTo(before), string.Join(' ', arguments));
        }

        // A device of that name already there (another endpoint, say): refused, and the other device is left alone.
        lab.Exec(LabHost.Rs1, $"ip tuntap add dev {Device} mode tun");
        UdrRun taken = NodeLab.Udr(lab, LabHost.Rs1, "node", "tunnel", "--vip", LabNetwork.Vip, "--mode", "user");
        Assert.That(taken.ExitCode, Is.EqualTo(2), taken.ToString());
        Assert.That(taken.Error, Does.Contain($"device {Device} already exists"));
        Assert.That(lab.Exec(LabHost.Rs1, $"ip -o link show dev {Device}"), Does.Contain(Device));
    }

    private static PacketRxRing ClientCapture(LabNetwork lab)
    {
        var ipv4Only = new ClassicBpfProgram([
            new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, 12),
            new(ClassicBpfInstruction.JumpIfEqual, 0, 1, EtherTypes.Ipv4),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, uint.MaxValue),
            new(ClassicBpfInstruction.ReturnConstant, 0, 0, 0),
        ]);
        return lab.RunIn(LabHost.Client, () => new PacketRxRing(new PacketRxRingOptions("eth0")
        {
            BlockSize = 1 << 16,
            BlockCount = 4,
            RetireTimeoutMs = 10,
            Filter = ipv4Only,
        }));
    }

    /// <summary>Frames arriving at the client from the VIP to the client.</summary>
    private static List<CapturedFrame> AnswersFromVip(List<CapturedFrame> frames) =>
    [
        .. frames.Where(f => f.IsIpv4 && f.Source == Ipv4Address.Parse(LabNetwork.Vip) && f.Destination == Ipv4Address.Parse(LabNetwork.ClientAddress)),
    ];

    /// <summary>ICMP destination-unreachable/protocol-unreachable messages from rs1 that reached the balancer since the last call.</summary>
    private static int ProtocolUnreachables(Socket icmp)
    {
        byte[] buffer = new byte[2048];
        int count = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            int length;
            try
            {
                length = icmp.Receive(buffer);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                break;
            }
            int headerLength = (buffer[0] & 0x0F) * 4;
            if (length >= headerLength + 2 && buffer[headerLength] == 3 && buffer[headerLength + 1] == 2 &&
                new Ipv4Header(buffer).Source == Ipv4Address.Parse(LabNetwork.Rs1Address))
            {
                count++;
            }
        }
        return count;
    }

    private static void WaitForDeviceUp(LabNetwork lab, LabProcess endpoint, LabHost host = LabHost.Rs1)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (endpoint.HasExited)
            {
                Assert.Fail($"udr node tunnel ended early: exit {endpoint.ExitCode}\n{endpoint.Output}{endpoint.Error}");
            }
            if (lab.Exec(host, $"ip -o link show dev {Device} 2>/dev/null || true").Contains(",UP", StringComparison.Ordinal))
            {
                return;
            }
            Thread.Sleep(100);
        }
        Assert.Fail($"{Device} did not come up within 30 s");
    }
}

/// <summary>A UDP echo server inside a lab host: answers "echo: PAYLOAD" from the address it is bound to, and keeps what it got.</summary>
internal sealed class UdpEcho : IDisposable
{
    private readonly Socket _socket;
    private readonly Thread _thread;
    private readonly List<string> _received = [];
    private volatile bool _stopping;

    public UdpEcho(LabNetwork lab, LabHost host, string address, int port)
    {
        _socket = FrameTestSupport.UdpSocket(lab, host, address, port);
        _socket.ReceiveTimeout = 100;
        _thread = new Thread(Serve) { IsBackground = true, Name = "udp echo" };
        _thread.Start();
    }

    public string[] Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread.Join(TimeSpan.FromSeconds(5));
        _socket.Dispose();
    }

    private void Serve()
    {
        byte[] buffer = new byte[2048];
        EndPoint peer = new IPEndPoint(IPAddress.Any, 0);
        // Bounded: at most 1000 datagrams, and it ends with the test.
        for (int served = 0; !_stopping && served < 1000;)
        {
            int length;
            try
            {
                length = _socket.ReceiveFrom(buffer, ref peer);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.TimedOut or SocketError.WouldBlock)
            {
                continue;
            }
            string text = Encoding.ASCII.GetString(buffer, 0, length);
            lock (_received)
            {
                _received.Add(text);
            }
            _socket.SendTo(Encoding.ASCII.GetBytes("echo: " + text), peer);
            served++;
        }
    }
}
