using System.Buffers.Binary;
using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Tests.Linux.Bpf;

/// <summary>
/// Interprets the classic BPF the generators emit, with the kernel's rules: forward jumps only, a load past the end
/// of the packet ends the program with 0, 32-bit ALU (unsigned compares), loads at SKF_NET_OFF + n read the network header + n, and
/// the ancillary protocol load yields skb->protocol.
/// </summary>
internal static class ClassicBpfInterpreter
{
    /// <param name="packet">What skb->data points at: the MAC header for a socket filter, the network header for a fanout program.</param>
    /// <param name="networkOffset">Where the network header is in <paramref name="packet"/>.</param>
    /// <param name="protocol">skb->protocol, host order (0x0800 for IPv4).</param>
    public static uint Run(ClassicBpfProgram program, ReadOnlySpan<byte> packet, int networkOffset = 14, ushort protocol = 0x0800)
    {
        uint a = 0;
        uint x = 0;
        Span<uint> memory = stackalloc uint[16];
        var instructions = program.Instructions;
        int pc = 0;
        while (true)
        {
            ClassicBpfInstruction insn = instructions[pc];
            pc++;
            switch (insn.Code)
            {
                case ClassicBpfInstruction.LoadWordAbsolute when insn.K == ClassicBpfInstruction.AncillaryProtocol:
                    a = protocol;
                    break;
                case ClassicBpfInstruction.LoadWordAbsolute:
                case ClassicBpfInstruction.LoadHalfAbsolute:
                case ClassicBpfInstruction.LoadByteAbsolute:
                case ClassicBpfInstruction.LoadWordIndirect:
                case ClassicBpfInstruction.LoadHalfIndirect:
                case ClassicBpfInstruction.LoadByteIndirect:
                {
                    bool indirect = (insn.Code & 0xE0) == 0x40;
                    long k = (int)insn.K; // negative: SKF_NET_OFF-relative
                    long at = indirect ? k + x : k;
                    if (at < 0)
                    {
                        long relative = at - unchecked((int)ClassicBpfInstruction.NetworkOffset);
                        if (relative < 0 || relative > 0xFFFF)
                        {
                            return 0;
                        }
                        at = networkOffset + relative;
                    }
                    int size = (insn.Code & 0x18) switch { 0x00 => 4, 0x08 => 2, _ => 1 };
                    if (at + size > packet.Length)
                    {
                        return 0;
                    }
                    ReadOnlySpan<byte> bytes = packet[(int)at..];
                    a = size switch { 4 => BinaryPrimitives.ReadUInt32BigEndian(bytes), 2 => BinaryPrimitives.ReadUInt16BigEndian(bytes), _ => bytes[0] };
                    break;
                }
                case ClassicBpfInstruction.LoadIndexImmediate:
                    x = insn.K;
                    break;
                case ClassicBpfInstruction.LoadIndexHeaderLength:
                    if (insn.K >= packet.Length)
                    {
                        return 0;
                    }
                    x = (uint)(packet[(int)insn.K] & 0x0F) * 4;
                    break;
                case ClassicBpfInstruction.LoadLength:
                    a = (uint)packet.Length;
                    break;
                case ClassicBpfInstruction.LoadIndexMemory:
                    x = memory[(int)insn.K];
                    break;
                case ClassicBpfInstruction.SubtractIndex:
                    a = unchecked(a - x);
                    break;
                case 0x60: // BPF_LD | BPF_MEM
                    a = memory[(int)insn.K];
                    break;
                case ClassicBpfInstruction.Store:
                    memory[(int)insn.K] = a;
                    break;
                case ClassicBpfInstruction.AndConstant:
                    a &= insn.K;
                    break;
                case ClassicBpfInstruction.LeftShiftConstant:
                    a <<= (int)insn.K;
                    break;
                case ClassicBpfInstruction.RightShiftConstant:
                    a >>= (int)insn.K;
                    break;
                case ClassicBpfInstruction.MultiplyConstant:
                    a = unchecked(a * insn.K);
                    break;
                case ClassicBpfInstruction.ModuloConstant:
                    a %= insn.K;
                    break;
                case ClassicBpfInstruction.AccumulatorToIndex:
                    x = a;
                    break;
                case ClassicBpfInstruction.AddIndex:
                    a = unchecked(a + x);
                    break;
                case ClassicBpfInstruction.XorIndex:
                    a ^= x;
                    break;
                case ClassicBpfInstruction.IndexToAccumulator:
                    a = x;
                    break;
                case ClassicBpfInstruction.JumpAlways:
                    pc += (int)insn.K;
                    break;
                case ClassicBpfInstruction.JumpIfEqual:
                    pc += a == insn.K ? insn.JumpTrue : insn.JumpFalse;
                    break;
                case ClassicBpfInstruction.JumpIfGreaterOrEqual:
                    pc += a >= insn.K ? insn.JumpTrue : insn.JumpFalse;
                    break;
                case ClassicBpfInstruction.ReturnConstant:
                    return insn.K;
                case ClassicBpfInstruction.ReturnAccumulator:
                    return a;
                default:
                    throw new InvalidOperationException($"opcode 0x{insn.Code:x2} not modelled");
            }
        }
    }
}
