using System.Globalization;
using System.Text.RegularExpressions;
using PacketDotNet;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.CaptureFiles;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// One captured frame, decoded with PacketDotNet down to what the end-to-end assertions look at. For an ICMP error or
/// an IP-in-IP packet, the Inner* fields describe the packet it carries (the quoted header, or the encapsulated one).
/// </summary>
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
    /// <summary>IP protocol 4: an IPv4 packet inside IPv4 (IP-in-IP).</summary>
    public const int IpInIpProtocol = 4;

    /// <summary>IP protocol 47: GRE.</summary>
    public const int GreProtocol = 47;

    /// <summary>"gue" or "gre" when the Inner* fields describe a packet carried in GUE or GRE; null otherwise.</summary>
    public string? Encapsulation { get; init; }

    private const int EthernetHeaderLength = 14;

    /// <summary>A TCP FIN.</summary>
    public bool Fin { get; init; }

    public bool IsTcp => Protocol == ProtocolType.Tcp;
    public bool IsUdp => Protocol == ProtocolType.Udp;
    public bool IsIcmp => Protocol == ProtocolType.Icmp;
    public bool IsIpInIp => Protocol is { } p && (int)p == IpInIpProtocol;

    /// <summary>The ICMP type and code (-1 when not ICMP), and the next-hop MTU of a fragmentation-needed.</summary>
    public int IcmpType { get; init; } = -1;
    public int IcmpCode { get; init; } = -1;
    public int IcmpNextHopMtu { get; init; }

    public string? InnerSource { get; init; }
    public string? InnerDestination { get; init; }
    public ProtocolType? InnerProtocol { get; init; }
    public int InnerSourcePort { get; init; }
    public int InnerDestinationPort { get; init; }

    public override string ToString()
    {
        string icmp = IcmpType >= 0 ? string.Create(CultureInfo.InvariantCulture, $" icmp {IcmpType}/{IcmpCode} mtu {IcmpNextHopMtu}") : "";
        string inner = InnerSource != null ? string.Create(CultureInfo.InvariantCulture, $" [{InnerProtocol} {InnerSource}:{InnerSourcePort} > {InnerDestination}:{InnerDestinationPort}]") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{SourceMac} > {DestinationMac} {Protocol} {Source}:{SourcePort} > {Destination}:{DestinationPort}{(Syn ? " SYN" : "")}{(Fin ? " FIN" : "")}{(Rst ? " RST" : "")}{(Ack ? " ACK" : "")} payload {TransportPayloadLength}{icmp}{inner}");
    }

    /// <summary>
    /// Decodes an Ethernet frame (possibly cut at the snap length); IP fields stay null for frames that are neither IPv4
    /// nor IPv6 (IPv6 is decoded to its transport ports, without extension headers or ICMPv6 details).
    /// </summary>
    public static CapturedPacket Decode(long timestampMicroseconds, byte[] frame)
    {
        var ethernet = (EthernetPacket)Packet.ParsePacket(LinkLayers.Ethernet, frame);
        MacAddress source = MacAddress.Read(ethernet.SourceHardwareAddress.GetAddressBytes());
        MacAddress destination = MacAddress.Read(ethernet.DestinationHardwareAddress.GetAddressBytes());
        if (ethernet.Type == EthernetType.IPv6 && ethernet.PayloadPacket is IPv6Packet ip6)
        {
            return ip6.PayloadPacket switch
            {
                TcpPacket tcp => new CapturedPacket(timestampMicroseconds, source, destination, ip6.SourceAddress.ToString(), ip6.DestinationAddress.ToString(),
                    ip6.Protocol, tcp.SourcePort, tcp.DestinationPort, tcp.Synchronize, tcp.Acknowledgment, tcp.Reset, ip6.PayloadLength - (tcp.DataOffset * 4))
                { Fin = tcp.Finished },
                UdpPacket udp => new CapturedPacket(timestampMicroseconds, source, destination, ip6.SourceAddress.ToString(), ip6.DestinationAddress.ToString(),
                    ip6.Protocol, udp.SourcePort, udp.DestinationPort, false, false, false, ip6.PayloadLength - 8),
                _ => Icmpv6(new CapturedPacket(timestampMicroseconds, source, destination, ip6.SourceAddress.ToString(), ip6.DestinationAddress.ToString(),
                    ip6.Protocol, 0, 0, false, false, false, ip6.PayloadLength), frame),
            };
        }
        if (ethernet.Type != EthernetType.IPv4 || ethernet.PayloadPacket is not IPv4Packet ip)
        {
            return new CapturedPacket(timestampMicroseconds, source, destination, null, null, null, 0, 0, false, false, false, 0);
        }
        // Lengths come from the headers, not from the captured bytes: the capture keeps only the first bytes.
        int transportLength = ip.TotalLength - (ip.HeaderLength * 4);
        CapturedPacket packet = ip.PayloadPacket switch
        {
            TcpPacket tcp => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                tcp.SourcePort, tcp.DestinationPort, tcp.Synchronize, tcp.Acknowledgment, tcp.Reset, transportLength - (tcp.DataOffset * 4))
            { Fin = tcp.Finished },
            UdpPacket udp => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                udp.SourcePort, udp.DestinationPort, false, false, false, transportLength - 8),
            _ => new CapturedPacket(timestampMicroseconds, source, destination, ip.SourceAddress.ToString(), ip.DestinationAddress.ToString(), ip.Protocol,
                0, 0, false, false, false, transportLength),
        };
        // The IP payload straight from the frame (the lab's frames are untagged), as far as the snap length kept it.
        int payloadStart = EthernetHeaderLength + (ip.HeaderLength * 4);
        ReadOnlySpan<byte> payload = frame.Length > payloadStart ? frame.AsSpan(payloadStart) : [];
        if (packet.IsIcmp && payload.Length >= 8)
        {
            packet = packet with
            {
                IcmpType = payload[0],
                IcmpCode = payload[1],
                IcmpNextHopMtu = (payload[6] << 8) | payload[7],
            };
            if (payload[0] is 3 or 11 or 12)
            {
                packet = WithInner(packet, payload[8..]);
            }
        }
        else if (packet.IsIpInIp)
        {
            packet = WithInner(packet, payload);
        }
        else if (packet.Protocol is { } gre && (int)gre == GreProtocol && payload.Length >= 4 && ((payload[2] << 8) | payload[3]) == 0x0800)
        {
            // RFC 2784: a 4-byte header, 8 with the C bit (checksum and reserved); IPv4 inside.
            packet = WithInner(packet, payload[((payload[0] & 0x80) != 0 ? 8 : 4)..]) with { Encapsulation = "gre" };
        }
        else if (packet.IsUdp && payload.Length >= 12 + 20 && payload[8] >> 6 == 0 && payload[9] == IpInIpProtocol && payload[12] >> 4 == 4)
        {
            // A GUE version 0 header without options (hlen 0) naming IPv4 (proto_ctype 4) after the UDP header.
            packet = WithInner(packet, payload[12..]) with { Encapsulation = "gue" };
        }
        return packet;
    }

    /// <summary>
    /// An ICMPv6 message right after the fixed header: its type, code and (Packet Too Big) MTU, and for an error the
    /// quoted packet's addresses and ports (its transport header right after its fixed header, as the lab's are).
    /// </summary>
    private static CapturedPacket Icmpv6(CapturedPacket packet, byte[] frame)
    {
        const int Start = EthernetHeaderLength + 40;
        if (packet.Protocol != ProtocolType.IcmpV6 || frame.Length < Start + 8)
        {
            return packet;
        }
        ReadOnlySpan<byte> icmp = frame.AsSpan(Start);
        packet = packet with { IcmpType = icmp[0], IcmpCode = icmp[1], IcmpNextHopMtu = (icmp[6] << 8) | icmp[7] };
        ReadOnlySpan<byte> quoted = icmp[8..];
        if (icmp[0] >= 128 || quoted.Length < 40 || quoted[0] >> 4 != 6)
        {
            return packet;
        }
        var protocol = (ProtocolType)quoted[6];
        bool hasPorts = (protocol is ProtocolType.Tcp or ProtocolType.Udp) && quoted.Length >= 44;
        return packet with
        {
            InnerSource = new System.Net.IPAddress(quoted.Slice(8, 16)).ToString(),
            InnerDestination = new System.Net.IPAddress(quoted.Slice(24, 16)).ToString(),
            InnerProtocol = protocol,
            InnerSourcePort = hasPorts ? (quoted[40] << 8) | quoted[41] : 0,
            InnerDestinationPort = hasPorts ? (quoted[42] << 8) | quoted[43] : 0,
        };
    }

    /// <summary>Reads the addresses and ports of the IPv4 packet (or the start of it) in <paramref name="bytes"/>.</summary>
    private static CapturedPacket WithInner(CapturedPacket packet, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 20 || bytes[0] >> 4 != 4)
        {
            return packet;
        }
        int headerLength = (bytes[0] & 0x0F) * 4;
        var protocol = (ProtocolType)bytes[9];
        bool hasPorts = (protocol is ProtocolType.Tcp or ProtocolType.Udp) && bytes.Length >= headerLength + 4;
        return packet with
        {
            InnerSource = new System.Net.IPAddress(bytes.Slice(12, 4)).ToString(),
            InnerDestination = new System.Net.IPAddress(bytes.Slice(16, 4)).ToString(),
            InnerProtocol = protocol,
            InnerSourcePort = hasPorts ? (bytes[headerLength] << 8) | bytes[headerLength + 1] : 0,
            InnerDestinationPort = hasPorts ? (bytes[headerLength + 2] << 8) | bytes[headerLength + 3] : 0,
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

    public static LabCapture Start(LabNetwork lab, LabHost host, string path, string filter, Action<string> log, string interfaceName = "eth0")
    {
        ArgumentNullException.ThrowIfNull(lab);
        NamespacedProcess tcpdump = NamespacedProcess.Start(lab.Namespace(host), $"tcpdump on {LabNetwork.HostName(host)} {interfaceName}", null, false,
            "tcpdump", "-i", interfaceName, "-n", "--immediate-mode", "-U", "-Z", "root", "-B", "8192", "-s", "128", "-w", path, filter);
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
