using System.Net;
using System.Net.Sockets;

namespace UserspaceDr.ControlPlane.Sync;

/// <summary>IPVS's connection flags as the sync protocol carries them (include/uapi/linux/ip_vs.h, IP_VS_CONN_F_*).</summary>
[Flags]
public enum SyncConnectionFlags : uint
{
    None = 0,

    /// <summary>The forwarding method, in the low three bits: 0 masquerade, 1 local, 2 tunnel, 3 direct route, 4 bypass.</summary>
    ForwardMask = 0x0007,
    Sync = 0x0020,
    Hashed = 0x0040,
    NoOutput = 0x0080,
    Inactive = 0x0100,
    OutSequence = 0x0200,
    InSequence = 0x0400,
    SequenceMask = 0x0600,
    NoClientPort = 0x0800,
    Template = 0x1000,
    OnePacket = 0x2000,

    /// <summary>What a backup keeps of a received entry (IP_VS_CONN_F_BACKUP_MASK); it adds <see cref="Sync"/>.</summary>
    BackupMask = ForwardMask | NoOutput | Inactive | SequenceMask | NoClientPort | Template,
}

/// <summary>One direction's TCP sequence adjustment (struct ip_vs_seq), carried by the SEQ_DATA option.</summary>
public readonly record struct SyncSequence(uint InitialSequence, uint Delta, uint PreviousDelta);

/// <summary>
/// One connection (or persistence template) of a sync message, version 1 (struct ip_vs_sync_v4 / ip_vs_sync_v6 and
/// its options). The three addresses are of one family: IPv4 entries are 36 bytes, IPv6 entries 72, before options.
/// </summary>
public sealed record SyncEntry(
    byte Protocol,
    SyncConnectionFlags Flags,
    ushort State,
    IPAddress ClientAddress,
    ushort ClientPort,
    IPAddress VirtualAddress,
    ushort VirtualPort,
    IPAddress DestinationAddress,
    ushort DestinationPort,
    uint FirewallMark,
    uint TimeoutSeconds)
{
    /// <summary>The SEQ_DATA option (sent when <see cref="SyncConnectionFlags.SequenceMask"/> is set): in, then out.</summary>
    public (SyncSequence In, SyncSequence Out)? Sequences { get; init; }

    public bool IsIpv6 => ClientAddress.AddressFamily == AddressFamily.InterNetworkV6;

    public bool IsTemplate => (Flags & SyncConnectionFlags.Template) != 0;
}
