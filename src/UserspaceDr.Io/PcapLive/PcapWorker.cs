using Microsoft.Extensions.Logging;
using SharpPcap;
using SharpPcap.LibPcap;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.PcapLive;

/// <summary>
/// The portable path: the same engine over libpcap (SharpPcap's live devices, one per served link). One worker, one
/// send() per frame (SharpPcap's SendPacket), a copy per frame out of libpcap's buffer into a buffer with headroom:
/// slower than the AF_PACKET ring, but it runs wherever libpcap does. libpcap gives no checksum-offload status, so
/// frames are marked "checksum unknown" and the engine finishes a TCP/UDP checksum that still holds only the
/// pseudo-header seed (what offload leaves behind). GSO super-frames larger than the link MTU cannot be re-emitted
/// through libpcap as they are: TCP ones are segmented in software (before the engine when tunnel servers are in
/// the rules, since an encapsulated super-frame cannot be segmented after; after it otherwise). Each link has its
/// own reader thread blocked in libpcap; the one engine (NAT needs both directions in one connection table) runs
/// under a lock. Non-blocking reads of several handles in turn cost each frame hundreds of milliseconds here
/// (libpcap's non-blocking mode and immediate mode do not combine well), which breaks TCP.
/// </summary>
public sealed class PcapWorker : IFrameWorker
{
    private readonly LibPcapLiveDevice[] _devices;
    private readonly ILogger _log;
    private readonly EngineHost _host;
    private readonly byte[] _frame = new byte[FrameBuffer.RecommendedHeadroom + 65_536 + 64];
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly byte[] _overflow;
    private readonly byte[] _segment = new byte[65_536];
    private readonly byte[] _inbound = new byte[65_536 + 64];
    private readonly int[] _mtus;
    private readonly Lock _engineLock = new();
    private Thread[] _threads = [];
    private int? _cpu; // --cpus: the CPU every link's thread runs on
    private long _nextStatistics;
    private volatile bool _stopping;
    private long _transmitErrors;

    public PcapWorker(IReadOnlyList<LinkInfo> links, DataPlaneState state, EngineOptions options, int maxConnections,
        TrafficSelection traffic, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(links);
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(traffic);
        _mtus = [.. links.Select(l => l.Mtu)];
        _overflow = new byte[_mtus.Max() + 64];
        _log = log;
        _host = new EngineHost(state, options, maxConnections, ExpiryPolicy.Live);
        _devices = new LibPcapLiveDevice[links.Count];
        try
        {
            for (int i = 0; i < links.Count; i++)
            {
                string name = links[i].Name;
                LibPcapLiveDevice device = LibPcapLiveDeviceList.New().FirstOrDefault(d => d.Name == name)
                    ?? throw new InvalidOperationException($"libpcap does not know interface {name}");
                device.Open(new DeviceConfiguration
                {
                    Mode = DeviceModes.None,
                    ReadTimeout = 100,
                    Snaplen = 65_536,
                    Immediate = true,
                    // Immediate mode makes libpcap use TPACKET_V2: one fixed slot per frame, sized for the snap length
                    // (about 64 KiB), so libpcap's default 2 MiB buffer holds only ~32 frames and a burst beyond that
                    // is dropped by the kernel, uncounted. 32 MiB gives ~500 slots.
                    BufferSize = 32 << 20,
                });
                _devices[i] = device;
                device.Filter = Filter(traffic);
            }
        }
        catch
        {
            foreach (LibPcapLiveDevice? device in _devices)
            {
                device?.Close();
                device?.Dispose();
            }
            throw;
        }
    }

    public WorkerCounters Counters => _host.Counters;
    public long TransmitErrors => Interlocked.Read(ref _transmitErrors);
    public int LastTransmitErrno => 0;
    public int Connections => _host.Connections;
    public int ConnectionCapacity => _host.ConnectionCapacity;
    public int CoalesceWaitMicroseconds => 0; // libpcap hands frames over one by one

    public (long Frames, long Slept) BusyPollTurns => (0, 0); // its readers wait inside libpcap
    /// <summary>Frames libpcap's buffers had no room for (pcap_stats ps_drop), read by the worker on its housekeeping tick.</summary>
    public long RingDrops => Interlocked.Read(ref _ringDrops);

    private long _ringDrops;

    /// <summary>libpcap's drop statistics are read on a clock, not per frame.</summary>
    private const int StatisticsIntervalMs = 100;
    public ConnectionSnapshotSlot Snapshots => _host.Snapshots;

    public SyncInbox SyncInbox => _host.SyncInbox;

