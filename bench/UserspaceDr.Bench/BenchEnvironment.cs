using System.Collections.Immutable;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Bench;

/// <summary>
/// One DR TCP service (VIP 198.19.0.100:80) with real servers 198.19.1.11 and up and their neighbour entries; clients
/// come from 198.18.0.0/16 (65,536 addresses). Flow <c>n</c> is client address <c>198.18.0.0 + (n mod 2^16)</c>,
/// port <c>1024 + 2049 * (n / 2^16)</c>: 2^16 distinct addresses times up to 31 ports, all distinct.
/// </summary>
internal static class BenchEnvironment
{
    // Lab addresses only (198.18.0.0/15): clients fill 198.18.0.0/16; the VIP and servers live in 198.19.0.0/16.
    public const uint Vip = 0xC613_0064; // 198.19.0.100
    public const ushort VirtualPort = 80;
    public const uint ClientNetwork = 0xC612_0000; // 198.18.0.0/16
    public const int ClientAddresses = 1 << 16;

    public static uint ServerAddress(int index) => 0xC613_0100u + 11u + (uint)index; // 198.19.1.11, ...

    public static MacAddress ServerMac(int index) => new(0x02_00_00_01_00_00UL + (ulong)index);

    public static uint ClientAddress(int flow) => ClientNetwork + (uint)(flow & (ClientAddresses - 1));

    public static ushort ClientPort(int flow) => (ushort)(1024 + (2049 * (flow >> 16)));

    public static ConnectionKey<uint> Key(int flow) => new(IpProtocol.Tcp, ClientAddress(flow), ClientPort(flow), Vip, VirtualPort);

    /// <summary>The port NAT servers listen on (the DNAT rewrites vport 80 to it).</summary>
    public const ushort NatServerPort = 8080;

    /// <summary>The balancer's own address, the outer source of IP-in-IP packets.</summary>
    public const uint BalancerAddress = 0xC613_0002; // 198.19.0.2

    /// <summary>
    /// An engine over one service with <paramref name="servers"/> weight-1 servers using <paramref name="method"/>
    /// (NAT servers listen on <see cref="NatServerPort"/>; tunnels start at <see cref="BalancerAddress"/>), all
    /// neighbours resolved. With <paramref name="serversAtLocalMac"/> every server's neighbour entry is the balancer's
    /// own MAC, so a forwarded frame is still addressed to the balancer and can be fed to the engine again: the engine
    /// does the same work (lookup, two MAC writes), only the value written differs.
    /// </summary>
    public static ForwardingEngine CreateEngine(int capacity, int servers, string scheduler = "rr", bool serversAtLocalMac = false,
        ForwardingMethod method = ForwardingMethod.Route)
    {
        var realServers = ImmutableArray.CreateBuilder<RealServerSpec>(servers);
        var neighbors = new Dictionary<uint, NextHop>(servers);
        ushort port = method == ForwardingMethod.Masquerade ? NatServerPort : VirtualPort;
        for (int i = 0; i < servers; i++)
        {
            realServers.Add(new RealServerSpec(InetAddress.FromIPv4(ServerAddress(i)), port, method, Weight: 1));
            neighbors[ServerAddress(i)] = new NextHop(serversAtLocalMac ? BenchFrames.BalancerMac : ServerMac(i), SourceAddress: BalancerAddress);
        }
        var service = new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(Vip), VirtualPort, scheduler) { RealServers = realServers.MoveToImmutable() };
        return new ForwardingEngine(new EngineOptions { LocalMac = BenchFrames.BalancerMac }, new ConnectionTable<uint>(capacity, seed: 42))
        {
            Snapshot = new EngineSnapshot(RuleSet.Build(new RuleSetSpec([service])), new NeighborTable(neighbors), Timeouts.Default),
        };
    }

    /// <summary>
    /// Establishes flows [<paramref name="first"/>, <paramref name="first"/> + <paramref name="count"/>) by processing a
    /// SYN and then an ACK for each (DR: NONE → SYN_RECV → ESTABLISHED). Throws unless every frame was forwarded.
    /// </summary>
    public static void Establish(ForwardingEngine engine, int first, int count, long nowMs)
    {
        // Headroom in front of each frame, so that tunnel servers can be reached too.
        byte[] buffer = new byte[FrameBuffer.RecommendedHeadroom + BenchFrames.TcpFrameLength(0)];
        byte[] reply = new byte[ReplyBuilder.MaxReplyLength];
        for (int flow = first; flow < first + count; flow++)
        {
            foreach (byte flags in (ReadOnlySpan<byte>)[TcpFlags.Syn, TcpFlags.Ack])
            {
                int length = BenchFrames.WriteTcp(buffer.AsSpan(FrameBuffer.RecommendedHeadroom), ClientAddress(flow), ClientPort(flow), Vip, VirtualPort, flags, 0);
                var packet = new FrameBuffer(buffer, FrameBuffer.RecommendedHeadroom, length);
                FrameReason reason = engine.ProcessWithReason(ref packet, nowMs, reply, out _);
                if (reason != FrameReason.Forwarded)
                {
                    throw new InvalidOperationException($"Setup: flow {flow} flags {flags:x2} gave {reason}.");
                }
            }
        }
        ConnectionTable<uint> table = engine.Connections;
        int probe = table.Find(Key(first + count - 1));
        if (probe < 0 || table.At(probe).State != TcpState.Established)
        {
            throw new InvalidOperationException("Setup: the last flow is not ESTABLISHED.");
        }
    }

    /// <summary>The engine's connection table advised into transparent huge pages, as udr run's EngineHost advises it.</summary>
    public static void BackWithHugePages(ForwardingEngine engine)
    {
        (nint address, long length) = engine.Connections.SlotMemory;
        long backed = Linux.Host.HugePages.Back(address, length);
        Console.WriteLine($"// huge pages: {backed} of {length} bytes of the table ({AnonHugePages()})");
    }

    /// <summary>The process's memory in transparent huge pages, from /proc/self/smaps_rollup (what a run can check).</summary>
    private static string AnonHugePages() =>
        File.ReadLines("/proc/self/smaps_rollup").FirstOrDefault(l => l.StartsWith("AnonHugePages:", StringComparison.Ordinal))?.Trim() ?? "AnonHugePages: unknown";
}
