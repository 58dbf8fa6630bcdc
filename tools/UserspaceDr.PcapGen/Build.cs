using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using PacketDotNet;
using PacketDotNet.Utils;

namespace UserspaceDr.PcapGen;

/// <summary>Input frames, built with PacketDotNet; raw byte edits only where a frame is meant to be malformed.</summary>
internal static class Build
{
    public const int EthernetHeader = 14;
    public const int VlanTag = 4;

    /// <summary>A TCP segment in an IPv4 packet (DF set, as Linux sends TCP), checksums valid.</summary>
    public static IPv4Packet TcpPacket(IPAddress source, int sourcePort, IPAddress destination, int destinationPort, TcpFlagSet flags,
        uint sequence, uint acknowledgment, byte[]? payload = null, int ttl = 64, int id = 0, byte[]? options = null)
    {
        var tcp = new TcpPacket((ushort)sourcePort, (ushort)destinationPort)
        {
            Synchronize = flags.Syn,
            Acknowledgment = flags.Ack,
            Finished = flags.Fin,
            Reset = flags.Rst,
            Push = flags.Psh,
            WindowSize = 64240,
            SequenceNumber = sequence,
            AcknowledgmentNumber = flags.Ack ? acknowledgment : 0,
        };
        if (options is not null)
        {
            tcp = WithTcpOptions(tcp, options);
        }
        if (payload is not null)
        {
            tcp.PayloadData = payload;
        }
        var ip = new IPv4Packet(source, destination)
        {
            TimeToLive = ttl,
            Id = (ushort)id,
            FragmentFlags = 0x2, // DF
            Protocol = PacketDotNet.ProtocolType.Tcp,
            PayloadPacket = tcp,
        };
        tcp.UpdateTcpChecksum();
        ip.UpdateIPChecksum();
        return ip;
    }

    /// <summary>A TCP header with options (data offset 5 + options/4), re-parsed so PacketDotNet's view is consistent.</summary>
    private static TcpPacket WithTcpOptions(TcpPacket tcp, byte[] options)
    {
        if (options.Length % 4 != 0)
        {
            throw new ArgumentException("TCP options must fill 32-bit words", nameof(options));
        }
        byte[] header = new byte[20 + options.Length];
        tcp.Bytes.AsSpan(0, 20).CopyTo(header);
        options.CopyTo(header, 20);
        header[12] = (byte)((header.Length / 4) << 4);
        return new TcpPacket(new ByteArraySegment(header));
    }

    /// <summary>A UDP datagram in an IPv4 packet, checksums valid (never the "no checksum" value 0).</summary>
    public static IPv4Packet UdpPacket(IPAddress source, int sourcePort, IPAddress destination, int destinationPort, byte[] payload,
        int ttl = 64, int id = 0, bool dontFragment = true)
    {
        var udp = new UdpPacket((ushort)sourcePort, (ushort)destinationPort) { PayloadData = payload };
        var ip = new IPv4Packet(source, destination)
        {
            TimeToLive = ttl,
            Id = (ushort)id,
            FragmentFlags = dontFragment ? 0x2 : 0,
            Protocol = PacketDotNet.ProtocolType.Udp,
            PayloadPacket = udp,
        };
        udp.UpdateUdpChecksum();
        if (udp.Checksum == 0)
        {
            throw new InvalidOperationException("a UDP checksum came out 0; change the payload");
        }
        ip.UpdateIPChecksum();
        return ip;
    }

    /// <summary>Ethernet II around an IPv4 packet, from the client to the balancer unless told otherwise; optional 802.1Q tag.</summary>
    public static byte[] Frame(IPv4Packet ip, PhysicalAddress? source = null, PhysicalAddress? destination = null, ushort? vlanTci = null) =>
        Frame(ip.Bytes, EthernetType.IPv4, source, destination, vlanTci);

    public static byte[] Frame(byte[] payload, EthernetType type, PhysicalAddress? source = null, PhysicalAddress? destination = null, ushort? vlanTci = null)
    {
        var ethernet = new EthernetPacket(source ?? Lab.ClientMac, destination ?? Lab.BalancerMac, type);
        byte[] header = ethernet.Bytes[..EthernetHeader];
        byte[] frame = [.. header, .. payload];
        return vlanTci is null ? frame : InsertVlanTag(frame, vlanTci.Value);
    }

