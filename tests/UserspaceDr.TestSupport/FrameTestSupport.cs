using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;
using UserspaceDr.Linux;
using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.Io;

/// <summary>A frame copied out of the ring, with what the tests look at parsed out.</summary>
internal sealed class CapturedFrame
{
    public required byte[] Bytes { get; init; }
    public required PacketStatus Status { get; init; }
    public required ushort VlanTci { get; init; }
    public required int Headroom { get; init; }
    public required int WireLength { get; init; }
    public VirtioNetHeader? VirtioNetHeader { get; init; }

    public ushort OuterEtherType => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(12));
    public bool IsTagged => OuterEtherType == EtherTypes.Vlan;
    public int NetworkOffset => IsTagged ? 18 : 14;
    public ushort EtherType => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(NetworkOffset - 2));
    public bool IsArp => EtherType == EtherTypes.Arp;
    public bool IsIpv4 => EtherType == EtherTypes.Ipv4 && Bytes.Length >= NetworkOffset + 20;
    public int IpHeaderLength => (Bytes[NetworkOffset] & 0x0F) * 4;
    public byte Protocol => Bytes[NetworkOffset + 9];
    public uint Source => BinaryPrimitives.ReadUInt32BigEndian(Bytes.AsSpan(NetworkOffset + 12));
    public uint Destination => BinaryPrimitives.ReadUInt32BigEndian(Bytes.AsSpan(NetworkOffset + 16));
    public int IpTotalLength => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(NetworkOffset + 2));
    public int TransportOffset => NetworkOffset + IpHeaderLength;
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(TransportOffset + 2));
    public bool IsUdp => IsIpv4 && Protocol == IpProtocol.Udp;
    public bool IsTcp => IsIpv4 && Protocol == IpProtocol.Tcp;
    public MacAddress DestinationMac => MacAddress.Read(Bytes);
    public MacAddress SourceMac => MacAddress.Read(Bytes.AsSpan(6));

    public bool IsUdpTo(string address, int port) =>
        IsUdp && Destination == Ipv4Address.Parse(address) && DestinationPort == port;

    public string UdpPayloadText => Encoding.ASCII.GetString(Bytes, TransportOffset + UdpHeader.Length,
        IpTotalLength - IpHeaderLength - UdpHeader.Length);

    public ushort TransportChecksum(int checksumOffset) => BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan(TransportOffset + checksumOffset));

    /// <summary>The folded pseudo-header sum: what a CHECKSUM_PARTIAL frame carries in its L4 checksum field.</summary>
    public ushort PseudoHeaderSeed => Checksum.Fold(Checksum.PseudoHeader(Source, Destination, Protocol, IpTotalLength - IpHeaderLength));

    /// <summary>True when the L4 checksum over pseudo-header and segment verifies.</summary>
    public bool TransportChecksumVerifies =>
        Checksum.Fold(Checksum.Add(Bytes.AsSpan(TransportOffset, IpTotalLength - IpHeaderLength),
            Checksum.PseudoHeader(Source, Destination, Protocol, IpTotalLength - IpHeaderLength))) == 0xFFFF;
}

internal static class FrameTestSupport
{
    /// <summary>
    /// Drains the ring into copies until <paramref name="enough"/> says so or <paramref name="timeout"/> passes
    /// (with no predicate, it drains for the whole time: for asserting that something did not arrive).
    /// </summary>
    public static unsafe List<CapturedFrame> Drain(PacketRxRing ring, TimeSpan timeout, Func<List<CapturedFrame>, bool>? enough = null)
    {
        var frames = new List<CapturedFrame>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (!ring.WaitForBlock(20))
            {
                continue;
            }
            foreach (RxFrame frame in ring.CurrentBlockFrames)
            {
                frames.Add(Capture(frame));
            }
            ring.ReleaseBlock();
            if (enough != null && enough(frames))
            {
                break;
            }
        }
        return frames;
    }

    /// <summary>
    /// Drains the ring into copies until <paramref name="finished"/> says the traffic is over and the ring then stayed
    /// empty for a moment, or <paramref name="limit"/> passes. For reading a ring while the traffic runs.
    /// </summary>
    public static unsafe List<CapturedFrame> DrainUntil(PacketRxRing ring, Func<bool> finished, TimeSpan limit)
    {
        var frames = new List<CapturedFrame>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < limit)
        {
            bool done = finished(); // read before the wait: an empty wait after it means nothing more is coming
            if (!ring.WaitForBlock(100))
            {
                if (done)
                {
                    break;
                }
                continue;
            }
            foreach (RxFrame frame in ring.CurrentBlockFrames)
            {
                frames.Add(Capture(frame));
            }
            ring.ReleaseBlock();
        }
        return frames;
    }

    public static unsafe CapturedFrame Capture(RxFrame frame) => new()
    {
        Bytes = frame.Bytes.ToArray(),
        Status = frame.Status,
        VlanTci = frame.VlanTci,
        Headroom = frame.Headroom,
        WireLength = frame.WireLength,
        VirtioNetHeader = frame.VirtioNetHeader == null ? null : *frame.VirtioNetHeader,
    };

    public static Socket UdpSocket(LabNetwork lab, LabHost host, string bindAddress, int port = 0) => lab.RunIn(host, () =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(IPAddress.Parse(bindAddress), port));
        socket.ReceiveTimeout = 5000;
        return socket;
    });

    public static void SendUdp(Socket socket, string destination, int port, string payload) =>
        socket.SendTo(Encoding.ASCII.GetBytes(payload), new IPEndPoint(IPAddress.Parse(destination), port));

    /// <summary>Receives datagrams until <paramref name="count"/> arrived or nothing came for the receive timeout.</summary>
    public static List<string> ReceiveUdp(Socket socket, int count)
    {
        var received = new List<string>();
        byte[] buffer = new byte[65536];
        while (received.Count < count)
        {
            try
            {
                int length = socket.Receive(buffer);
                received.Add(Encoding.ASCII.GetString(buffer, 0, length));
            }
            catch (SocketException exception) when (exception.SocketErrorCode == SocketError.TimedOut)
            {
                break;
            }
        }
        return received;
    }

    /// <summary>Builds an Ethernet/IPv4/UDP frame with correct IP and UDP checksums.</summary>
    public static byte[] UdpFrame(MacAddress destinationMac, MacAddress sourceMac, string source, string destination,
        ushort sourcePort, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        int udpLength = UdpHeader.Length + payload.Length;
        byte[] frame = new byte[14 + 20 + udpLength];
        Span<byte> span = frame;
        destinationMac.Write(span);
        sourceMac.Write(span[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(span[12..], EtherTypes.Ipv4);
        Span<byte> ip = span[14..];
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + udpLength));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], Ipv4Header.DontFragment);
        ip[8] = 64;
        ip[9] = IpProtocol.Udp;
        uint sourceAddress = Ipv4Address.Parse(source);
        uint destinationAddress = Ipv4Address.Parse(destination);
        BinaryPrimitives.WriteUInt32BigEndian(ip[12..], sourceAddress);
        BinaryPrimitives.WriteUInt32BigEndian(ip[16..], destinationAddress);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..20]));
        Span<byte> udp = ip[20..];
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udpLength);
        payload.CopyTo(udp[8..]);
        ushort checksum = (ushort)~Checksum.Fold(Checksum.Add(udp, Checksum.PseudoHeader(sourceAddress, destinationAddress, IpProtocol.Udp, udpLength)));
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum == 0 ? (ushort)0xFFFF : checksum);
        return frame;
    }
}
