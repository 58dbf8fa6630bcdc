using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

/// <summary>
/// struct virtio_net_hdr (linux/virtio_net.h), 10 bytes, little-endian on the hosts we run on. With PACKET_VNET_HDR
/// the kernel writes one right before each received frame's MAC header, and expects one before each transmitted
/// frame. It is how a GSO super-frame (many MSS-sized segments received as one frame across veth/GRO) and a
/// partial checksum travel through user space: transmitting the header together with the frame lets the kernel
/// segment and finish checksums on the way out, instead of the frame failing with EMSGSIZE or arriving with a
/// bad checksum.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 1)]
public struct VirtioNetHeader
{
    public const int Size = 10;

    /// <summary>VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum from <see cref="ChecksumStart"/> on, store at +<see cref="ChecksumOffset"/>.</summary>
    public const byte FlagNeedsChecksum = 1;

    /// <summary>VIRTIO_NET_HDR_F_DATA_VALID: the checksum was verified.</summary>
    public const byte FlagDataValid = 2;

    public const byte GsoNone = 0;
    public const byte GsoTcpV4 = 1;
    public const byte GsoUdp = 3;
    public const byte GsoTcpV6 = 4;
    public const byte GsoUdpL4 = 5;
    public const byte GsoEcn = 0x80;

    public byte Flags;
    public byte GsoType;

    /// <summary>Length of the headers to copy into the linear part of the packet (a hint).</summary>
    public ushort HeaderLength;

    /// <summary>Segment payload size (the MSS for TCP) when <see cref="GsoType"/> is not <see cref="GsoNone"/>.</summary>
    public ushort GsoSize;

    /// <summary>Offset from the MAC header to where checksumming starts (the L4 header).</summary>
    public ushort ChecksumStart;

    /// <summary>Offset from <see cref="ChecksumStart"/> to the checksum field (6 for UDP, 16 for TCP).</summary>
    public ushort ChecksumOffset;

    public readonly bool NeedsChecksum => (Flags & FlagNeedsChecksum) != 0;
    public readonly bool IsGso => GsoType != GsoNone;
}
