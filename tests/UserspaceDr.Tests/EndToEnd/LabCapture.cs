using System.Globalization;
using System.Text.RegularExpressions;
using PacketDotNet;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.Pcap;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>One captured frame, decoded with PacketDotNet down to what the end-to-end assertions look at.</summary>
internal sealed record CapturedPacket(
    long TimestampMicroseconds,
    MacAddress SourceMac,
    MacAddress DestinationMac,
    string? Source,
    string? Destination,
    ProtocolType? Protocol,
    int SourcePort,
    int DestinationPort,
    bool Syn,
    bool Ack,
    bool Rst,
    int TransportPayloadLength)
{
    public bool IsTcp => Protocol == ProtocolType.Tcp;
    public bool IsUdp => Protocol == ProtocolType.Udp;
    public bool IsIcmp => Protocol == ProtocolType.Icmp;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{SourceMac} > {DestinationMac} {Protocol} {Source}:{SourcePort} > {Destination}:{DestinationPort}{(Syn ? " SYN" : "")}{(Rst ? " RST" : "")}{(Ack ? " ACK" : "")} payload {TransportPayloadLength}");

    /// <summary>Decodes an Ethernet frame (possibly cut at the snap length); IP fields stay null for non-IPv4 frames.</summary>
    public static CapturedPacket Decode(long timestampMicroseconds, byte[] frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);
        MacAddress source = MacAddress.Read(ethernet.SourceHardwareAddress.GetAddressBytes());
        MacAddress destination = MacAddress.Read(ethernet.DestinationHardwareAddress.GetAddressBytes());
        if (ethernet.Type != EthernetType.IPv4 || ethernet.PayloadPacket is not IPv4Packet ip)
        {
            return new CapturedPacket(timestampMicroseconds, source, destination, null, null, null, 0, 0, false, false, false, 0);
        }
        // Lengths come from the headers, not from the captured bytes: the capture keeps only the first bytes.
        int transportLength = ip.TotalLength - (ip.HeaderLength * 4);
        return ip.PayloadPacket switch
        {
            TcpPacket tcp => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                tcp.SourcePort, tcp.DestinationPort, tcp.Synchronize, tcp.Acknowledgment, tcp.Reset, transportLength - (tcp.DataOffset * 4)),
            UdpPacket udp => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                udp.SourcePort, udp.DestinationPort, false, false, false, transportLength - 8),
            _ => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                0, 0, false, false, false, transportLength),
        };
    }
}

/// <summary>
/// tcpdump on a lab host's eth0 writing a pcap file, read back and decoded when stopped. Immediate mode and
/// packet-buffered output matter: without them tcpdump counts frames "received by filter" that never reach the
/// file when it is stopped, and an assertion that something is absent would pass on an empty capture.
/// </summary>
internal sealed partial class LabCapture : IDisposable
{
    private readonly NamespacedProcess _tcpdump;
    private readonly string _path;
    private IReadOnlyList<CapturedPacket>? _packets;

    private readonly Action<string> _log;

    private LabCapture(NamespacedProcess tcpdump, string path, Action<string> log)
    {
        _tcpdump = tcpdump;
        _path = path;
        _log = log;
    }

    /// <summary>Frames the kernel dropped before tcpdump could read them (from tcpdump's final report).</summary>
    public int DroppedByKernel { get; private set; }

    public static LabCapture Start(LabNetwork lab, LabHost host, string path, string filter, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(lab);
        NamespacedProcess tcpdump = NamespacedProcess.Start(lab.Namespace(host), $"tcpdump on {LabNetwork.HostName(host)}", null, false,
            "tcpdump", "-i", "eth0", "-n", "--immediate-mode", "-U", "-Z", "root", "-B", "8192", "-s", "128", "-w", path, filter);
        if (tcpdump.WaitForLine(l => l.Contains("listening on", StringComparison.Ordinal), TimeSpan.FromSeconds(20)) == null)
        {
            string output = tcpdump.Output;
            tcpdump.Dispose();
            throw new InvalidOperationException($"tcpdump on {LabNetwork.HostName(host)} did not start: {output}");
        }
        return new LabCapture(tcpdump, path, log);
    }

    /// <summary>Stops tcpdump (SIGINT: it flushes and reports) and decodes everything it wrote.</summary>
    public IReadOnlyList<CapturedPacket> Stop()
    {
        if (_packets != null)
        {
            return _packets;
        }
        if (!_tcpdump.Stop(NamespacedProcess.SigInt, TimeSpan.FromSeconds(15)))
        {
            throw new InvalidOperationException($"{_tcpdump} did not stop on SIGINT: {_tcpdump.Output}");
        }
        Match dropped = DroppedPattern().Match(_tcpdump.Output);
        DroppedByKernel = dropped.Success ? int.Parse(dropped.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
        _packets = [.. PcapFile.Read(_path).Select(r => CapturedPacket.Decode(r.TimestampMicroseconds, r.Data))];
        _log(string.Create(CultureInfo.InvariantCulture, $"{_tcpdump.Name}: {_packets.Count} frames, {DroppedByKernel} dropped by the kernel"));
        return _packets;
    }

    public void Dispose() => _tcpdump.Dispose();

    [GeneratedRegex(@"(\d+) packets? dropped by kernel")]
    private static partial Regex DroppedPattern();
}
