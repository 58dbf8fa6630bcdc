using System.Buffers;
using System.Buffers.Binary;
using CsCheck;
using UserspaceDr.Admin;
using UserspaceDr.Admin.Control;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Core.Services;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.Control;

/// <summary>
/// The inputs an operator or a local client hands udr, mutated (CsCheck): control-protocol frames (random bytes, lying
/// lengths and counts, frames arriving a few bytes at a time), rules files and keepalived.conf. Each has a defined
/// outcome and nothing else: a frame is complete, incomplete (nothing consumed) or malformed with a reason; a file
/// loads or is refused with a message (the CLI's exit 2); nothing throws anything else.
/// </summary>
public class InputFuzzTests
{
    private static readonly Gen<(int Kind, int Position, int Value)> Edit =
        from kind in Gen.Int[0, 4]
        from position in Gen.Int[0, 1 << 16]
        from value in Gen.Int[0, 255]
        select (kind, position, value);

    /// <summary>Files made from one of <paramref name="seeds"/> by one to six edits (<see cref="Apply"/>).</summary>
    private static Gen<byte[]> Mutations(byte[][] seeds) =>
        from seed in Gen.Int[0, seeds.Length - 1]
        from edits in Edit.Array[1, 6]
        select Apply(seeds[seed], edits);

    /// <summary>Cuts, inserts, overwrites or duplicates bytes of <paramref name="seed"/>.</summary>
    private static byte[] Apply(byte[] seed, (int Kind, int Position, int Value)[] edits)
    {
        byte[] data = seed;
        foreach ((int kind, int position, int value) in edits)
        {
            int at = data.Length == 0 ? 0 : position % (data.Length + 1);
            data = kind switch
            {
                0 => data[..at],
                1 => [.. data[..at], (byte)value, .. data[at..]],
                2 when at < data.Length => [.. data[..at], (byte)value, .. data[(at + 1)..]],
                3 => [.. data[..at], .. data[at..Math.Min(data.Length, at + (value % 32))], .. data[at..]],
                _ => [.. data[..at], .. data[Math.Min(data.Length, at + (value % 16))..]],
            };
        }
        return data;
    }

    [Test]
    public void Control_frames_are_complete_incomplete_or_malformed_also_when_they_arrive_in_pieces()
    {
        var writer = new ArrayBufferWriter<byte>();
        ControlProtocol.WriteRequest(writer, new ControlRequest("ipvsadm", ["-A", "-t", "198.18.0.100:80", "-s", "wrr"], "-a -t 198.18.0.100:80 -r 198.18.0.11\n"));
        byte[] valid = writer.WrittenSpan.ToArray();
        Gen<(byte[] Frame, int Piece)> frames =
            from edits in Edit.Array[0, 4]
            from lengthLie in Gen.Int[-1, 8]
            from piece in Gen.Int[1, 64]
            select (Lie(Apply(valid, edits), lengthLie), piece);
        frames.Sample(c =>
        {
            var whole = new ReadOnlySequence<byte>(c.Frame);
            ControlFrameStatus status = ControlProtocol.TryReadRequest(ref whole, out ControlRequest? request, out string? error);
            Check(status, request, error, whole, c.Frame.Length);
            // The same bytes a few at a time, as a slow client sends them: the reader sees growing prefixes and must
            // end where it ends with the whole.
            ControlFrameStatus last = ControlFrameStatus.Incomplete;
            for (int length = 0; length <= c.Frame.Length && last == ControlFrameStatus.Incomplete; length = Math.Min(c.Frame.Length, length + c.Piece))
            {
                var prefix = new ReadOnlySequence<byte>(c.Frame, 0, length);
                last = ControlProtocol.TryReadRequest(ref prefix, out ControlRequest? partial, out string? partialError);
                Check(last, partial, partialError, prefix, length);
                if (length == c.Frame.Length)
                {
                    break;
                }
            }
            if (last != status)
            {
                throw new InvalidOperationException($"in pieces {last}, whole {status}");
            }
        }, iter: 20_000);

        static void Check(ControlFrameStatus status, ControlRequest? request, string? error, ReadOnlySequence<byte> rest, int length)
        {
            switch (status)
            {
                case ControlFrameStatus.Complete when request is null:
                    throw new InvalidOperationException("complete without a request");
                case ControlFrameStatus.Malformed when string.IsNullOrEmpty(error):
                    throw new InvalidOperationException("malformed without a reason");
                case ControlFrameStatus.Incomplete when rest.Length != length:
                    throw new InvalidOperationException("an incomplete frame was consumed");
                default:
                    break;
            }
        }
    }

    /// <summary>Sets the frame's 4-byte length prefix to a lie (-1: left alone).</summary>
    private static byte[] Lie(byte[] frame, int lie)
    {
        if (lie < 0 || frame.Length < 4)
        {
            return frame;
        }
        uint told = lie switch
        {
            0 => 0,
            1 => uint.MaxValue,
            2 => ControlProtocol.MaxRequestBytes + 1u,
            3 => (uint)frame.Length,
            4 => (uint)(frame.Length - 3),
            5 => (uint)frame.Length * 2,
            6 => 4,
            _ => (uint)Math.Max(0, frame.Length - 4 - lie),
        };
        byte[] copy = [.. frame];
        BinaryPrimitives.WriteUInt32BigEndian(copy, told);
        return copy;
    }

