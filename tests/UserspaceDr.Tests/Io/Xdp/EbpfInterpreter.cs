using System.Buffers.Binary;

namespace UserspaceDr.Tests.Io.Xdp;

/// <summary>
/// Runs an XDP program of the instructions <see cref="UserspaceDr.Io.Xdp.EbpfAssembler"/> writes, over one frame, as the
/// kernel would (the tests' stand-in for the kernel, as <c>ClassicBpfInterpreter</c> is for classic BPF): registers,
/// a 512-byte stack, the packet, the context (data, data_end, rx_queue_index), hash maps keyed by descriptor, and the
/// two helpers the program calls (map lookup, redirect to the socket map). Memory is addressed by region: a load or
/// store outside the packet, the stack or a map value throws, as the verifier would have refused it.
/// </summary>
internal sealed class EbpfInterpreter(ulong[] program, IReadOnlyDictionary<int, EbpfInterpreter.HashMap> maps)
{
    private const ulong Packet = 0x1000_0000, Stack = 0x2000_0000, Values = 0x3000_0000, Context = 0x4000_0000;
    private const int StackSize = 512;

    /// <summary>A BPF hash map: its key length and entries (key in hex → one-byte value).</summary>
    internal sealed record HashMap(int KeyLength, Dictionary<string, byte> Entries);

    /// <summary>The verdict: XDP_PASS (2), or Redirected with the queue it asked for.</summary>
    internal readonly record struct Outcome(int Action, bool Redirected, uint Queue);

    internal Outcome Run(byte[] frame, uint queue = 0)
    {
        var registers = new ulong[11];
        byte[] stack = new byte[StackSize];
        var values = new List<byte[]>();
        registers[1] = Context;
        registers[10] = Stack + StackSize;
        for (int pc = 0, steps = 0; ; pc++, steps++)
        {
            if (steps > 10_000 || pc >= program.Length)
            {
                throw new InvalidOperationException($"ran off the program at {pc}");
            }
            ulong word = program[pc];
            byte code = (byte)word;
            int dst = (int)(word >> 8) & 0xF, src = (int)(word >> 12) & 0xF;
            short offset = (short)(word >> 16);
            int immediate = (int)(word >> 32);
            switch (code)
            {
                case 0xb7: registers[dst] = (ulong)(long)immediate; break; // mov K
                case 0xbf: registers[dst] = registers[src]; break; // mov X
                case 0x07: registers[dst] += (ulong)(long)immediate; break; // add K
                case 0x57: registers[dst] &= (ulong)(long)immediate; break; // and K
                case 0x71: registers[dst] = Load(registers[src] + (ulong)(long)offset, 1); break;
                case 0x69: registers[dst] = Load(registers[src] + (ulong)(long)offset, 2); break;
                case 0x61: registers[dst] = Load(registers[src] + (ulong)(long)offset, 4); break;
                case 0x63: Store(registers[dst] + (ulong)(long)offset, (uint)registers[src], 4); break;
                case 0x6b: Store(registers[dst] + (ulong)(long)offset, (ushort)registers[src], 2); break;
                case 0x15: if (registers[dst] == (ulong)(long)immediate) { pc += offset; } break;
                case 0x55: if (registers[dst] != (ulong)(long)immediate) { pc += offset; } break;
                case 0x2d: if (registers[dst] > registers[src]) { pc += offset; } break;
                case 0x05: pc += offset; break;
                case 0x18: // ld_imm64 of a map descriptor (BPF_PSEUDO_MAP_FD)
                    Assert.That(src, Is.EqualTo(1), "only map references are loaded as 64-bit immediates");
                    registers[dst] = 0xF000_0000_0000_0000 | (uint)immediate;
                    pc++;
                    break;
                case 0x85 when immediate == 1: // bpf_map_lookup_elem(map, key)
                {
                    int fd = (int)(uint)registers[1];
                    int keyLength = maps[fd].KeyLength;
                    string key = Convert.ToHexString([.. Enumerable.Range(0, keyLength).Select(i => (byte)Load(registers[2] + (ulong)i, 1))]);
                    if (maps[fd].Entries.TryGetValue(key, out byte value))
                    {
                        values.Add([value]);
                        registers[0] = Values + (ulong)((values.Count - 1) * 0x100);
                    }
                    else
                    {
                        registers[0] = 0;
                    }
                    Clobber();
                    break;
                }
                case 0x85 when immediate == 51: // bpf_redirect_map(map, key, flags)
                    return new Outcome(4, true, (uint)registers[2]);
                case 0x95:
                    return new Outcome((int)registers[0], false, 0);
                default:
                    throw new InvalidOperationException($"instruction {word:x16} at {pc} is not one the interpreter knows");
            }
        }

        void Clobber()
        {
            for (int r = 1; r <= 5; r++)
            {
                registers[r] = 0xDEAD;
            }
        }

        ulong Load(ulong address, int size)
        {
            (byte[] memory, int at) = Resolve(address, size);
            return size switch
            {
                1 => memory[at],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(memory.AsSpan(at)),
                _ => BinaryPrimitives.ReadUInt32LittleEndian(memory.AsSpan(at)),
            };
        }

        void Store(ulong address, uint value, int size)
        {
            (byte[] memory, int at) = Resolve(address, size);
            if (size == 2)
            {
                BinaryPrimitives.WriteUInt16LittleEndian(memory.AsSpan(at), (ushort)value);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(memory.AsSpan(at), value);
            }
        }

        (byte[] Memory, int At) Resolve(ulong address, int size)
        {
            if (address >= Context && address + (ulong)size <= Context + 20)
            {
                byte[] context = new byte[20];
                BinaryPrimitives.WriteUInt32LittleEndian(context, (uint)Packet);
                BinaryPrimitives.WriteUInt32LittleEndian(context.AsSpan(4), (uint)(Packet + (ulong)frame.Length));
                BinaryPrimitives.WriteUInt32LittleEndian(context.AsSpan(16), queue);
                return (context, (int)(address - Context));
            }
            if (address >= Packet && address + (ulong)size <= Packet + (ulong)frame.Length)
            {
                return (frame, (int)(address - Packet));
            }
            if (address >= Stack && address + (ulong)size <= Stack + StackSize)
            {
                return (stack, (int)(address - Stack));
            }
            if (address >= Values && (int)((address - Values) / 0x100) < values.Count && (address - Values) % 0x100 == 0 && size == 1)
            {
                return (values[(int)((address - Values) / 0x100)], 0);
            }
            throw new InvalidOperationException($"access of {size} bytes at {address:x} is outside the packet's bounds, the stack and the map values");
        }
    }
}
