using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    /// <summary>_IOW('T', 202, int) (linux/if_tun.h): attach the descriptor to a new or existing TUN/TAP device.</summary>
    internal const uint TUNSETIFF = 0x400454CA;

    /// <summary>A layer-3 device: each read/write is one IP packet.</summary>
    internal const short IFF_TUN = 0x0001;

    /// <summary>A layer-2 device: each read/write is one Ethernet frame.</summary>
    internal const short IFF_TAP = 0x0002;

    /// <summary>Fail if a device of that name exists already, instead of attaching to it.</summary>
    internal const short IFF_TUN_EXCL = unchecked((short)0x8000);

    /// <summary>No 4-byte packet-information prefix: the IP version nibble tells IPv4 from IPv6.</summary>
    internal const short IFF_NO_PI = 0x1000;

    /// <summary>Every packet read or written starts with a struct virtio_net_hdr (GSO and checksum offload).</summary>
    internal const short IFF_VNET_HDR = 0x4000;

    /// <summary>
    /// One queue of a multi-queue device: each descriptor opened with this flag and the same name attaches one more
    /// queue, and the device goes when the last one is closed (unless persistent).
    /// </summary>
    internal const short IFF_MULTI_QUEUE = 0x0100;

    /// <summary>IFNAMSIZ: an interface name is at most 15 bytes plus the terminating NUL.</summary>
    internal const int IFNAMSIZ = 16;

    /// <summary>struct ifreq (40 bytes on 64-bit Linux): the name, then a union of which only ifr_flags is used.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    internal unsafe struct IfReq
    {
        internal fixed byte Name[IFNAMSIZ];
        internal short Flags;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(SafeDescriptorHandle descriptor, nuint request, void* argument);
}
