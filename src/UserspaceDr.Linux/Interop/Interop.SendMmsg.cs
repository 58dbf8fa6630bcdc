using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct IoVec
    {
        internal void* Base;
        internal nuint Length;
    }

    /// <summary>struct msghdr (x86-64/arm64 layout: pointers and size_t are 8 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct MsgHdr
    {
        internal void* Name;
        internal uint NameLength;
        internal IoVec* Iov;
        internal nuint IovLength;
        internal void* Control;
        internal nuint ControlLength;
        internal int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MMsgHdr
    {
        internal MsgHdr Header;
        /// <summary>msg_len: the bytes sent (sendmmsg) or received (recvmmsg) for this message.</summary>
        internal uint SentLength;
    }

    // Raw descriptor for the same reason as Poll: one call per batch on the hot path.
    [LibraryImport(Libraries.Libc, EntryPoint = "sendmmsg", SetLastError = true)]
    internal static unsafe partial int SendMmsg(int fd, MMsgHdr* messages, uint count, int flags);
}
