using UserspaceDr.Linux.Bpf;

namespace UserspaceDr.Io.Xdp;

/// <summary>An eBPF register (r0 return value, r1–r5 arguments, r6–r9 kept across calls, r10 the frame pointer).</summary>
public enum EbpfRegister : byte
{
    R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10,
}

/// <summary>
/// Writes eBPF instructions (Documentation/bpf/standardization/instruction-set.rst) with named jump targets, as
/// <see cref="AfPacket.ClassicBpfAssembler"/> does for classic BPF. Only what udr's XDP steering program needs: 64-bit
/// moves and adds, packet and stack loads and stores, conditional jumps against an immediate or a register, map
/// references, helper calls and exit. Each instruction is one 64-bit word in host order (code, registers, offset,
/// immediate), a map reference two.
/// </summary>
public sealed class EbpfAssembler
{
    // Instruction classes, sizes, modes and operations (linux/bpf_common.h, linux/bpf.h).
    private const byte ClassLd = 0x00, ClassLdx = 0x01, ClassStx = 0x03, ClassJmp = 0x05, ClassAlu64 = 0x07;
    private const byte SizeW = 0x00, SizeH = 0x08, SizeB = 0x10, SizeDw = 0x18;
    private const byte ModeImm = 0x00, ModeMem = 0x60;
    private const byte SourceK = 0x00, SourceX = 0x08;
    private const byte OpAdd = 0x00, OpAnd = 0x50, OpMov = 0xb0;
    private const byte JumpAlways = 0x00, JumpEqual = 0x10, JumpGreater = 0x20, JumpNotEqual = 0x50, OpCall = 0x80, OpExit = 0x90;
    private const byte PseudoMapFd = 1;

    private readonly List<ulong> _words = [];
    private readonly Dictionary<string, int> _labels = [];
    private readonly List<(int Index, string Label)> _jumps = [];

    /// <summary>The instructions so far, jumps resolved; throws for a label that was never placed.</summary>
    public ulong[] Build()
    {
        ulong[] words = [.. _words];
        foreach ((int index, string label) in _jumps)
        {
            if (!_labels.TryGetValue(label, out int target))
            {
                throw new InvalidOperationException($"jump to label '{label}', which was never placed");
            }
            int offset = target - index - 1;
            if (offset is < short.MinValue or > short.MaxValue)
            {
                throw new InvalidOperationException($"jump to '{label}' is out of reach ({offset} instructions)");
            }
            words[index] = (words[index] & ~(0xFFFFUL << 16)) | ((ulong)(ushort)(short)offset << 16);
        }
        return words;
    }

    public EbpfAssembler Label(string name)
    {
        if (!_labels.TryAdd(name, _words.Count))
        {
            throw new InvalidOperationException($"label '{name}' placed twice");
        }
        return this;
    }

    /// <summary>dst = imm (64-bit, sign-extended).</summary>
    public EbpfAssembler Move(EbpfRegister destination, int immediate) => Emit(ClassAlu64 | OpMov | SourceK, destination, 0, 0, immediate);

    public EbpfAssembler Move(EbpfRegister destination, EbpfRegister source) => Emit(ClassAlu64 | OpMov | SourceX, destination, source, 0, 0);

    public EbpfAssembler Add(EbpfRegister destination, int immediate) => Emit(ClassAlu64 | OpAdd | SourceK, destination, 0, 0, immediate);

    public EbpfAssembler And(EbpfRegister destination, int immediate) => Emit(ClassAlu64 | OpAnd | SourceK, destination, 0, 0, immediate);

    /// <summary>dst = *(u8 *)(src + offset).</summary>
    public EbpfAssembler LoadByte(EbpfRegister destination, EbpfRegister source, short offset) => Emit(ClassLdx | ModeMem | SizeB, destination, source, offset, 0);

    /// <summary>dst = *(u16 *)(src + offset), in host order (bytes as they lie: a network-order field reads byte-swapped).</summary>
    public EbpfAssembler LoadHalf(EbpfRegister destination, EbpfRegister source, short offset) => Emit(ClassLdx | ModeMem | SizeH, destination, source, offset, 0);

    /// <summary>dst = *(u32 *)(src + offset), in host order.</summary>
    public EbpfAssembler LoadWord(EbpfRegister destination, EbpfRegister source, short offset) => Emit(ClassLdx | ModeMem | SizeW, destination, source, offset, 0);

    /// <summary>*(u32 *)(dst + offset) = src.</summary>
    public EbpfAssembler StoreWord(EbpfRegister destination, short offset, EbpfRegister source) => Emit(ClassStx | ModeMem | SizeW, destination, source, offset, 0);

    /// <summary>*(u16 *)(destination + offset) = source.</summary>
    public EbpfAssembler StoreHalf(EbpfRegister destination, short offset, EbpfRegister source) => Emit(ClassStx | ModeMem | SizeH, destination, source, offset, 0);

    public EbpfAssembler JumpIfEqual(EbpfRegister register, int immediate, string label) => Jump(JumpEqual | SourceK, register, 0, immediate, label);

    public EbpfAssembler JumpIfNotEqual(EbpfRegister register, int immediate, string label) => Jump(JumpNotEqual | SourceK, register, 0, immediate, label);

    /// <summary>if dst &gt; src (unsigned) goto label: with a packet pointer against data_end, the verifier's bounds check.</summary>
    public EbpfAssembler JumpIfGreater(EbpfRegister destination, EbpfRegister source, string label) => Jump(JumpGreater | SourceX, destination, source, 0, label);

    public EbpfAssembler Goto(string label) => Jump(JumpAlways, 0, 0, 0, label);

    /// <summary>dst = the map of this descriptor (the loader swaps the descriptor for the map: BPF_PSEUDO_MAP_FD).</summary>
    public EbpfAssembler LoadMap(EbpfRegister destination, int mapFd)
    {
        Emit(ClassLd | ModeImm | SizeDw, destination, (EbpfRegister)PseudoMapFd, 0, mapFd);
        return Emit(0, 0, 0, 0, 0);
    }

    /// <summary>Calls a kernel helper by number (linux/bpf.h's __BPF_FUNC_MAPPER order); arguments in r1–r5, result in r0.</summary>
    public EbpfAssembler Call(int helper) => Emit(ClassJmp | OpCall, 0, 0, 0, helper);

    public EbpfAssembler Exit() => Emit(ClassJmp | OpExit, 0, 0, 0, 0);

    private EbpfAssembler Jump(int operation, EbpfRegister destination, EbpfRegister source, int immediate, string label)
    {
        _jumps.Add((_words.Count, label));
        return Emit(ClassJmp | operation, destination, source, 0, immediate);
    }

    private EbpfAssembler Emit(int code, EbpfRegister destination, EbpfRegister source, short offset, int immediate)
    {
        _words.Add((byte)code
            | ((ulong)(((byte)source << 4) | (byte)destination) << 8)
            | ((ulong)(ushort)offset << 16)
            | ((ulong)(uint)immediate << 32));
        return this;
    }
}
