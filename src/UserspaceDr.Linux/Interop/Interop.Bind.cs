using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrLl* address, uint addressLength);
}
