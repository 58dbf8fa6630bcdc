using System.Runtime.InteropServices;

namespace UserspaceDr.Node;

internal static partial class Interop
{
    internal const int SOL_SOCKET = 1;
    internal const int SO_RCVBUF = 8;

    /// <summary>SO_RCVBUF beyond net.core.rmem_max (needs CAP_NET_ADMIN).</summary>
    internal const int SO_RCVBUFFORCE = 33;

    [LibraryImport(Libraries.Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int SetSockOpt(SafeDescriptorHandle socket, int level, int name, void* value, uint length);
}
