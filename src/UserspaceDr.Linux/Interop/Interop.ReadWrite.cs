using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int MSG_DONTWAIT = 0x40;
    /// <summary>recv returns the datagram's real length even when the buffer was shorter.</summary>
    internal const int MSG_TRUNC = 0x20;

    // recv and write take raw descriptors: they run once per packet, and the owner keeps each SafeHandle referenced
    // (DangerousAddRef) for its whole lifetime instead of paying the reference count per call.
    [LibraryImport(Libraries.Libc, EntryPoint = "recv", SetLastError = true)]
    internal static unsafe partial nint Recv(int socket, byte* buffer, nuint length, int flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "write", SetLastError = true)]
    internal static unsafe partial nint Write(int descriptor, byte* buffer, nuint length);

    [LibraryImport(Libraries.Libc, EntryPoint = "writev", SetLastError = true)]
    internal static unsafe partial nint Writev(int descriptor, IoVec* vectors, int count);
}
