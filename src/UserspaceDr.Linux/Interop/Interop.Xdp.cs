using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    // linux/socket.h, linux/if_xdp.h
    internal const int AF_XDP = 44;
    internal const int SOL_XDP = 283;

    internal const int XDP_MMAP_OFFSETS = 1;
    internal const int XDP_RX_RING = 2;
    internal const int XDP_TX_RING = 3;
    internal const int XDP_UMEM_REG = 4;
    internal const int XDP_UMEM_FILL_RING = 5;
    internal const int XDP_UMEM_COMPLETION_RING = 6;
    internal const int XDP_STATISTICS = 7;

    /// <summary>sxdp_flags: force copy mode (veth, tun, virtio before 6.11 have no zero-copy AF_XDP).</summary>
    internal const ushort XDP_COPY = 1 << 1;
    /// <summary>sxdp_flags: the kernel says in a ring's flags when it needs a syscall to go on (af_xdp.rst recommends it always).</summary>
    internal const ushort XDP_USE_NEED_WAKEUP = 1 << 3;
    internal const uint XDP_RING_NEED_WAKEUP = 1;

    // The rings' page offsets for mmap.
    internal const long XDP_PGOFF_RX_RING = 0;
    internal const long XDP_PGOFF_TX_RING = 0x80000000;
    internal const long XDP_UMEM_PGOFF_FILL_RING = 0x100000000;
    internal const long XDP_UMEM_PGOFF_COMPLETION_RING = 0x180000000;

    /// <summary>What an XDP program returns to let the kernel's stack have the frame.</summary>
    internal const int XDP_PASS = 2;

    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrXdp
    {
        internal ushort Family;
        internal ushort Flags;
        internal uint InterfaceIndex;
        internal uint QueueId;
        internal uint SharedUmemFd;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpUmemReg
    {
        internal ulong Address;
        internal ulong Length;
        internal uint ChunkSize;
        internal uint Headroom;
        internal uint Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpRingOffset
    {
        internal ulong Producer;
        internal ulong Consumer;
        internal ulong Descriptors;
        internal ulong Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpMmapOffsets
    {
        internal XdpRingOffset Rx;
        internal XdpRingOffset Tx;
        internal XdpRingOffset Fill;
        internal XdpRingOffset Completion;
    }

    /// <summary>struct xdp_desc: a frame in the UMEM (RX and TX rings).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpDescriptor
    {
        internal ulong Address;
        internal uint Length;
        internal uint Options;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct XdpStatistics
    {
        internal ulong RxDropped;
        internal ulong RxInvalidDescriptors;
        internal ulong TxInvalidDescriptors;
        internal ulong RxRingFull;
        internal ulong RxFillRingEmptyDescriptors;
        internal ulong TxRingEmptyDescriptors;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrXdp* address, uint addressLength);

    /// <summary>The transmit kick of an AF_XDP socket (a sendto with no data); raw descriptor, as the hot path calls it.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint SendTo(int socket, nint buffer, nuint length, int flags, nint address, uint addressLength);

    /// <summary>mmap at a 64-bit offset: the AF_XDP rings' page offsets go past 2^31.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint MmapAt(nint address, nuint length, int protection, int flags, SafeDescriptorHandle fd, long offset);

    /// <summary>MAP_POPULATE: fault the rings in now, not on the first frames.</summary>
    internal const int MAP_POPULATE = 0x8000;
}