    /// <summary>Puts an 802.1Q tag (TPID 0x8100, <paramref name="tci"/> = PCP|DEI|VID) after the MAC addresses.</summary>
    public static byte[] InsertVlanTag(byte[] frame, ushort tci)
    {
        byte[] tagged = new byte[frame.Length + VlanTag];
        frame.AsSpan(0, 12).CopyTo(tagged);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(12), 0x8100);
        BinaryPrimitives.WriteUInt16BigEndian(tagged.AsSpan(14), tci);
        frame.AsSpan(12).CopyTo(tagged.AsSpan(16));
        return tagged;
    }

    public static byte[] ArpRequest(PhysicalAddress senderMac, IPAddress senderAddress, IPAddress target, ushort? vlanTci = null)
    {
        var arp = new ArpPacket(ArpOperation.Request, PhysicalAddress.Parse("00-00-00-00-00-00"), target, senderMac, senderAddress);
        return Frame(arp.Bytes, EthernetType.Arp, senderMac, Lab.BroadcastMac, vlanTci);
    }

    /// <summary>Offset of the IPv4 header in an Ethernet frame (after one 802.1Q tag if there is one).</summary>
    public static int IpOffset(ReadOnlySpan<byte> frame) =>
        BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == 0x8100 ? EthernetHeader + VlanTag : EthernetHeader;

    /// <summary>Recomputes the IPv4 header checksum of a frame in place, with PacketDotNet.</summary>
    public static byte[] FixIpChecksum(byte[] frame)
    {
        int offset = IpOffset(frame);
        var ip = new IPv4Packet(new ByteArraySegment(frame, offset, frame.Length - offset));
        ip.UpdateIPChecksum();
        return frame;
    }

    /// <summary>
    /// Inserts IPv4 options after the fixed header (IHL grows, total length and header checksum follow). The
    /// transport checksum is unchanged: options are not part of the pseudo-header.
    /// </summary>
    public static byte[] WithIpOptions(byte[] frame, byte[] options)
    {
        if (options.Length % 4 != 0 || options.Length > 40)
        {
            throw new ArgumentException("IPv4 options fill whole 32-bit words, at most 40 bytes", nameof(options));
        }
        int ip = IpOffset(frame);
        byte[] result = [.. frame.AsSpan(0, ip + 20), .. options, .. frame.AsSpan(ip + 20)];
        result[ip] = (byte)(0x40 | ((20 + options.Length) / 4));
        ushort total = BinaryPrimitives.ReadUInt16BigEndian(result.AsSpan(ip + 2));
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(ip + 2), (ushort)(total + options.Length));
        return FixIpChecksum(result);
    }

    /// <summary>
    /// Splits an unfragmented IPv4 packet into fragments of at most <paramref name="dataPerFragment"/> bytes of
    /// payload (a multiple of 8), as a sender with a small MTU would: same ID, MF on all but the last, DF clear.
    /// </summary>
    public static List<byte[]> Fragment(IPv4Packet packet, int dataPerFragment, PhysicalAddress? source = null)
    {
        if (dataPerFragment % 8 != 0)
        {
            throw new ArgumentException("fragment data must be a multiple of 8 bytes", nameof(dataPerFragment));
        }
        byte[] bytes = packet.Bytes;
        int headerLength = packet.HeaderLength * 4;
        ReadOnlySpan<byte> data = bytes.AsSpan(headerLength);
        var fragments = new List<byte[]>();
        for (int offset = 0; offset < data.Length; offset += dataPerFragment)
        {
            int length = Math.Min(dataPerFragment, data.Length - offset);
            byte[] ip = [.. bytes.AsSpan(0, headerLength), .. data.Slice(offset, length)];
            bool more = offset + length < data.Length;
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(2), (ushort)ip.Length);
            BinaryPrimitives.WriteUInt16BigEndian(ip.AsSpan(6), (ushort)((more ? 0x2000 : 0) | (offset / 8)));
            var header = new IPv4Packet(new ByteArraySegment(ip));
            header.UpdateIPChecksum();
            fragments.Add(Frame(ip, EthernetType.IPv4, source));
        }
        return fragments;
    }

    /// <summary>
    /// Replaces a TCP or UDP checksum with what a sender with checksum offload leaves in it (CHECKSUM_PARTIAL, seen
    /// as TP_STATUS_CSUMNOTREADY): the folded pseudo-header sum, not complemented. The NIC, or udr, finishes it.
    /// </summary>
    public static byte[] WithPartialChecksum(byte[] frame)
    {
        int ip = IpOffset(frame);
        int headerLength = (frame[ip] & 0x0F) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(ip + 2));
        byte protocol = frame[ip + 9];
        int transportLength = total - headerLength;
        uint sum = 0;
        for (int i = 12; i < 20; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(ip + i));
        }
        sum += protocol;
        sum += (uint)transportLength;
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        int checksumAt = ip + headerLength + (protocol == 6 ? 16 : 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(checksumAt), (ushort)sum);
        return frame;
    }
}
