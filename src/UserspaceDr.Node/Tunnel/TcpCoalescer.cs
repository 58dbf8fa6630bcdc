using System.Buffers.Binary;
using System.Runtime.InteropServices;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// User-space GRO for the tunnel endpoint: consecutive in-order TCP segments of one flow, as they come out of the
/// tunnel, are merged into one GSO packet that the TUN device takes with a virtio_net_hdr (IFF_VNET_HDR), so the
/// local stack runs its receive path once per merged packet instead of once per segment — what GRO does for a NIC.
/// The rules are the kernel's tcp_gro_receive: same addresses, ports, TOS, TTL, DF, TCP header length, options and
/// ACK number; sequence numbers contiguous; only ACK (and PSH, which ends the merge) set; every segment of the
/// segment size but the last, which may be shorter and ends the merge.
/// </summary>
/// <remarks>One instance per endpoint thread; its buffer is reused, nothing is allocated per packet.</remarks>
internal sealed class TcpCoalescer
{
    /// <summary>sizeof(struct virtio_net_hdr): what IFF_VNET_HDR puts in front of every packet written.</summary>
    public const int VnetHeaderSize = VirtioNetHeader.Size;

    private const int Ipv4HeaderLength = 20;
    private const int MaxPacket = 65535;
    private const byte TcpAck = 0x10;
    private const byte TcpPsh = 0x08;
    private const int TcpChecksumOffset = 16;

    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(VnetHeaderSize + MaxPacket, pinned: true);
    private int _headerLength;
    private int _payload;
    private int _segmentSize;
    private int _segments;
    private uint _nextSequence;
    private bool _closed;

    /// <summary>A merge is open: <see cref="Finish"/> must be written before anything else from the same flow.</summary>
    public bool IsActive => _segments > 0;

    /// <summary>Segments in the open merge.</summary>
    public int Segments => _segments;

    /// <summary>
    /// Whether <paramref name="ip"/> (an inner IPv4 packet whose checksums the decapsulator verified) may start or
    /// join a merge: IPv4 without options, TCP, not a fragment, ACK set and nothing but ACK/PSH, some payload.
    /// </summary>
    public static bool IsCandidate(ReadOnlySpan<byte> ip)
    {
        if (ip.Length < Ipv4HeaderLength + 20 || ip[0] != 0x45 || ip[9] != 6 ||
            (BinaryPrimitives.ReadUInt16BigEndian(ip[6..]) & 0x3FFF) != 0 || BinaryPrimitives.ReadUInt16BigEndian(ip[2..]) != ip.Length)
        {
            return false;
        }
        int tcpHeader = (ip[Ipv4HeaderLength + 12] >> 4) * 4;
        byte flags = ip[Ipv4HeaderLength + 13];
        return tcpHeader >= 20 && Ipv4HeaderLength + tcpHeader < ip.Length && (flags & TcpAck) != 0 && (flags & ~(TcpAck | TcpPsh)) == 0;
    }

    /// <summary>Opens a merge with <paramref name="ip"/> (a candidate; see <see cref="IsCandidate"/>).</summary>
    public void Start(ReadOnlySpan<byte> ip)
    {
        ip.CopyTo(_buffer.AsSpan(VnetHeaderSize));
        _headerLength = Ipv4HeaderLength + ((ip[Ipv4HeaderLength + 12] >> 4) * 4);
        _payload = ip.Length - _headerLength;
        _segmentSize = _payload;
        _segments = 1;
        _nextSequence = BinaryPrimitives.ReadUInt32BigEndian(ip[(Ipv4HeaderLength + 4)..]) + (uint)_payload;
        _closed = (ip[Ipv4HeaderLength + 13] & TcpPsh) != 0;
    }

