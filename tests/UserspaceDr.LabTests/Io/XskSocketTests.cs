using System.Buffers.Binary;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Io.Xdp;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Host;
using UserspaceDr.Tests.TestSupport;
using UserspaceDr.Tests.Lab;
using static UserspaceDr.Tests.Io.FrameTestSupport;

namespace UserspaceDr.Tests.Io;

/// <summary>
/// The AF_XDP backend's kernel side against a real kernel: udr's XDP steering program on the balancer's veth, an
/// AF_XDP socket on its queue, and real peers. The program takes what the engine handles (frames to the VIP, ARP for the
/// VIP) and leaves the rest to the kernel; frames changed in place in the UMEM go out through the TX ring and reach the
/// real server (direct routing in miniature); closing the program's link detaches it.
/// </summary>
[Category("Lab")]
[NonParallelizable]
public class XskSocketTests
{
    private const int Port = 9100;

    [SetUp]
    public void RequireRoot() => LabNetwork.RequireRoot();

    [Test]
    public unsafe void Vip_frames_come_to_the_socket_the_kernel_keeps_the_rest_and_frames_sent_in_place_reach_the_server()
    {
        using var lab = new LabNetwork();
        MacAddress lbMac = lab.MacAddressOf(LabHost.Lb);
        MacAddress rs1Mac = lab.MacAddressOf(LabHost.Rs1);
        using XdpSteering steering = lab.RunIn(LabHost.Lb, () => new XdpSteering((int)Interop.IfNameToIndex("eth0"), answerNeighborRequests: true));
        using XskSocket socket = lab.RunIn(LabHost.Lb, () => new XskSocket(new XskSocketOptions("eth0")));
        steering.Register(0, socket.Handle);
        steering.Select(new TrafficSelection([Ipv4Address.Parse(LabNetwork.Vip)], [], [Ipv4Address.Parse(LabNetwork.LbAddress)]));
        Assert.That(lab.Exec(LabHost.Lb, "ip -d link show eth0"), Does.Contain("xdp").And.Contain("prog/xdp id"), "attached");

        // The client resolves the VIP: its ARP request comes to the socket (the engine answers those), not the kernel.
        using Socket client = UdpSocket(lab, LabHost.Client, LabNetwork.ClientAddress);
        SendUdp(client, LabNetwork.Vip, Port, "unresolved");
        List<byte[]> arp = ReceiveFrames(socket, f => EtherType(f) == EtherTypes.Arp, forwardTo: null);
        Assert.That(arp, Has.Count.GreaterThanOrEqualTo(1), "the ARP request for the VIP");
        Assert.That(BinaryPrimitives.ReadUInt32BigEndian(arp[0].AsSpan(14 + 24)), Is.EqualTo(Ipv4Address.Parse(LabNetwork.Vip)));

        // The kernel keeps what is not the engine's: ARP for the balancer's own address, and a datagram to it.
        using (Socket own = UdpSocket(lab, LabHost.Lb, LabNetwork.LbAddress, Port))
        {
            SendUdp(client, LabNetwork.LbAddress, Port, "to-the-balancer");
            Assert.That(ReceiveUdp(own, 1), Is.EqualTo(new[] { "to-the-balancer" }));
        }

        // Datagrams to the VIP, forwarded by rewriting the MACs in the UMEM and sending the same chunk. XDP sees frame
        // bytes only: a veth peer's checksum offload (CHECKSUM_PARTIAL, the pseudo-header sum in the field) does not
        // survive it, and the backend's worker completes such checksums; this test, below the worker, has the client
        // send complete ones.
        lab.Exec(LabHost.Client, $"ip neigh replace {LabNetwork.Vip} lladdr {lbMac} dev eth0 && ethtool -K eth0 tx off >/dev/null");
        using Socket server = UdpSocket(lab, LabHost.Rs1, LabNetwork.Vip, Port);
        const int count = 32;
        for (int i = 0; i < count; i++)
        {
            SendUdp(client, LabNetwork.Vip, Port, $"xdp-{i:D2}");
        }
        // (The first datagram, queued while the VIP was unresolved, comes too once the entry is set; it is left out.)
        List<byte[]> forwarded = ReceiveFrames(socket, f => EtherType(f) == EtherTypes.Ipv4 && f.AsSpan(42).StartsWith("xdp-"u8),
            forwardTo: (rs1Mac, lbMac), want: count);
        Assert.That(forwarded, Has.Count.EqualTo(count));
        Assert.That(ReceiveUdp(server, count), Is.EqualTo(Enumerable.Range(0, count).Select(i => $"xdp-{i:D2}")), "in order, intact, at the real server");
        Assert.That(socket.Transmitted, Is.EqualTo(count));
        XskStatistics statistics = socket.Statistics();
        Assert.That(statistics.Dropped + statistics.RxRingFull + statistics.InvalidDescriptors, Is.Zero, statistics.ToString());

        // A selection without the VIP gives its frames back to the kernel.
        steering.Select(new TrafficSelection([], [], []));
        SendUdp(client, LabNetwork.Vip, Port, "to-the-kernel");
        Assert.That(ReceiveFrames(socket, f => EtherType(f) == EtherTypes.Ipv4, forwardTo: null, limit: TimeSpan.FromMilliseconds(500)), Is.Empty);

        socket.Dispose();
        steering.Dispose();
        Assert.That(lab.Exec(LabHost.Lb, "ip -d link show eth0"), Does.Not.Contain("prog/xdp"), "the link's end detached the program");
    }

