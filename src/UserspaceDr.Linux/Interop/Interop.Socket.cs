using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int AF_INET = 2;
    internal const int AF_PACKET = 17;
    internal const int SOCK_RAW = 3;
    internal const int SOCK_CLOEXEC = 0x80000;

    /// <summary>ETH_P_ALL in network byte order, as socket(2) and sockaddr_ll want it.</summary>
    internal const ushort ETH_P_ALL_BE = 0x0300;

    /// <summary>
    /// IP-in-IP. A raw AF_INET socket of this protocol receives every locally delivered protocol-4 packet, outer IPv4
    /// header included; while one is open the kernel no longer answers such packets with ICMP protocol-unreachable.
    /// </summary>
    internal const int IPPROTO_IPIP = 4;

    /// <summary>GRE. A raw AF_INET socket of this protocol receives every locally delivered GRE packet, outer header included.</summary>
    internal const int IPPROTO_GRE = 47;

    internal const int SOCK_DGRAM = 2;

    [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial SafeDescriptorHandle Socket(int domain, int type, int protocol);
}
