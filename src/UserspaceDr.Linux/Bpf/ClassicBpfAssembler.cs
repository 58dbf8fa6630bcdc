namespace UserspaceDr.Linux.Bpf;

/// <summary>
/// Builds a classic BPF program with named jump targets, so that the generators (socket filter, fanout steering)
/// never count instruction offsets by hand. Classic BPF only jumps forward; a conditional jump reaches at most 255
/// instructions ahead (its offsets are bytes), which <see cref="Build"/> checks.
/// </summary>
internal sealed class ClassicBpfAssembler
{
    private readonly List<ClassicBpfInstruction> _code = [];
    private readonly List<(int Pc, string? WhenTrue, string? WhenFalse)> _fixups = [];
    private readonly Dictionary<string, int> _labels = new(StringComparer.Ordinal);

    public int Count => _code.Count;

    /// <summary>Marks the next instruction as <paramref name="label"/>.</summary>
    public ClassicBpfAssembler Label(string label)
    {
        if (!_labels.TryAdd(label, _code.Count))
        {
            throw new InvalidOperationException($"label '{label}' defined twice");
        }
        return this;
    }

    /// <summary>An instruction without jumps.</summary>
    public ClassicBpfAssembler Emit(ushort code, uint k = 0)
    {
        _code.Add(new ClassicBpfInstruction(code, 0, 0, k));
        return this;
    }

    /// <summary>"jeq #k": to <paramref name="whenTrue"/> or <paramref name="whenFalse"/> (null: the next instruction).</summary>
    public ClassicBpfAssembler JumpIfEqual(uint k, string? whenTrue, string? whenFalse = null) =>
        JumpIf(ClassicBpfInstruction.JumpIfEqual, k, whenTrue, whenFalse);

    /// <summary>"jge #k" (unsigned): to <paramref name="whenTrue"/> or <paramref name="whenFalse"/> (null: the next instruction).</summary>
    public ClassicBpfAssembler JumpIfGreaterOrEqual(uint k, string? whenTrue, string? whenFalse = null) =>
        JumpIf(ClassicBpfInstruction.JumpIfGreaterOrEqual, k, whenTrue, whenFalse);

    private ClassicBpfAssembler JumpIf(ushort code, uint k, string? whenTrue, string? whenFalse)
    {
        _fixups.Add((_code.Count, whenTrue, whenFalse));
        _code.Add(new ClassicBpfInstruction(code, 0, 0, k));
        return this;
    }

    /// <summary>"ja label": an unconditional jump (32-bit offset, no 255 limit).</summary>
    public ClassicBpfAssembler Jump(string label)
    {
        _fixups.Add((_code.Count, label, null));
        _code.Add(new ClassicBpfInstruction(ClassicBpfInstruction.JumpAlways, 0, 0, 0));
        return this;
    }

    public ClassicBpfAssembler Return(uint k) => Emit(ClassicBpfInstruction.ReturnConstant, k);

    public ClassicBpfProgram Build()
    {
        foreach ((int pc, string? whenTrue, string? whenFalse) in _fixups)
        {
            ClassicBpfInstruction insn = _code[pc];
            int trueOffset = Offset(pc, whenTrue);
            if (insn.Code == ClassicBpfInstruction.JumpAlways)
            {
                _code[pc] = insn with { K = (uint)trueOffset };
                continue;
            }
            int falseOffset = Offset(pc, whenFalse);
            if (trueOffset > byte.MaxValue || falseOffset > byte.MaxValue)
            {
                throw new ArgumentException($"a conditional jump at {pc} reaches more than 255 instructions ahead");
            }
            _code[pc] = insn with { JumpTrue = (byte)trueOffset, JumpFalse = (byte)falseOffset };
        }
        return new ClassicBpfProgram(_code);
    }

    private int Offset(int pc, string? label)
    {
        if (label is null)
        {
            return 0;
        }
        if (!_labels.TryGetValue(label, out int target))
        {
            throw new InvalidOperationException($"label '{label}' is never defined");
        }
        if (target <= pc)
        {
            throw new InvalidOperationException($"classic BPF jumps only forward: '{label}' from {pc}");
        }
        return target - pc - 1;
    }
}
