using System.Collections.ObjectModel;
using System.ComponentModel;
using System.Runtime.InteropServices;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Bpf;

/// <summary>One classic BPF instruction, laid out as struct sock_filter.</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ClassicBpfInstruction(ushort Code, byte JumpTrue, byte JumpFalse, uint K)
{
    // Opcode parts (linux/bpf_common.h).
    public const ushort LoadWordAbsolute = 0x00 | 0x00 | 0x20;     // BPF_LD | BPF_W | BPF_ABS
    public const ushort LoadHalfAbsolute = 0x00 | 0x08 | 0x20;     // BPF_LD | BPF_H | BPF_ABS
    public const ushort LoadByteAbsolute = 0x00 | 0x10 | 0x20;     // BPF_LD | BPF_B | BPF_ABS
    public const ushort JumpAlways = 0x05 | 0x00;                  // BPF_JMP | BPF_JA
    public const ushort JumpIfEqual = 0x05 | 0x10 | 0x00;          // BPF_JMP | BPF_JEQ | BPF_K
    public const ushort ReturnConstant = 0x06 | 0x00;              // BPF_RET | BPF_K
    public const ushort ReturnAccumulator = 0x06 | 0x10;           // BPF_RET | BPF_A
    public const ushort LoadWordIndirect = 0x00 | 0x00 | 0x40;     // BPF_LD | BPF_W | BPF_IND: A = word at [X + k]
    public const ushort LoadHalfIndirect = 0x00 | 0x08 | 0x40;     // BPF_LD | BPF_H | BPF_IND
    public const ushort LoadByteIndirect = 0x00 | 0x10 | 0x40;     // BPF_LD | BPF_B | BPF_IND
    public const ushort LoadIndexImmediate = 0x01 | 0x00;          // BPF_LDX | BPF_W | BPF_IMM: X = k
    public const ushort AndConstant = 0x04 | 0x50 | 0x00;          // BPF_ALU | BPF_AND | BPF_K
    public const ushort LeftShiftConstant = 0x04 | 0x60 | 0x00;    // BPF_ALU | BPF_LSH | BPF_K
    public const ushort RightShiftConstant = 0x04 | 0x70 | 0x00;   // BPF_ALU | BPF_RSH | BPF_K
    public const ushort MultiplyConstant = 0x04 | 0x20 | 0x00;     // BPF_ALU | BPF_MUL | BPF_K
    public const ushort ModuloConstant = 0x04 | 0x90 | 0x00;       // BPF_ALU | BPF_MOD | BPF_K
    public const ushort AccumulatorToIndex = 0x07 | 0x00;          // BPF_MISC | BPF_TAX: X = A
    public const ushort IndexToAccumulator = 0x07 | 0x80;          // BPF_MISC | BPF_TXA: A = X
    public const ushort AddIndex = 0x04 | 0x00 | 0x08;             // BPF_ALU | BPF_ADD | BPF_X: A += X
    public const ushort XorIndex = 0x04 | 0xA0 | 0x08;             // BPF_ALU | BPF_XOR | BPF_X: A ^= X
    public const ushort SubtractIndex = 0x04 | 0x10 | 0x08;        // BPF_ALU | BPF_SUB | BPF_X: A -= X
    public const ushort LoadLength = 0x00 | 0x00 | 0x80;           // BPF_LD | BPF_W | BPF_LEN: A = the packet's length
    public const ushort LoadIndexHeaderLength = 0x01 | 0x10 | 0xA0; // BPF_LDX | BPF_B | BPF_MSH: X = 4 * ([k] & 0xf)
    public const ushort Store = 0x02;                              // BPF_ST: M[k] = A
    public const ushort LoadIndexMemory = 0x01 | 0x00 | 0x60;      // BPF_LDX | BPF_W | BPF_MEM: X = M[k]
    public const ushort JumpIfGreaterOrEqual = 0x05 | 0x30 | 0x00; // BPF_JMP | BPF_JGE | BPF_K

    /// <summary>SKF_AD_OFF + SKF_AD_PROTOCOL: a word load at this offset yields skb->protocol (host order, e.g. 0x0800).</summary>
    public const uint AncillaryProtocol = 0xFFFF_F000;

    /// <summary>
    /// SKF_NET_OFF: loads at this offset (+ n) read the network header (+ n), wherever skb->data points. A fanout
    /// program runs with skb->data at the network header, a socket filter with it at the MAC header.
    /// </summary>
    public const uint NetworkOffset = 0xFFF0_0000;
}

