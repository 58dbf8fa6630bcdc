using System.Buffers.Binary;
using System.Net;

namespace UserspaceDr.Tests.TestSupport;

/// <summary>One entry of a sync message as the tests decode it.</summary>
public sealed record DecodedSyncEntry(int Offset, int Type, int Protocol, int VerSize, uint Flags, int State, int ClientPort, int VirtualPort,
    int DestinationPort, uint FirewallMark, uint Timeout, string ClientAddress, string VirtualAddress, string DestinationAddress);

/// <summary>A sync message as the tests decode it: the header's fields and the entries.</summary>
public sealed record DecodedSyncMessage(int Reserved, int SyncId, int Size, int Count, int Version, int Spare, IReadOnlyList<DecodedSyncEntry> Entries);

/// <summary>
/// The tests' own decoder of IPVS sync messages, version 1, written from the kernel's struct definitions
/// (include/net/ip_vs.h, net/netfilter/ipvs/ip_vs_sync.c: struct ip_vs_sync_mesg, ip_vs_sync_v4/v6) and kept apart
/// from udr's reader, so that what udr sends is checked by code that did not make it. Trusts its input (tests only).
/// </summary>
public static class SyncWireDecoder
{
    public static DecodedSyncMessage Decode(ReadOnlySpan<byte> m)
    {
        var entries = new List<DecodedSyncEntry>();
        int offset = 8;
        for (int i = 0; i < m[4]; i++)
        {
            ReadOnlySpan<byte> e = m[offset..];
            int addressLength = (e[0] & 1) != 0 ? 16 : 4;
            string[] addresses = new string[3];
            for (int k = 0; k < 3; k++)
            {
                addresses[k] = new IPAddress(e.Slice(24 + (k * addressLength), addressLength)).ToString();
            }
            int verSize = BinaryPrimitives.ReadUInt16BigEndian(e[2..]);
            entries.Add(new DecodedSyncEntry(offset, e[0], e[1], verSize, BinaryPrimitives.ReadUInt32BigEndian(e[4..]),
                BinaryPrimitives.ReadUInt16BigEndian(e[8..]), BinaryPrimitives.ReadUInt16BigEndian(e[10..]), BinaryPrimitives.ReadUInt16BigEndian(e[12..]),
                BinaryPrimitives.ReadUInt16BigEndian(e[14..]), BinaryPrimitives.ReadUInt32BigEndian(e[16..]), BinaryPrimitives.ReadUInt32BigEndian(e[20..]),
                addresses[0], addresses[1], addresses[2]));
            offset += ((verSize & 0xFFF) + 3) & ~3;
        }
        return new DecodedSyncMessage(m[0], m[1], BinaryPrimitives.ReadUInt16BigEndian(m[2..]), m[4], m[5], BinaryPrimitives.ReadUInt16BigEndian(m[6..]), entries);
    }
}