    /// <summary>
    /// An interface that already runs an XDP program (another balancer, a firewall) is refused with a message that says
    /// so, and nothing of the second attempt is left behind; the first program keeps running.
    /// </summary>
    [Test]
    public void A_second_program_on_the_same_interface_is_refused_with_a_clear_message()
    {
        using var lab = new LabNetwork();
        // (Attached from inside the namespace: a BPF link names its interface by index, in the caller's namespace.)
        int index = lab.RunIn(LabHost.Lb, () => (int)Interop.IfNameToIndex("eth0"));
        using XdpSteering first = lab.RunIn(LabHost.Lb, () => new XdpSteering(index, answerNeighborRequests: false));
        var refused = Assert.Throws<System.ComponentModel.Win32Exception>(() =>
            lab.RunIn(LabHost.Lb, () => new XdpSteering(index, answerNeighborRequests: false)).Dispose());
        Assert.That(refused!.Message, Does.Contain("attaching the XDP program").And.Contain("another XDP program there?"));
        Assert.That(lab.Exec(LabHost.Lb, "ip -d link show eth0"), Does.Contain("prog/xdp"), "the first one stays attached");
        first.Dispose();
        Assert.That(lab.Exec(LabHost.Lb, "ip -d link show eth0"), Does.Not.Contain("prog/xdp"));
    }

