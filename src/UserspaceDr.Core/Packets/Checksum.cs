using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace UserspaceDr.Core.Packets;

/// <summary>Internet checksum: full computation (RFC 1071) and incremental update (RFC 1624, eqn. 3).</summary>
public static class Checksum
{
    /// <summary>Adds the 16-bit big-endian words of <paramref name="data"/> to a 64-bit accumulator (not folded).</summary>
    public static ulong Add(ReadOnlySpan<byte> data, ulong sum = 0)
    {
        // Sum 32-bit big-endian words into a 64-bit accumulator: no carry can be lost for any frame size,
        // and one's-complement addition is order- and width-independent once folded.
        ref byte start = ref MemoryMarshal.GetReference(data);
        int length = data.Length;
        int i = 0;
        for (; i + 4 <= length; i += 4)
        {
            sum += BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref start, i)));
        }
        if (i + 2 <= length)
        {
            sum += (uint)(Unsafe.Add(ref start, i) << 8 | Unsafe.Add(ref start, i + 1));
            i += 2;
        }
        if (i < length)
        {
            sum += (uint)(Unsafe.Add(ref start, i) << 8);
        }
        return sum;
    }

    /// <summary>Folds a 64-bit accumulator to 16 bits (not complemented).</summary>
    public static ushort Fold(ulong sum)
    {
        sum = (sum & 0xFFFFFFFF) + (sum >> 32);
        sum = (sum & 0xFFFFFFFF) + (sum >> 32);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    /// <summary>The checksum to store: complement of the folded sum of <paramref name="data"/>.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => (ushort)~Fold(Add(data));

    /// <summary>Sum of the IPv4 pseudo-header for a transport checksum.</summary>
    public static ulong PseudoHeader(uint source, uint destination, byte protocol, int transportLength) =>
        (ulong)(source >> 16) + (source & 0xFFFF) + (destination >> 16) + (destination & 0xFFFF) + protocol + (uint)transportLength;

    /// <summary>
    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a 16-bit field that changed from <paramref name="oldValue"/>
    /// to <paramref name="newValue"/>.
    /// </summary>
    public static ushort Update(ushort checksum, ushort oldValue, ushort newValue)
    {
        uint sum = (uint)(ushort)~checksum + (ushort)~oldValue + newValue;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>RFC 1624 update for a 32-bit field (an IPv4 address) that changed.</summary>
    public static ushort Update(ushort checksum, uint oldValue, uint newValue) => ApplyDelta(checksum, AddressDelta(oldValue, newValue));

    /// <summary>
    /// What an address change adds to a checksum's one's-complement sum (RFC 1624 eqn. 3's ~m + m', unfolded): the
    /// complement of each old 16-bit word plus each new one. One delta serves every checksum that covers the address
    /// (the IP header's, a pseudo-header's), in either family.
    /// </summary>
    public static uint AddressDelta(uint oldValue, uint newValue) =>
        (uint)(ushort)~(oldValue >> 16) + (ushort)~(oldValue & 0xFFFF) + (newValue >> 16) + (newValue & 0xFFFF);

    /// <summary>As the IPv4 form, over the eight 16-bit words of an IPv6 address.</summary>
    public static uint AddressDelta(UInt128 oldValue, UInt128 newValue) =>
        AddressDelta((uint)(oldValue >> 96), (uint)(newValue >> 96)) + AddressDelta((uint)(oldValue >> 64), (uint)(newValue >> 64)) +
        AddressDelta((uint)(oldValue >> 32), (uint)(newValue >> 32)) + AddressDelta((uint)oldValue, (uint)newValue);

    /// <summary>HC' = ~(~HC + delta), folded: a checksum moved by an <see cref="AddressDelta(uint, uint)"/>.</summary>
    public static ushort ApplyDelta(ushort checksum, uint delta)
    {
        uint sum = (uint)(ushort)~checksum + delta;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

    /// <summary>A plain (uncomplemented) sum moved by an address delta: the pseudo-header seed of a CHECKSUM_PARTIAL field.</summary>
    public static ushort ApplyDeltaToSum(ushort sum, uint delta) => (ushort)~ApplyDelta((ushort)~sum, delta);
}