/// <summary>An immutable classic BPF program for SO_ATTACH_FILTER or a PACKET_FANOUT_CBPF steering program.</summary>
public sealed class ClassicBpfProgram
{
    /// <summary>BPF_MAXINSNS.</summary>
    public const int MaxInstructions = 4096;

    /// <summary>ldh [12]; jeq #0x0806 → accept; else drop: ARP frames only.</summary>
    public static ClassicBpfProgram ArpOnly { get; } = new([
        new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, 12),
        new(ClassicBpfInstruction.JumpIfEqual, 0, 1, EtherTypes.Arp),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, uint.MaxValue),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, 0),
    ]);

    /// <summary>
    /// ARP, or an ICMPv6 Neighbor Advertisement right after the IPv6 fixed header: what a neighbour resolver of both
    /// families learns from.
    /// </summary>
    public static ClassicBpfProgram NeighborDiscovery { get; } = new([
        new(ClassicBpfInstruction.LoadHalfAbsolute, 0, 0, 12),
        new(ClassicBpfInstruction.JumpIfEqual, 5, 0, EtherTypes.Arp),
        new(ClassicBpfInstruction.JumpIfEqual, 0, 5, EtherTypes.Ipv6),
        new(ClassicBpfInstruction.LoadByteAbsolute, 0, 0, 14 + 6),
        new(ClassicBpfInstruction.JumpIfEqual, 0, 3, Ipv6NextHeader.Icmpv6),
        new(ClassicBpfInstruction.LoadByteAbsolute, 0, 0, 14 + 40),
        new(ClassicBpfInstruction.JumpIfEqual, 0, 1, Icmpv6Type.NeighborAdvertisement),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, uint.MaxValue),
        new(ClassicBpfInstruction.ReturnConstant, 0, 0, 0),
    ]);

    private readonly ClassicBpfInstruction[] _instructions;

    public ClassicBpfProgram(IEnumerable<ClassicBpfInstruction> instructions)
    {
        ArgumentNullException.ThrowIfNull(instructions);
        _instructions = [.. instructions];
        if (_instructions.Length is 0 or > MaxInstructions)
        {
            throw new ArgumentException($"a classic BPF program has 1 to {MaxInstructions} instructions, not {_instructions.Length}", nameof(instructions));
        }
    }

    public ReadOnlyCollection<ClassicBpfInstruction> Instructions => _instructions.AsReadOnly();

    internal unsafe void Attach(SafeDescriptorHandle socket, int level, int optionName)
    {
        fixed (ClassicBpfInstruction* filter = _instructions)
        {
            var program = new Interop.SockFprog { Length = (ushort)_instructions.Length, Filter = (Interop.SockFilter*)filter };
            if (Interop.SetSockOpt(socket, level, optionName, &program, (uint)sizeof(Interop.SockFprog)) != 0)
            {
                throw new Win32Exception(Marshal.GetLastPInvokeError(), $"attaching a classic BPF program (option {optionName}) failed");
            }
        }
    }

    public override string ToString() => string.Join(Environment.NewLine,
        _instructions.Select((insn, pc) => FormattableString.Invariant($"{pc,4}: code=0x{insn.Code:x2} jt={insn.JumpTrue} jf={insn.JumpFalse} k=0x{insn.K:x}")));
}
