using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int AF_INET6 = 10;

    /// <summary>
    /// IPv6 (in IPv4 or IPv6). A raw socket of this protocol receives locally delivered next-header/protocol 41 packets:
    /// AF_INET with the outer IPv4 header, AF_INET6 from the inner packet on (the kernel never passes IPv6 headers).
    /// </summary>
    internal const int IPPROTO_IPV6 = 41;

    internal const int SOL_IPV6 = 41;

    /// <summary>An AF_INET6 socket for IPv6 alone, so an AF_INET one can have the same port.</summary>
    internal const int IPV6_V6ONLY = 26;

    /// <summary>Ask for, and the control message with, the packet's destination address and interface (in6_pktinfo).</summary>
    internal const int IPV6_RECVPKTINFO = 49;
    internal const int IPV6_PKTINFO = 50;

    /// <summary>Ask for, and the control message with, the packet's traffic class (an int).</summary>
    internal const int IPV6_RECVTCLASS = 66;
    internal const int IPV6_TCLASS = 67;

    internal const int SOL_IP = 0;

    /// <summary>Ask for the control message with the packet's interface and header destination (struct in_pktinfo: ifindex, spec_dst, addr).</summary>
    internal const int IP_PKTINFO = 8;

    /// <summary>Ask for, and the control message type of, the packet's TOS byte.</summary>
    internal const int IP_RECVTOS = 13;
    internal const int IP_TOS = 1;

    // IoVec and MsgHdr: Interop.SendMmsg.cs.

    /// <summary>struct cmsghdr: its length (header included), level and type; the data follows at <see cref="CmsgHeaderSize"/>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct CmsgHdr
    {
        public nuint Length;
        public int Level;
        public int Type;
    }

    /// <summary>CMSG_LEN(0): the header, aligned to size_t.</summary>
    internal static readonly int CmsgHeaderSize = (Marshal.SizeOf<CmsgHdr>() + nint.Size - 1) & ~(nint.Size - 1);

    [LibraryImport(Libraries.Libc, EntryPoint = "recvmsg", SetLastError = true)]
    internal static unsafe partial nint RecvMsg(int socket, MsgHdr* message, int flags);

    /// <summary>recvmmsg: up to <paramref name="count"/> datagrams in one call; each one's length lands in its <see cref="MMsgHdr.SentLength"/>.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "recvmmsg", SetLastError = true)]
    internal static unsafe partial int RecvMmsg(int socket, MMsgHdr* messages, uint count, int flags, TimeSpec* timeout);
}
