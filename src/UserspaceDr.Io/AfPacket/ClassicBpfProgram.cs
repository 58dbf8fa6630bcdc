using System.Collections.ObjectModel;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace UserspaceDr.Io.AfPacket;

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
}

/// <summary>An immutable classic BPF program for SO_ATTACH_FILTER or a PACKET_FANOUT_CBPF steering program.</summary>
public sealed class ClassicBpfProgram
{
    /// <summary>BPF_MAXINSNS.</summary>
    public const int MaxInstructions = 4096;

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

    internal unsafe void Attach(SafePacketSocketHandle socket, int level, int optionName)
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
