using Microsoft.Extensions.Logging;
using SharpPcap;
using SharpPcap.LibPcap;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// The portable path: the same engine over libpcap (SharpPcap's live device). One worker, one send() per frame
/// (SharpPcap's SendPacket), a copy per frame out of libpcap's buffer: slower than the AF_PACKET ring, but it runs
/// wherever libpcap does. libpcap gives no checksum-offload status, so frames are marked "checksum unknown" and
/// the engine finishes a TCP/UDP checksum that still holds only the pseudo-header seed (what offload leaves behind).
/// GSO super-frames larger than the link MTU cannot be re-emitted through libpcap as they are: TCP ones are segmented
/// in software (the AF_PACKET backend hands them back to the kernel with a virtio_net_hdr instead).
/// </summary>
public sealed class PcapWorker : IFrameWorker
{
    private readonly LibPcapLiveDevice _device;
    private readonly DataPlaneState _state;
    private readonly ILogger _log;
    private readonly ForwardingEngine _engine;
    private readonly byte[] _frame = new byte[65_536 + 64];
    private readonly byte[] _reply = new byte[ReplyBuilder.MaxReplyLength];
    private readonly byte[] _segment = new byte[65_536];
    private readonly int _mtu;
    private readonly int _expiryBudget;
    private readonly ConnectionSnapshotSlot _snapshots = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private long _transmitErrors;

    public PcapWorker(string interfaceName, int mtu, DataPlaneState state, EngineOptions options, int maxConnections,
        IReadOnlyCollection<uint> virtualAddresses, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(state);
        _mtu = mtu;
        _state = state;
        _log = log;
        var table = new ConnectionTable(maxConnections);
        _engine = new ForwardingEngine(options, table);
        _expiryBudget = Math.Max(1024, table.SlotCount / 20);
        _device = LibPcapLiveDeviceList.New().FirstOrDefault(d => d.Name == interfaceName)
            ?? throw new InvalidOperationException($"libpcap does not know interface {interfaceName}");
        _device.Open(new DeviceConfiguration
        {
            Mode = DeviceModes.None,
            ReadTimeout = 100,
            Snaplen = 65_536,
            Immediate = true,
            // Immediate mode makes libpcap use TPACKET_V2: one fixed slot per frame, sized for the snap length (about
            // 64 KiB), so libpcap's default 2 MiB buffer holds only ~32 frames and a burst beyond that is dropped by
            // the kernel, uncounted. 32 MiB gives ~500 slots.
            BufferSize = 32 << 20,
        });
        _device.Filter = Filter(virtualAddresses);
    }

    public WorkerCounters Counters => _engine.Counters;
    public long TransmitErrors => Interlocked.Read(ref _transmitErrors);
    public int LastTransmitErrno => 0;
    public int Connections => _engine.Connections.Count;
    public int ConnectionCapacity => _engine.Connections.Capacity;
    /// <summary>Frames libpcap's buffer had no room for (pcap_stats ps_drop), read by the worker on its housekeeping tick.</summary>
    public long RingDrops => Interlocked.Read(ref _ringDrops);

    private long _ringDrops;

    /// <summary>Housekeeping (expiry sweep, drop statistics) runs on a clock, not per frame: one sweep step reads MBs.</summary>
    private const int HousekeepingIntervalMs = 100;
    public ConnectionSnapshotSlot Snapshots => _snapshots;

    /// <summary>The same traffic as the AF_PACKET filter: ARP, and IPv4 to a VIP (also with one VLAN tag).</summary>
    private static string Filter(IReadOnlyCollection<uint> virtualAddresses)
    {
        if (virtualAddresses.Count == 0)
        {
            return "arp";
        }
        string hosts = string.Join(" or ", virtualAddresses.Select(a => "dst host " + Ipv4Address.Format(a)));
        return $"arp or (ip and ({hosts})) or (vlan and (arp or (ip and ({hosts}))))";
    }

    public void UpdateVirtualAddresses(IReadOnlyCollection<uint> virtualAddresses) => _device.Filter = Filter(virtualAddresses);

    public void Start()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "udr-pcap" };
        _thread.Start();
    }

    private void Run()
    {
        try
        {
            Loop();
        }
        catch (Exception e) when (e is PcapException or InvalidOperationException)
        {
            Log.WorkerFailed(_log, 0, e.Message);
        }
        finally
        {
            _snapshots.Close(); // nothing will answer a -L -c request from here on
        }
    }

    private void Loop()
    {
        ForwardingEngine engine = _engine;
        long nextHousekeeping = 0;
        while (!_stopping)
        {
            long now = Environment.TickCount64;
            GetPacketStatus status = _device.GetNextPacket(out PacketCapture capture);
            if (status == GetPacketStatus.PacketRead)
            {
                _state.ApplyTo(engine);
                ReadOnlySpan<byte> data = capture.Data;
                if (data.Length <= _frame.Length)
                {
                    Span<byte> frame = _frame.AsSpan(0, data.Length);
                    data.CopyTo(frame);
                    Verdict verdict = engine.Process(frame, FrameFlags.ChecksumUnknown, now, _reply, out int replyLength);
                    if (verdict == Verdict.Transmit)
                    {
                        SendSegmented(frame);
                    }
                    else if (verdict == Verdict.Reply)
                    {
                        Send(_reply.AsSpan(0, replyLength));
                    }
                }
            }
            else if (status == GetPacketStatus.Error)
            {
                throw new InvalidOperationException("libpcap read failed: " + _device.LastError);
            }
            if (now >= nextHousekeeping)
            {
                engine.ExpireConnections(now, _expiryBudget);
                ICaptureStatistics statistics = _device.Statistics;
                Interlocked.Exchange(ref _ringDrops, (long)statistics.DroppedPackets + statistics.InterfaceDroppedPackets);
                nextHousekeeping = now + HousekeepingIntervalMs;
            }
            _snapshots.Serve(engine.Connections); // ipvsadm -L -c: copied between batches, never per frame
        }
    }

    /// <summary>
    /// libpcap hands over GRO/GSO super-frames as they are; they cannot leave as one frame. TCP ones are cut into
    /// MTU-sized segments in software; anything else that does not fit is counted as a transmit error.
    /// </summary>
    private void SendSegmented(ReadOnlySpan<byte> frame)
    {
        int linkHeader = frame.Length > 13 && frame[12] == 0x81 && frame[13] == 0x00 ? 18 : 14;
        if (frame.Length <= _mtu + linkHeader)
        {
            Send(frame);
            return;
        }
        int segments = TcpSegmentation.SegmentCount(frame, _mtu, out int payloadPerSegment);
        if (segments == 0)
        {
            Interlocked.Increment(ref _transmitErrors);
            return;
        }
        for (int i = 0; i < segments; i++)
        {
            int length = TcpSegmentation.WriteSegment(frame, i, payloadPerSegment, _segment);
            Send(_segment.AsSpan(0, length));
        }
    }

    private void Send(ReadOnlySpan<byte> frame)
    {
        try
        {
            _device.SendPacket(frame);
        }
        catch (PcapException)
        {
            Interlocked.Increment(ref _transmitErrors); // e.g. a GSO super-frame larger than the MTU
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        _engine.Connections.Clear();
        _device.Close();
        _device.Dispose();
    }
}
