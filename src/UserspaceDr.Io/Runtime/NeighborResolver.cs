using System.Buffers.Binary;
using System.Globalization;
using Microsoft.Extensions.Logging;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;

namespace UserspaceDr.Io.Runtime;

/// <summary>
/// Learns and keeps fresh the MACs of the real servers udr sends to. Seeds from the kernel's neighbour table
/// (/proc/net/arp), then speaks ARP itself on its own small ring: it asks for every wanted address that is not
/// resolved (each second) and re-asks for resolved ones (every 30 s), and learns from any ARP frame whose sender is
/// a wanted address (so a real server's gratuitous ARP after a NIC swap is picked up at once). Each change publishes
/// a new immutable <see cref="NeighborTable"/>; until an address resolves, frames for it are counted as
/// neighbor-unresolved, never sent to a wrong MAC.
/// </summary>
public sealed class NeighborResolver : IDisposable
{
    private const int RetryUnresolvedMs = 1000;
    private const int RefreshResolvedMs = 30_000;

    private readonly NetworkInterfaceInfo _interface;
    private readonly Action<NeighborTable> _publish;
    private readonly ILogger _log;
    private readonly PacketRxRing _arpRing;
    private readonly PacketTxBatch _arpTx;
    private readonly byte[] _request = GC.AllocateArray<byte>(64, pinned: true);
    private readonly Dictionary<uint, long> _lastAsked = [];
    private readonly Dictionary<uint, long> _lastFailureLog = [];
    private uint[] _wanted = [];
    private NeighborTable _table = NeighborTable.Empty;
    private Thread? _thread;
    private volatile bool _stopping;

    public NeighborResolver(NetworkInterfaceInfo networkInterface, Action<NeighborTable> publish, ILogger log)
    {
        ArgumentNullException.ThrowIfNull(networkInterface);
        _interface = networkInterface;
        _publish = publish;
        _log = log;
        _arpRing = new PacketRxRing(new PacketRxRingOptions(networkInterface.Name)
        {
            BlockSize = 1 << 16,
            BlockCount = 2,
            RetireTimeoutMs = 10,
            Filter = ArpOnly,
        });
        _arpTx = new PacketTxBatch(new PacketTxBatchOptions(networkInterface.Name) { Capacity = 16 });
    }