    public Core.Connections.SyncOutbox SyncOutbox => _host.Engine.SyncOutbox;

    /// <summary>
    /// The same traffic as the AF_PACKET filter: ARP, IPv4 to a VIP, TCP/UDP/ICMP from a NAT real server, ICMP to the
    /// balancer's own addresses, IPv6 to an IPv6 VIP, TCP/UDP/ICMPv6/fragments from an IPv6 NAT real server and Neighbor
    /// Solicitations (also with one VLAN tag).
    /// </summary>
    public static string Filter(TrafficSelection traffic)
    {
        ArgumentNullException.ThrowIfNull(traffic);
        var terms = new List<string>();
        if (traffic.VirtualAddresses.Count > 0)
        {
            terms.Add("(" + string.Join(" or ", traffic.VirtualAddresses.Select(a => "dst host " + Ipv4Address.Format(a))) + ")");
        }
        if (traffic.NatServers.Count > 0)
        {
            terms.Add("((" + string.Join(" or ", traffic.NatServers.Select(a => "src host " + Ipv4Address.Format(a))) + ") and (tcp or udp or icmp))");
        }
        if (traffic.OwnAddresses.Count > 0)
        {
            terms.Add("(icmp and (" + string.Join(" or ", traffic.OwnAddresses.Select(a => "dst host " + Ipv4Address.Format(a))) + "))");
        }
        var families = new List<string>();
        if (terms.Count > 0)
        {
            families.Add("(ip and (" + string.Join(" or ", terms) + "))");
        }
        if (traffic.Ipv6VirtualAddresses.Count > 0)
        {
            // And Neighbor Solicitations (ICMPv6 type 135 right after the fixed header), as the AF_PACKET filter.
            string natReplies = traffic.Ipv6NatServers.Count == 0 ? "" :
                " or ((" + string.Join(" or ", traffic.Ipv6NatServers.Select(a => "src host " + InetAddress.FromIPv6(a))) +
                ") and (ip6[6] == 6 or ip6[6] == 17 or ip6[6] == 58 or ip6[6] == 44))";
            families.Add("(ip6 and (" + string.Join(" or ", traffic.Ipv6VirtualAddresses.Select(a => "dst host " + InetAddress.FromIPv6(a))) +
                natReplies + " or (ip6[6] == 58 and ip6[40] == 135)))");
        }
        if (families.Count == 0)
        {
            return "arp";
        }
        string ip = string.Join(" or ", families);
        return $"arp or {ip} or (vlan and (arp or {ip}))";
    }

    public void UpdateTraffic(TrafficSelection traffic)
    {
        string filter = Filter(traffic);
        foreach (LibPcapLiveDevice device in _devices)
        {
            device.Filter = filter;
        }
    }

    /// <summary>One worker reads every link: there is no fanout group to steer.</summary>
    public void ReplaceFanoutProgram(ClassicBpfProgram program)
    {
    }

    public void Start(int? cpu = null)
    {
        _cpu = cpu;
        _threads = [.. Enumerable.Range(0, _devices.Length).Select(link => new Thread(() => Run(link)) { IsBackground = true, Name = $"udr-pcap-{link}" })];
        foreach (Thread thread in _threads)
        {
            thread.Start();
        }
    }

    private void Run(int link)
    {
        WorkerPinning.PinCurrentThread(_cpu, _log);
        try
        {
            Loop(link);
        }
        catch (Exception e) when (e is PcapException or InvalidOperationException)
        {
            Log.WorkerFailed(_log, link, e.Message);
        }
        finally
        {
            if (link == 0)
            {
                _host.Stop(); // nothing will answer a -L -c request from here on
            }
        }
    }

    /// <summary>Reads one link (blocking, at most the read timeout); every frame and the housekeeping run under the engine lock.</summary>
    private void Loop(int link)
    {
        EngineHost host = _host;
        LibPcapLiveDevice device = _devices[link];
        while (!_stopping)
        {
            GetPacketStatus status = device.GetNextPacket(out PacketCapture capture);
            if (status == GetPacketStatus.Error)
            {
                throw new InvalidOperationException("libpcap read failed: " + device.LastError);
            }
            long now = Environment.TickCount64;
            lock (_engineLock)
            {
                if (status == GetPacketStatus.PacketRead)
                {
                    host.BeginBatch();
                    ReadOnlySpan<byte> data = capture.Data;
                    if (data.Length <= _inbound.Length)
                    {
                        Receive(data, (byte)link, now);
                    }
                }
                if (now >= _nextStatistics)
                {
                    ReadDropStatistics(now);
                }
                if (link == 0)
                {
                    host.Housekeeping(now); // expiry when due, ipvsadm -L -c: between frames, never during one
                }
            }
        }
    }

