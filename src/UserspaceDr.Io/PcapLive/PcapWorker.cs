using Microsoft.Extensions.Logging;
using SharpPcap;
using SharpPcap.LibPcap;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.Engine;
using UserspaceDr.Io.Runtime;
using UserspaceDr.Linux.Host;

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
    private readonly DataPlaneState _state;
    private readonly ILogger _log;
    private readonly ForwardingEngine _engine;
    private readonly byte[] _frame = new byte[FrameBuffer.RecommendedHeadroom + 65_536 + 64];
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly byte[] _overflow;
    private readonly byte[] _segment = new byte[65_536];
    private readonly byte[] _inbound = new byte[65_536 + 64];
    private readonly int[] _mtus;
    private readonly int _expiryBudget;
    private readonly ConnectionSnapshotSlot _snapshots = new();
    private readonly Lock _engineLock = new();
    private Thread[] _threads = [];
    private long _nextHousekeeping;
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
        _state = state;
        _log = log;
        var table = new ConnectionTable(maxConnections);
        _engine = new ForwardingEngine(options, table);
        _expiryBudget = Math.Max(1024, table.SlotCount / 20);
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

    public WorkerCounters Counters => _engine.Counters;
    public long TransmitErrors => Interlocked.Read(ref _transmitErrors);
    public int LastTransmitErrno => 0;
    public int Connections => _engine.Connections.Count;
    public int ConnectionCapacity => _engine.Connections.Capacity;
    /// <summary>Frames libpcap's buffers had no room for (pcap_stats ps_drop), read by the worker on its housekeeping tick.</summary>
    public long RingDrops => Interlocked.Read(ref _ringDrops);

    private long _ringDrops;

    /// <summary>Housekeeping (expiry sweep, drop statistics) runs on a clock, not per frame: one sweep step reads MBs.</summary>
    private const int HousekeepingIntervalMs = 100;
    public ConnectionSnapshotSlot Snapshots => _snapshots;

    /// <summary>
    /// The same traffic as the AF_PACKET filter: ARP, IPv4 to a VIP, TCP/UDP/ICMP from a NAT real server, ICMP to the
    /// balancer's own addresses (also with one VLAN tag).
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
        if (terms.Count == 0)
        {
            return "arp";
        }
        string ip = "(ip and (" + string.Join(" or ", terms) + "))";
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

    public void Start()
    {
        _threads = [.. Enumerable.Range(0, _devices.Length).Select(link => new Thread(() => Run(link)) { IsBackground = true, Name = $"udr-pcap-{link}" })];
        foreach (Thread thread in _threads)
        {
            thread.Start();
        }
    }

    private void Run(int link)
    {
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
                _snapshots.Close(); // nothing will answer a -L -c request from here on
            }
        }
    }

    /// <summary>Reads one link (blocking, at most the read timeout); every frame and the housekeeping run under the engine lock.</summary>
    private void Loop(int link)
    {
        ForwardingEngine engine = _engine;
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
                    _state.ApplyTo(engine);
                    ReadOnlySpan<byte> data = capture.Data;
                    if (data.Length <= _inbound.Length)
                    {
                        Receive(data, (byte)link, now);
                    }
                }
                if (now >= _nextHousekeeping)
                {
                    Housekeeping(now);
                }
                if (link == 0)
                {
                    _snapshots.Serve(engine.Connections); // ipvsadm -L -c: copied between frames, never during one
                }
            }
        }
    }

    private void Housekeeping(long now)
    {
        _engine.ExpireConnections(now, _expiryBudget);
        long drops = 0;
        foreach (LibPcapLiveDevice device in _devices)
        {
            ICaptureStatistics statistics = device.Statistics;
            drops += (long)statistics.DroppedPackets + statistics.InterfaceDroppedPackets;
        }
        Interlocked.Exchange(ref _ringDrops, drops);
        _nextHousekeeping = now + HousekeepingIntervalMs;
    }

    private void Receive(ReadOnlySpan<byte> data, byte link, long now)
    {
        int linkHeader = data.Length > 13 && data[12] == 0x81 && data[13] == 0x00 ? 18 : 14;
        if (data.Length > _mtus[link] + linkHeader && _engine.Prefetch(data).MayBeTunnelled)
        {
            // An encapsulated super-frame could not be cut after the engine: cut it first, each segment with headroom.
            data.CopyTo(_inbound);
            ReadOnlySpan<byte> whole = _inbound.AsSpan(0, data.Length);
            int segments = TcpSegmentation.SegmentCount(whole, Math.Min(_mtus[link], _engine.Snapshot.SmallestTunnelPayloadMtu), out int payloadPerSegment);
            if (segments == 0)
            {
                Interlocked.Increment(ref _transmitErrors);
                return;
            }
            for (int i = 0; i < segments; i++)
            {
                int length = TcpSegmentation.WriteSegment(whole, i, payloadPerSegment, _frame.AsSpan(FrameBuffer.RecommendedHeadroom));
                Process(length, FrameFlags.None, link, now);
            }
            return;
        }
        data.CopyTo(_frame.AsSpan(FrameBuffer.RecommendedHeadroom));
        // Larger than the link allows: a GRO/GSO super-frame, cut after the engine (SendSegmented), never refused as too big.
        FrameFlags flags = data.Length > _mtus[link] + linkHeader ? FrameFlags.ChecksumUnknown | FrameFlags.Gso : FrameFlags.ChecksumUnknown;
        Process(data.Length, flags, link, now);
    }

    private void Process(int length, FrameFlags flags, byte link, long now)
    {
        var packet = new FrameBuffer(_frame, FrameBuffer.RecommendedHeadroom, length, flags, link) { Overflow = _overflow };
        Verdict verdict = _engine.Process(ref packet, now, _reply, out int replyLength);
        if (verdict == Verdict.Transmit)
        {
            SendSegmented(packet.Frame, packet.Link);
            if (packet.OverflowLength > 0)
            {
                Send(_overflow.AsSpan(0, packet.OverflowLength), packet.Link);
            }
        }
        else if (verdict == Verdict.Reply)
        {
            Send(_reply.AsSpan(0, replyLength), packet.Link); // the ingress link, or the client's for a relayed frag-needed
        }
    }

    /// <summary>
    /// libpcap hands over GRO/GSO super-frames as they are; they cannot leave as one frame. TCP ones are cut into
    /// MTU-sized segments in software; anything else that does not fit is counted as a transmit error.
    /// </summary>
    private void SendSegmented(ReadOnlySpan<byte> frame, byte link)
    {
        int mtu = link < _mtus.Length ? _mtus[link] : _mtus[0];
        int linkHeader = frame.Length > 13 && frame[12] == 0x81 && frame[13] == 0x00 ? 18 : 14;
        if (frame.Length <= mtu + linkHeader)
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
        _engine.Connections.Clear();
        foreach (LibPcapLiveDevice device in _devices)
        {
            device.Close();
            device.Dispose();
        }
    }
}
