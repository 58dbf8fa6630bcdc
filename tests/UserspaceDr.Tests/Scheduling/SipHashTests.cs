using UserspaceDr.Core.Scheduling;

namespace UserspaceDr.Tests.Scheduling;

/// <summary>
/// Published vectors: key 00..0f, message 00..(n-1). SipHash-2-4 from the reference implementation (veorq/SipHash,
/// also the kernel's lib/test_siphash.c test_vectors_siphash); the kernel's 64-bit hsiphash (SipHash-1-3, 64-bit key
/// words, truncated to u32) from lib/test_siphash.c test_vectors_hsiphash under BITS_PER_LONG == 64.
/// </summary>
public class SipHashTests
{
    private const ulong Key0 = 0x0706050403020100;
    private const ulong Key1 = 0x0f0e0d0c0b0a0908;

    private static byte[] Message(int length)
    {
        byte[] message = new byte[length];
        for (int i = 0; i < length; i++)
        {
            message[i] = (byte)i;
        }
        return message;
    }

    [TestCase(0, 0x726fdb47dd0e0e31UL)]
    [TestCase(1, 0x74f839c593dc67fdUL)]
    [TestCase(4, 0xcf2794e0277187b7UL)]
    [TestCase(7, 0xab0200f58b01d137UL)]
    [TestCase(8, 0x93f5f5799a932462UL)]
    [TestCase(15, 0xa129ca6149be45e5UL)]
    [TestCase(16, 0x3f2acc7f57c29bdbUL)]
    [TestCase(63, 0x958a324ceb064572UL)]
    public void SipHash_2_4_matches_the_reference_vectors(int length, ulong expected)
    {
        Assert.That(SipHash.Compute(Message(length), Key0, Key1, 2, 4), Is.EqualTo(expected));
    }

    [TestCase(0, 0x050fc4dcU)]
    [TestCase(3, 0xe7ddf7fbU)]
    [TestCase(4, 0x88d38328U)]
    [TestCase(8, 0x8d299a8eU)]
    [TestCase(15, 0x2a519956U)]
    [TestCase(63, 0xb7bbb3a8U)]
    public void SipHash_1_3_truncated_matches_the_kernels_64_bit_hsiphash_vectors(int length, uint expected)
    {
        Assert.That((uint)SipHash.Compute(Message(length), Key0, Key1, 1, 3), Is.EqualTo(expected));
    }

    [Test]
    public void Kernel_hsiphash_of_a_u32_hashes_its_little_endian_bytes()
    {
        // hsiphash_1u32(0x03020100) equals hsiphash of the bytes 00 01 02 03 (test_vectors_hsiphash[4]).
        Assert.That(SipHash.KernelHsiphash(0x03020100, Key0, Key1), Is.EqualTo(0x88d38328U));
    }
}
