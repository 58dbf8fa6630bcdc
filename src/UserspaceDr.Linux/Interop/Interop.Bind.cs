using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrLl* address, uint addressLength);

    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrIn* address, uint addressLength);

    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static unsafe partial int Bind(SafeDescriptorHandle socket, SockAddrIn6* address, uint addressLength);

    /// <summary>struct sockaddr_in6: family, port in network byte order, flow info, the address (here ::), scope.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrIn6
    {
        internal ushort Family;
        internal ushort PortBigEndian;
        internal uint FlowInfo;
        internal ulong AddressHigh; // two words, not a UInt128, whose 16-byte alignment would move it off offset 8
        internal ulong AddressLow;
        internal uint ScopeId;
    }

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
