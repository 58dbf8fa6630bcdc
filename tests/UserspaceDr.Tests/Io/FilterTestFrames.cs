using System.Buffers.Binary;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Io;

/// <summary>Frames cut to what a filter or steering program reads: addresses, protocol, an optional 802.1Q tag.</summary>
internal static class FilterTestFrames
{
    internal static byte[] Ipv6Frame(UInt128 destination, byte nextHeader, bool tagged, byte icmpType = 0, UInt128 source = default)
    {
        int l2 = tagged ? 18 : 14;
        byte[] frame = new byte[l2 + 40 + 24];
        if (tagged)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Vlan);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14), 42);
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(l2 - 2), EtherTypes.Ipv6);
        frame[l2] = 0x60;
        frame[l2 + 6] = nextHeader;
        BinaryPrimitives.WriteUInt128BigEndian(frame.AsSpan(l2 + 8), source);
        BinaryPrimitives.WriteUInt128BigEndian(frame.AsSpan(l2 + 24), destination);
        frame[l2 + 40] = icmpType;
        return frame;
    }

    internal static byte[] Frame(ushort etherType, uint destination, bool tagged)
    {
        int l2 = tagged ? 18 : 14;
        byte[] frame = new byte[l2 + 28];
        if (tagged)
        {
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), EtherTypes.Vlan);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14), 42);
        }
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(l2 - 2), etherType);
        frame[l2] = 0x45;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(l2 + 16), destination);
        return frame;
    }

    internal static byte[] Packet(uint source, uint destination, byte protocol, bool tagged)
    {
        byte[] frame = Frame(EtherTypes.Ipv4, destination, tagged);
        int l2 = tagged ? 18 : 14;
        frame[l2 + 9] = protocol;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(l2 + 12), source);
        return frame;
    }
}