    /// <summary>Adds <paramref name="ip"/> to the open merge if it continues it; false (nothing changed) if it does not.</summary>
    public bool TryAppend(ReadOnlySpan<byte> ip)
    {
        if (!IsActive || _closed || !IsCandidate(ip))
        {
            return false;
        }
        ReadOnlySpan<byte> head = _buffer.AsSpan(VnetHeaderSize, _headerLength);
        int headerLength = Ipv4HeaderLength + ((ip[Ipv4HeaderLength + 12] >> 4) * 4);
        int payload = ip.Length - headerLength;
        if (headerLength != _headerLength || payload > _segmentSize || _headerLength + _payload + payload > MaxPacket ||
            ip[1] != head[1] || ip[8] != head[8] || (ip[6] & 0x40) != (head[6] & 0x40) ||
            !ip.Slice(12, 8).SequenceEqual(head.Slice(12, 8)) ||                                                   // addresses
            !ip.Slice(Ipv4HeaderLength, 4).SequenceEqual(head.Slice(Ipv4HeaderLength, 4)) ||                       // ports
            BinaryPrimitives.ReadUInt32BigEndian(ip[(Ipv4HeaderLength + 4)..]) != _nextSequence ||
            !ip.Slice(Ipv4HeaderLength + 8, 4).SequenceEqual(head.Slice(Ipv4HeaderLength + 8, 4)) ||               // ACK number
            !ip[(Ipv4HeaderLength + 20)..headerLength].SequenceEqual(head[(Ipv4HeaderLength + 20)..headerLength])) // options
        {
            return false;
        }
        ip[headerLength..].CopyTo(_buffer.AsSpan(VnetHeaderSize + _headerLength + _payload));
        _payload += payload;
        _segments++;
        _nextSequence += (uint)payload;
        Span<byte> tcp = _buffer.AsSpan(VnetHeaderSize + Ipv4HeaderLength);
        ip.Slice(Ipv4HeaderLength + 14, 2).CopyTo(tcp[14..]); // the latest window
        if ((ip[Ipv4HeaderLength + 13] & TcpPsh) != 0)
        {
            tcp[13] |= TcpPsh;
            _closed = true;
        }
        _closed |= payload < _segmentSize;
        return true;
    }

    /// <summary>
    /// Closes the merge and returns what to write to the TUN device: a virtio_net_hdr and the packet. One segment goes
    /// as it came (checksums intact, no GSO); several become one TCPv4 GSO packet of the first segment's size, the
    /// TCP checksum left partial (the pseudo-header sum) for the kernel, which counts it verified on local delivery.
    /// </summary>
    public ReadOnlySpan<byte> Finish()
    {
        Span<byte> vnet = _buffer.AsSpan(0, VnetHeaderSize);
        Span<byte> ip = _buffer.AsSpan(VnetHeaderSize, _headerLength + _payload);
        vnet.Clear();
        if (_segments > 1)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)ip.Length);
            ip[10] = ip[11] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum.Compute(ip[..Ipv4HeaderLength]));
            int tcpLength = ip.Length - Ipv4HeaderLength;
            ulong pseudo = Checksum.Add(ip.Slice(12, 8), IpProtocol.Tcp + (uint)tcpLength); // source, destination, protocol, length
            BinaryPrimitives.WriteUInt16BigEndian(ip[(Ipv4HeaderLength + TcpChecksumOffset)..], Checksum.Fold(pseudo));
            var header = new VirtioNetHeader
            {
                Flags = VirtioNetHeader.FlagNeedsChecksum,
                GsoType = VirtioNetHeader.GsoTcpV4,
                HeaderLength = (ushort)_headerLength,
                GsoSize = (ushort)_segmentSize,
                ChecksumStart = Ipv4HeaderLength,
                ChecksumOffset = TcpChecksumOffset,
            };
            MemoryMarshal.Write(vnet, in header);
        }
        int length = VnetHeaderSize + ip.Length;
        _segments = 0;
        _closed = false;
        return _buffer.AsSpan(0, length);
    }
}