    /// <summary>
    /// A multi-queue interface (a veth pair with four queues each way, in a throwaway namespace): each receive queue has
    /// its own socket in the socket map, and flows spread over the queues all reach udr, none left to the kernel.
    /// </summary>
    [Test]
    public void Every_receive_queue_has_its_socket_and_flows_on_all_of_them_arrive()
    {
        const int Queues = 4;
        const int Flows = 64;
        string name = "udrxq" + System.Security.Cryptography.RandomNumberGenerator.GetHexString(8, lowercase: true);
        ProcessRunner.Run("ip", ["netns", "add", name], TimeSpan.FromSeconds(10));
        try
        {
            string Exec(string command)
            {
                CommandResult result = ProcessRunner.Run("ip", ["netns", "exec", name, "sh", "-c", command], TimeSpan.FromSeconds(10));
                Assert.That(result.ExitCode, Is.Zero, command + ": " + result.Error);
                return result.Output;
            }
            Exec($"ip link add t0 numtxqueues {Queues} numrxqueues {Queues} type veth peer name p0 numtxqueues {Queues} numrxqueues {Queues} && " +
                 "ip link set t0 up && ip link set p0 up && ip addr add 198.18.5.1/24 dev p0");
            string t0Mac = Exec("cat /sys/class/net/t0/address").Trim();
            Exec($"ip neigh replace 198.18.5.100 lladdr {t0Mac} dev p0 nud permanent");
            int index = NetworkNamespace.Run(name, () => (int)Interop.IfNameToIndex("t0"));
            using XdpSteering steering = NetworkNamespace.Run(name, () => new XdpSteering(index, answerNeighborRequests: false));
            XskSocket[] sockets = [.. Enumerable.Range(0, Queues).Select(q => NetworkNamespace.Run(name, () => new XskSocket(new XskSocketOptions("t0", q))))];
            try
            {
                for (int q = 0; q < Queues; q++)
                {
                    steering.Register(q, sockets[q].Handle);
                }
                steering.Select(new TrafficSelection([Ipv4Address.Parse("198.18.5.100")], [], []));

                // One socket per flow: the sender's kernel picks each one's transmit queue by its flow hash, and veth
                // hands a frame to the peer's receive queue of the same number.
                NetworkNamespace.Run(name, () =>
                {
                    for (int flow = 0; flow < Flows; flow++)
                    {
                        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                        sender.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("198.18.5.1"), 0));
                        SendUdp(sender, "198.18.5.100", Port, $"flow-{flow}");
                    }
                    return 0;
                });
                int[] perQueue = new int[Queues];
                for (int q = 0; q < Queues; q++)
                {
                    perQueue[q] = ReceiveFrames(sockets[q], f => EtherType(f) == EtherTypes.Ipv4, forwardTo: null, want: Flows,
                        limit: TimeSpan.FromMilliseconds(q == 0 ? 1000 : 200)).Count;
                }
                TestContext.Out.WriteLine($"datagrams per receive queue: {string.Join(", ", perQueue)}");
                Assert.That(perQueue.Sum(), Is.EqualTo(Flows), "every flow reached a socket");
                Assert.That(perQueue.Count(n => n > 0), Is.GreaterThanOrEqualTo(2), "the flows spread over several queues");
            }
            finally
            {
                foreach (XskSocket socket in sockets)
                {
                    socket.Dispose();
                }
            }
        }
        finally
        {
            ProcessRunner.Run("ip", ["netns", "del", name], TimeSpan.FromSeconds(10));
        }
    }

    private static ushort EtherType(byte[] frame) => BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12));

    /// <summary>
    /// Reads frames off the socket until <paramref name="want"/> matched or <paramref name="limit"/> passed; a matching
    /// frame is copied out and, with <paramref name="forwardTo"/>, its MACs rewritten in place and the chunk sent;
    /// every other frame is released.
    /// </summary>
    private static unsafe List<byte[]> ReceiveFrames(XskSocket socket, Func<byte[], bool> match, (MacAddress Destination, MacAddress Source)? forwardTo,
        int want = 1, TimeSpan? limit = null)
    {
        var matched = new List<byte[]>();
        Span<XskFrame> frames = stackalloc XskFrame[64];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (matched.Count < want && clock.Elapsed < (limit ?? TimeSpan.FromSeconds(5)))
        {
            _ = socket.Wait(50);
            int received = socket.Receive(frames);
            for (int i = 0; i < received; i++)
            {
                byte* data = socket.Data(frames[i].Address);
                byte[] copy = new Span<byte>(data, frames[i].Length).ToArray();
                if (!match(copy))
                {
                    socket.Release(frames[i].Address);
                    continue;
                }
                matched.Add(copy);
                if (forwardTo is { } macs)
                {
                    var header = new Span<byte>(data, 12);
                    macs.Destination.Write(header);
                    macs.Source.Write(header[6..]);
                    Assert.That(socket.Transmit(frames[i].Address, frames[i].Length), Is.True);
                }
                else
                {
                    socket.Release(frames[i].Address);
                }
            }
            socket.Flush();
        }
        // Sent frames' chunks come back through the completion ring.
        for (int i = 0; i < 10 && forwardTo is not null; i++)
        {
            socket.Flush();
            Thread.Sleep(10);
        }
        return matched;
    }
}