    /// <summary>ldh [12]; jeq #0x0806 → accept; else drop.</summary>
    private static ClassicBpfProgram ArpOnly { get; } = new([
        new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, 12),
        new(ClassicBpfInstruction.JumpIfEqual, 0, 1, EtherTypes.Arp),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, uint.MaxValue),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, 0),
    ]);

    public NeighborTable Current => Volatile.Read(ref _table);

    /// <summary>Sets the addresses to resolve (the real servers of the rule set in force).</summary>
    public void SetWanted(IEnumerable<uint> addresses) => Volatile.Write(ref _wanted, [.. addresses.Distinct()]);

    public void Start()
    {
        SeedFromKernel();
        _thread = new Thread(Run) { IsBackground = true, Name = "udr-arp" };
        _thread.Start();
    }

    /// <summary>Waits until every wanted address is resolved, or the timeout passes; true when all are.</summary>
    public bool WaitResolved(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Environment.TickCount64 < deadline)
        {
            NeighborTable table = Current;
            if (Volatile.Read(ref _wanted).All(a => table.TryGet(a, out _)))
            {
                return true;
            }
            Thread.Sleep(20);
        }
        return false;
    }

    private void SeedFromKernel()
    {
        var entries = new Dictionary<uint, MacAddress>();
        try
        {
            // IP address  HW type  Flags  HW address  Mask  Device; flags 0x2 = complete.
            foreach (string line in File.ReadLines("/proc/net/arp").Skip(1))
            {
                string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length >= 6 && f[5] == _interface.Name && f[2] == "0x2" &&
                    Ipv4Address.TryParse(f[0], out uint address) && MacAddress.TryParse(f[3], out MacAddress mac) && mac != MacAddress.Zero)
                {
                    entries[address] = mac;
                }
            }
        }
        catch (IOException)
        {
            // No procfs view: ARP alone will do.
        }
        if (entries.Count > 0)
        {
            Update(new NeighborTable(entries));
        }
    }

    private void Update(NeighborTable table)
    {
        Volatile.Write(ref _table, table);
        _publish(table);
    }

    private void Run()
    {
        while (!_stopping)
        {
            try
            {
                if (_arpRing.WaitForBlock(100))
                {
                    foreach (RxFrame frame in _arpRing.CurrentBlockFrames)
                    {
                        Learn(frame.Bytes);
                    }
                    _arpRing.ReleaseBlock();
                }
                AskWhereNeeded(Environment.TickCount64);
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
            {
                Log.ResolverError(_log, e.Message);
                Thread.Sleep(1000);
            }
        }
    }

    private void Learn(Span<byte> frame)
    {
        if (!EthernetFrame.TryParse(frame, out EthernetFrame ethernet) || ethernet.EtherType != EtherTypes.Arp ||
            !ArpPacket.TryCreate(ethernet.Payload, out ArpPacket arp))
        {
            return;
        }
        uint sender = arp.SenderAddress;
        MacAddress mac = arp.SenderMac;
        if (mac == MacAddress.Zero || (mac.Value & 0x0100_0000_0000) != 0 || !Volatile.Read(ref _wanted).Contains(sender))
        {
            return;
        }
        NeighborTable table = Current;
        if (table.TryGet(sender, out NextHop known) && known.Mac == mac)
        {
            return;
        }
        string address = Ipv4Address.Format(sender);
        string what = known.Mac == MacAddress.Zero ? "resolved" : $"changed from {known.Mac}";
        string macText = mac.ToString();
        Log.NeighborLearned(_log, address, macText, what);
        Update(table.With(sender, mac));
    }

    private void AskWhereNeeded(long now)
    {
        NeighborTable table = Current;
        foreach (uint address in Volatile.Read(ref _wanted))
        {
            bool resolved = table.TryGet(address, out _);
            _lastAsked.TryGetValue(address, out long last);
            if (now - last < (resolved ? RefreshResolvedMs : RetryUnresolvedMs))
            {
                continue;
            }
            _lastAsked[address] = now;
            uint? source = _interface.SourceAddressFor(address);
            if (source is null)
            {
                continue;
            }
            SendRequest(source.Value, address);
            if (!resolved && last != 0 && (!_lastFailureLog.TryGetValue(address, out long logged) || now - logged > 30_000))
            {
                _lastFailureLog[address] = now;
                Log.NeighborUnresolved(_log, Ipv4Address.Format(address), _interface.Name);
            }
        }
        if (_arpTx.Count > 0)
        {
            _arpTx.Flush();
        }
    }

    private unsafe void SendRequest(uint source, uint target)
    {
        Span<byte> frame = _request.AsSpan(0, 60);
        frame.Clear();
        MacAddress.Broadcast.Write(frame);
        _interface.Mac.Write(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], EtherTypes.Arp);
        Span<byte> arp = frame[14..];
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);
        BinaryPrimitives.WriteUInt16BigEndian(arp[2..], EtherTypes.Ipv4);
        arp[4] = 6;
        arp[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(arp[6..], ArpOperation.Request);
        _interface.Mac.Write(arp[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(arp[14..], source);
        BinaryPrimitives.WriteUInt32BigEndian(arp[24..], target);
        fixed (byte* start = _request)
        {
            _arpTx.Add(start, 60);
            _arpTx.Flush(); // one request at a time: the buffer is reused
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread?.Join(TimeSpan.FromSeconds(2));
        _arpRing.Dispose();
        _arpTx.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"resolver on {_interface.Name}");
}
