using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int SOL_SOCKET = 1;
    internal const int SO_ERROR = 4;
    internal const int SO_RCVBUF = 8;
    internal const int SO_ATTACH_FILTER = 26;

    /// <summary>Several sockets bound to one address and port: the kernel hands each datagram to one of them by a hash of its addresses and ports.</summary>
    internal const int SO_REUSEPORT = 15;
    internal const int SO_LOCK_FILTER = 44;

    /// <summary>SO_RCVBUF beyond net.core.rmem_max (needs CAP_NET_ADMIN).</summary>
    internal const int SO_RCVBUFFORCE = 33;

    // linux/if_packet.h
    internal const int SOL_PACKET = 263;
    internal const int PACKET_ADD_MEMBERSHIP = 1;
    internal const int PACKET_RX_RING = 5;
    internal const int PACKET_STATISTICS = 6;
    internal const int PACKET_VERSION = 10;
    internal const int PACKET_RESERVE = 12;
    internal const int PACKET_VNET_HDR = 15;
    internal const int PACKET_FANOUT = 18;
    internal const int PACKET_QDISC_BYPASS = 20;
    internal const int PACKET_FANOUT_DATA = 22;
    internal const int PACKET_IGNORE_OUTGOING = 23;
    /// <summary>A frame too large for its ring slot is also queued whole on the socket (TP_STATUS_COPY in the slot).</summary>
    internal const int PACKET_COPY_THRESH = 7;

    internal const int TPACKET_V2 = 1;
    internal const int TPACKET_V3 = 2;
    internal const ushort PACKET_MR_PROMISC = 1;

    [LibraryImport(Libraries.Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static unsafe partial int SetSockOpt(SafeDescriptorHandle socket, int level, int optionName, void* optionValue, uint optionLength);

    [LibraryImport(Libraries.Libc, EntryPoint = "getsockopt", SetLastError = true)]
    internal static unsafe partial int GetSockOpt(SafeDescriptorHandle socket, int level, int optionName, void* optionValue, uint* optionLength);

    internal static unsafe int SetSockOpt(SafeDescriptorHandle socket, int level, int optionName, int value) =>
        SetSockOpt(socket, level, optionName, &value, sizeof(int));
}
