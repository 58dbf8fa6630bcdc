using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace UserspaceDr.Core.Scheduling;

/// <summary>
/// SipHash-c-d (Aumasson and Bernstein) with the round counts as parameters, and the Linux kernel's hsiphash built on
/// it for the mh scheduler.
/// </summary>
internal static class SipHash
{
    // "somepseudorandomlygeneratedbytes", the initial state from the SipHash paper.
    private const ulong InitialV0 = 0x736f6d6570736575;
    private const ulong InitialV1 = 0x646f72616e646f6d;
    private const ulong InitialV2 = 0x6c7967656e657261;
    private const ulong InitialV3 = 0x7465646279746573;

    /// <summary>SipHash with <paramref name="compressionRounds"/> rounds per 8-byte word and
    /// <paramref name="finalizationRounds"/> at the end (2 and 4 for the SipHash-2-4 of the paper).</summary>
    public static ulong Compute(ReadOnlySpan<byte> message, ulong key0, ulong key1, int compressionRounds, int finalizationRounds)
    {
        ulong v0 = InitialV0 ^ key0;
        ulong v1 = InitialV1 ^ key1;
        ulong v2 = InitialV2 ^ key0;
        ulong v3 = InitialV3 ^ key1;

        int wholeWords = message.Length & ~7;
        for (int offset = 0; offset < wholeWords; offset += sizeof(ulong))
        {
            ulong word = BinaryPrimitives.ReadUInt64LittleEndian(message[offset..]);
            v3 ^= word;
            Rounds(compressionRounds, ref v0, ref v1, ref v2, ref v3);
            v0 ^= word;
        }

        // The last word: the remaining bytes little-endian, the message length (mod 256) in the top byte.
        ulong last = (ulong)message.Length << 56;
        ReadOnlySpan<byte> tail = message[wholeWords..];
        for (int i = 0; i < tail.Length; i++)
        {
            last |= (ulong)tail[i] << (8 * i);
        }
        v3 ^= last;
        Rounds(compressionRounds, ref v0, ref v1, ref v2, ref v3);
        v0 ^= last;

        v2 ^= 0xff;
        Rounds(finalizationRounds, ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    /// <summary>
    /// The kernel's hsiphash(&amp;value, sizeof(u32), key) as a 64-bit kernel computes it (lib/siphash.c: with
    /// BITS_PER_LONG == 64 "HalfSipHash1-3" is SipHash-1-3 with two 64-bit key words, truncated to u32). The value is
    /// hashed as it lies in a little-endian host's memory.
    /// </summary>
    public static uint KernelHsiphash(uint value, ulong key0, ulong key1)
    {
        Span<byte> bytes = stackalloc byte[sizeof(uint)];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        return (uint)Compute(bytes, key0, key1, compressionRounds: 1, finalizationRounds: 3);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Rounds(int count, ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        for (int round = 0; round < count; round++)
        {
            v0 += v1;
            v1 = BitOperations.RotateLeft(v1, 13);
            v1 ^= v0;
            v0 = BitOperations.RotateLeft(v0, 32);
            v2 += v3;
            v3 = BitOperations.RotateLeft(v3, 16);
            v3 ^= v2;
            v0 += v3;
            v3 = BitOperations.RotateLeft(v3, 21);
            v3 ^= v0;
            v2 += v1;
            v1 = BitOperations.RotateLeft(v1, 17);
            v1 ^= v2;
            v2 = BitOperations.RotateLeft(v2, 32);
        }
    }
}
