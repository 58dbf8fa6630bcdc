using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    /// <summary>struct sockaddr_ll (linux/if_packet.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct SockAddrLl
    {
        internal ushort Family;
        internal ushort ProtocolBigEndian;
        internal int InterfaceIndex;
        internal ushort HardwareType;
        internal byte PacketType;
        internal byte AddressLength;
        internal fixed byte Address[8];
    }

    /// <summary>struct packet_mreq.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct PacketMreq
    {
        internal int InterfaceIndex;
        internal ushort Type;
        internal ushort AddressLength;
        internal fixed byte Address[8];
    }

    /// <summary>struct tpacket_req (TPACKET_V1/V2 rings): fixed-size frames, tp_frame_nr = frames per block × tp_block_nr.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TPacketReq
    {
        internal uint BlockSize;
        internal uint BlockCount;
        internal uint FrameSize;
        internal uint FrameCount;
    }

    /// <summary>struct tpacket_req3.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TPacketReq3
    {
        internal uint BlockSize;
        internal uint BlockCount;
        internal uint FrameSize;
        internal uint FrameCount;
        internal uint RetireBlockTimeoutMs;
        internal uint SizeOfPrivate;
        internal uint FeatureRequestWord;
    }

    /// <summary>
    /// struct tpacket_stats_v3 (reading it resets the kernel's counters). A TPACKET_V2 socket answers with the first
    /// two fields only (struct tpacket_stats); FreezeQueueCount then stays 0.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct TPacketStatsV3
    {
        internal uint Packets;
        internal uint Drops;
        internal uint FreezeQueueCount;
    }

    /// <summary>struct sock_filter: one classic BPF instruction.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockFilter
    {
        internal ushort Code;
        internal byte JumpTrue;
        internal byte JumpFalse;
        internal uint K;
    }

    /// <summary>struct sock_fprog.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct SockFprog
    {
        internal ushort Length;
        internal SockFilter* Filter;
    }

    // Offsets into the TPACKET_V3 and TPACKET_V2 rings (linux/if_packet.h). Read through pointers rather than mapped structs so
    // the layout each offset comes from stays visible next to it.

    /// <summary>struct tpacket_block_desc { u32 version; u32 offset_to_priv; struct tpacket_hdr_v1 hdr; }.</summary>
    internal static class BlockDescriptor
    {
        internal const int BlockStatus = 8;      // hdr.block_status
        internal const int PacketCount = 12;     // hdr.num_pkts
        internal const int FirstPacketOffset = 16; // hdr.offset_to_first_pkt
    }

    /// <summary>struct tpacket3_hdr.</summary>
    internal static class Tpacket3Header
    {
        internal const int NextOffset = 0;    // u32 tp_next_offset
        internal const int SnapLength = 12;   // u32 tp_snaplen
        internal const int WireLength = 16;   // u32 tp_len
        internal const int Status = 20;       // u32 tp_status
        internal const int MacOffset = 24;    // u16 tp_mac
        internal const int NetOffset = 26;    // u16 tp_net
        internal const int VlanTci = 32;      // hv1.tp_vlan_tci (u32)
        internal const int VlanTpid = 36;     // hv1.tp_vlan_tpid (u16)
        internal const int Padding = 40;      // u8 tp_padding[8]: zeroed by the kernel on every fill

        /// <summary>TPACKET3_HDRLEN: TPACKET_ALIGN(sizeof(tpacket3_hdr)) + sizeof(sockaddr_ll); frame data may start after it.</summary>
        internal const int HeaderAndAddressLength = 48 + 20;
    }

    /// <summary>
    /// struct tpacket2_hdr: the header at the start of every fixed-size TPACKET_V2 frame slot. tp_status doubles as
    /// the slot's ownership word (TP_STATUS_KERNEL / TP_STATUS_USER).
    /// </summary>
    internal static class Tpacket2Header
    {
        internal const int Status = 0;        // u32 tp_status
        internal const int WireLength = 4;    // u32 tp_len
        internal const int SnapLength = 8;    // u32 tp_snaplen
        internal const int MacOffset = 12;    // u16 tp_mac
        internal const int NetOffset = 14;    // u16 tp_net
        internal const int VlanTci = 24;      // u16 tp_vlan_tci
        internal const int VlanTpid = 26;     // u16 tp_vlan_tpid
        internal const int Padding = 28;      // u8 tp_padding[4]: zeroed by the kernel on every fill

        /// <summary>TPACKET2_HDRLEN: TPACKET_ALIGN(sizeof(tpacket2_hdr)) + sizeof(sockaddr_ll); frame data may start after it.</summary>
        internal const int HeaderAndAddressLength = 32 + 20;
    }

    /// <summary>TPACKET_ALIGNMENT: tp_frame_size and the kernel's frame offsets are multiples of it.</summary>
    internal const int TPACKET_ALIGNMENT = 16;

    internal const uint TP_STATUS_KERNEL = 0;
    internal const uint TP_STATUS_USER = 1;
}
