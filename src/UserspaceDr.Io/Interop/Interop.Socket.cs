using System.Runtime.InteropServices;

namespace UserspaceDr.Io;

internal static partial class Interop
{
    internal const int AF_PACKET = 17;
    internal const int SOCK_RAW = 3;
    internal const int SOCK_CLOEXEC = 0x80000;

    /// <summary>ETH_P_ALL in network byte order, as socket(2) and sockaddr_ll want it.</summary>
    internal const ushort ETH_P_ALL_BE = 0x0300;

    [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial SafePacketSocketHandle Socket(int domain, int type, int protocol);
}
