using System.Runtime.InteropServices;

namespace UserspaceDr.Io;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafePacketSocketHandle socket, SockAddrLl* address, uint addressLength);
}
