using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrLl* address, uint addressLength);

    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrIn* address, uint addressLength);

    /// <summary>struct sockaddr_in: family, port and address in network byte order, 8 bytes of zero.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrIn
    {
        internal ushort Family;
        internal ushort PortBigEndian;
        internal uint AddressBigEndian;
        internal ulong Zero;
    }
}