    [Test]
    public void Rules_files_load_or_are_refused_with_a_message()
    {
        // The fixtures' rules files, and IPv6 services (brackets, prefix-length persistence, a mixed-family tunnel).
        byte[][] seeds =
        [
            .. Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "pcaps"), "*.rules").Order().Select(File.ReadAllBytes),
            System.Text.Encoding.UTF8.GetBytes("""
                -A -t [2001:2::100]:80 -s sh -p 600 -M 64
                -a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 3
                -A -u [2001:2::100]:53 -s rr
                -a -u [2001:2::100]:53 -r [2001:2::12]:53 -g -w 1
                -A -t 198.18.0.100:80 -s rr
                -a -t 198.18.0.100:80 -r [2001:2::13]:80 -i -w 1

                """),
        ];
        Mutations(seeds).Sample(bytes =>
        {
            IpvsadmResult<RuleSetSpec> result = RulesFile.Load(System.Text.Encoding.UTF8.GetString(bytes));
            if (!result.IsSuccess && string.IsNullOrEmpty(result.Error?.Message))
            {
                throw new InvalidOperationException("refused without a message");
            }
        }, iter: 20_000);
    }

    [Test]
    public void Mark_rules_files_load_or_are_refused_with_their_line()
    {
        byte[][] seeds =
        [
            System.Text.Encoding.UTF8.GetBytes("""
                # Generated by iptables-save v1.8.9 (nf_tables)
                *filter
                :INPUT ACCEPT [0:0]
                -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
                COMMIT
                *mangle
                :PREROUTING ACCEPT [3:180]
                [3:180] -A PREROUTING -s 198.18.0.0/16 -d 198.18.0.100/32 -i eth0 -p tcp -m multiport --dports 80,443,8000:8080 -m comment --comment "web \"both\"" -j MARK --set-xmark 0x1/0xffffffff
                -A PREROUTING -d 198.18.0.96/30 ! -p tcp -m udp ! --sport 53 -j MARK --set-mark 0x2/0xff
                -A PREROUTING -m mark --mark 0x2/0xff -j MARK --or-mark 0x10
                COMMIT

                """),
            System.Text.Encoding.UTF8.GetBytes("""
                # Generated by ip6tables-save v1.8.9
                *mangle
                -A PREROUTING -d 2001:2::100/128 -p udp -m udp --dport 5353 -j MARK --set-xmark 0x5/0xffffffff
                -A INPUT ! -s 2001:2::/64 -d 2001:2::100/120 -j MARK --xor-mark 7
                COMMIT

                """),
        ];
        Mutations(seeds).Sample(bytes =>
        {
            try
            {
                FirewallMarkRules rules = MarkRulesFile.Parse(System.Text.Encoding.UTF8.GetString(bytes), "marks").ForLinks(["eth0"]);
                // What the data plane does with them: classify a frame, list a mark's destinations.
                _ = rules.Classify(Core.Packets.Ipv4Address.Parse("198.18.0.1"), Core.Packets.Ipv4Address.Parse("198.18.0.100"), 6, 40000, 80);
                _ = rules.DestinationsOf(Core.Packets.IpFamily.IPv4, 1).SelectMany(p => p.Addresses()).Count();
            }
            catch (MarkRulesException e) when (e.Message.StartsWith("marks:", StringComparison.Ordinal))
            {
                // Refused with its line: udr run prints it and exits 2, applying nothing.
            }
        }, iter: 20_000);
    }

    [Test]
    public void Keepalived_configurations_load_or_are_refused_with_their_place()
    {
        byte[][] seeds =
        [
            .. Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "tests", "keepalived-samples"), "keepalived.conf.*").Order().Select(File.ReadAllBytes),
            System.Text.Encoding.UTF8.GetBytes("""
                virtual_server 2001:2::100 80 {
                    lb_algo sh
                    lb_kind DR
                    persistence_timeout 600
                    persistence_granularity 64
                    real_server 2001:2::11 80 {
                        weight 3
                        HTTP_GET {
                            url {
                                path /
                            }
                        }
                    }
                }

                """),
        ];
        Mutations(seeds).Sample(bytes =>
        {
            try
            {
                KeepalivedConfig config = KeepalivedParser.Parse(System.Text.Encoding.UTF8.GetString(bytes));
                // What udr would run from it: the rule set with every server up.
                KeepalivedRules.Build(config, (_, rs) => KeepalivedRules.Initial(rs), _ => true);
            }
            catch (ConfigException e) when (e.Message.Length > 0)
            {
                // Refused: udr run prints it with the place and exits 2, applying nothing.
            }
        }, iter: 20_000);
    }
}
