using System.Buffers.Binary;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.AfPacket;

namespace UserspaceDr.Tests.Io;

/// <summary>
/// The service filter's logic, run through a small classic BPF interpreter (no root needed). The lab tests run
/// the same program in the kernel.
/// </summary>
public class ServiceTrafficFilterTests
{
    private static readonly uint Vip = CapturedFrame.Address("198.18.0.100");
    private static readonly uint Extra = CapturedFrame.Address("198.18.0.66");
    private static readonly uint Other = CapturedFrame.Address("198.18.0.77");
    private static readonly ClassicBpfProgram Filter = ServiceTrafficFilter.Build([Vip, Vip], [Extra]);

    [Test]
    public void Accepts_arp_and_ipv4_to_vips_and_extra_destinations_untagged_or_with_one_tag()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(Filter, Frame(EtherTypes.Arp, 0, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Extra, tagged: false)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Arp, 0, tagged: true)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: true)), Is.Not.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Extra, tagged: true)), Is.Not.Zero);
        });
    }

    [Test]
    public void Drops_other_destinations_other_protocols_and_short_frames()
    {
        Assert.Multiple(() =>
        {
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Other, tagged: false)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Other, tagged: true)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv6, Vip, tagged: false)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv6, Vip, tagged: true)), Is.Zero);
            Assert.That(Run(Filter, Frame(EtherTypes.Ipv4, Vip, tagged: false).AsSpan(0, 20).ToArray()), Is.Zero, "a load past the end drops");
        });
    }

    [Test]
    public void Compares_every_destination_of_a_full_set_and_refuses_one_more()
    {
        uint[] many = [.. Enumerable.Range(1, ServiceTrafficFilter.MaxDestinations).Select(i => CapturedFrame.Address("198.19.0.0") + (uint)i)];
        ClassicBpfProgram filter = ServiceTrafficFilter.Build(many, []);
        Assert.That(many.All(address => Run(filter, Frame(EtherTypes.Ipv4, address, tagged: false)) != 0), Is.True);
        Assert.That(Run(filter, Frame(EtherTypes.Ipv4, Vip, tagged: false)), Is.Zero);
        Assert.That(() => ServiceTrafficFilter.Build([.. many, Vip], []), Throws.ArgumentException);
    }

    private static byte[] Frame(ushort etherType, uint destination, bool tagged)
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

    /// <summary>Interprets the subset of classic BPF the filter uses, with the kernel's rules: forward jumps, out-of-bounds load returns 0.</summary>
    private static uint Run(ClassicBpfProgram program, byte[] packet)
    {
        uint accumulator = 0;
        int pc = 0;
        var instructions = program.Instructions;
        while (true)
        {
            ClassicBpfInstruction insn = instructions[pc];
            switch (insn.Code)
            {
                case ClassicBpfInstruction.LoadWordAbsolute:
                    if (insn.K + 4 > packet.Length)
                    {
                        return 0;
                    }
                    accumulator = BinaryPrimitives.ReadUInt32BigEndian(packet.AsSpan((int)insn.K));
                    pc++;
                    break;
                case ClassicBpfInstruction.LoadHalfAbsolute:
                    if (insn.K + 2 > packet.Length)
                    {
                        return 0;
                    }
                    accumulator = BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan((int)insn.K));
                    pc++;
                    break;
                case ClassicBpfInstruction.JumpAlways:
                    pc += 1 + (int)insn.K;
                    break;
                case ClassicBpfInstruction.JumpIfEqual:
                    pc += 1 + (accumulator == insn.K ? insn.JumpTrue : insn.JumpFalse);
                    break;
                case ClassicBpfInstruction.ReturnConstant:
                    return insn.K;
                default:
                    throw new InvalidOperationException($"opcode 0x{insn.Code:x2} not modelled");
            }
        }
    }
}