    private void ReadDropStatistics(long now)
    {
        long drops = 0;
        foreach (LibPcapLiveDevice device in _devices)
        {
            ICaptureStatistics statistics = device.Statistics;
            drops += (long)statistics.DroppedPackets + statistics.InterfaceDroppedPackets;
        }
        Interlocked.Exchange(ref _ringDrops, drops);
        _nextStatistics = now + StatisticsIntervalMs;
    }

    private void Receive(ReadOnlySpan<byte> data, byte link, long now)
    {
        int mtu = _mtus[link];
        bool superFrame = OffloadPolicy.IsSuperFrame(data, mtu);
        FlowHint hint = superFrame ? _host.Prefetch(data) : default; // read only where the policy needs it
        if (OffloadPolicy.CutBeforeEngine(superFrame, hint))
        {
            // An encapsulated super-frame could not be cut after the engine: cut it first, each segment with headroom.
            data.CopyTo(_inbound);
            ReadOnlySpan<byte> whole = _inbound.AsSpan(0, data.Length);
            int segments = OffloadPolicy.TunnelSegmentCount(whole, mtu, gsoSize: 0, _host.Engine.Snapshot, out int payloadPerSegment);
            if (segments == 0)
            {
                Interlocked.Increment(ref _transmitErrors);
                return;
            }
            for (int i = 0; i < segments; i++)
            {
                int length = TcpSegmentation.WriteSegment(whole, i, payloadPerSegment, _frame.AsSpan(FrameBuffer.RecommendedHeadroom));
                Process(length, FrameFlags.None, link, default, now);
            }
            return;
        }
        data.CopyTo(_frame.AsSpan(FrameBuffer.RecommendedHeadroom));
        // A super-frame that goes to no tunnel is cut after the engine (SendSegmented), never refused as too big.
        Process(data.Length, OffloadPolicy.ReceiveFlagsWithoutHeader(superFrame), link, hint, now);
    }

    private void Process(int length, FrameFlags flags, byte link, FlowHint hint, long now)
    {
        var packet = new FrameBuffer(_frame, FrameBuffer.RecommendedHeadroom, length, flags, link, _overflow);
        packet.Hint = hint; // a statement of its own: see the constructor
        var sink = new DeviceSink(this);
        _host.Forward(ref packet, now, _reply, ref sink);
    }

    /// <summary>Sends what the engine made of a frame through libpcap, cutting a super-frame to the egress link's MTU.</summary>
    private readonly struct DeviceSink(PcapWorker worker) : IFrameSink
    {
        public void Transmit(ref FrameBuffer packet)
        {
            worker.SendSegmented(packet.Frame, packet.Link);
            if (packet.OverflowLength > 0)
            {
                worker.Send(packet.Overflow[..packet.OverflowLength], packet.Link);
            }
        }

        public void Reply(ReadOnlySpan<byte> reply, byte link) => worker.Send(reply, link);
    }

    /// <summary>
    /// libpcap hands over GRO/GSO super-frames as they are; they cannot leave as one frame. TCP ones are cut into
    /// MTU-sized segments in software; anything else that does not fit is counted as a transmit error.
    /// </summary>
    private void SendSegmented(ReadOnlySpan<byte> frame, byte link)
    {
        int mtu = link < _mtus.Length ? _mtus[link] : _mtus[0];
        if (!OffloadPolicy.IsSuperFrame(frame, mtu))
        {
            Send(frame, link);
            return;
        }
        int segments = TcpSegmentation.SegmentCount(frame, mtu, out int payloadPerSegment);
        if (segments == 0)
        {
            Interlocked.Increment(ref _transmitErrors);
            return;
        }
        for (int i = 0; i < segments; i++)
        {
            int length = TcpSegmentation.WriteSegment(frame, i, payloadPerSegment, _segment);
            Send(_segment.AsSpan(0, length), link);
        }
    }

    private void Send(ReadOnlySpan<byte> frame, byte link)
    {
        try
        {
            _devices[link < _devices.Length ? link : 0].SendPacket(frame);
        }
        catch (PcapException)
        {
            Interlocked.Increment(ref _transmitErrors); // e.g. a GSO super-frame larger than the MTU
        }
    }

    public void Dispose()
    {
        _stopping = true;
        foreach (Thread thread in _threads)
        {
            thread.Join(TimeSpan.FromSeconds(2));
        }
        _host.Clear();
        foreach (LibPcapLiveDevice device in _devices)
        {
            device.Close();
            device.Dispose();
        }
    }
}
