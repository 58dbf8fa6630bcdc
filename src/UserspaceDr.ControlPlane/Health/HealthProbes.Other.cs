using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.ControlPlane.Health;

public static partial class HealthProbes
{
    /// <summary>The most of a script's output kept for the log.</summary>
    private const int MaxScriptOutput = 200;

    /// <summary>
    /// MISC_CHECK (check_misc.c): runs misc_path (its words: the program, then its arguments; no shell), killed after
    /// misc_timeout, which fails the check. Exit 0 passes. With misc_dynamic, 1 fails and 2..255 pass with weight
    /// exit−2; without it, anything but 0 fails.
    /// </summary>
    private sealed class MiscProbe(MiscCheckConfig checker) : IHealthProbe
    {
        public async Task<ProbeResult> CheckAsync(CancellationToken stop)
        {
            string program = Scripts.Program(checker.Path);
            CommandResult result = await Scripts.RunAsync(checker.Path, checker.Timeout, stop).ConfigureAwait(false);
            string output = Shorten((result.Output + result.Error).Trim());
            string said = output.Length > 0 ? $" ({output})" : "";
            if (result.TimedOut)
            {
                return ProbeResult.Failed($"{program} did not finish within {Seconds(checker.Timeout)} s and was killed");
            }
            return result.ExitCode switch
            {
                0 => ProbeResult.Passed($"{program} exited 0{said}"),
                127 when result.Output.Length == 0 && result.Error.StartsWith(program, StringComparison.Ordinal) =>
                    ProbeResult.Failed($"cannot run {result.Error.Trim()}"),
                >= 2 and <= 255 when checker.Dynamic => ProbeResult.Passed($"{program} exited {result.ExitCode}: weight {result.ExitCode - 2}{said}", result.ExitCode - 2),
                int code => ProbeResult.Failed($"{program} exited {code}{said}"),
            };
        }

        private static string Shorten(string text)
        {
            string oneLine = text.ReplaceLineEndings(" ");
            return oneLine.Length <= MaxScriptOutput ? oneLine : oneLine[..MaxScriptOutput] + "…";
        }
    }

    /// <summary>
    /// UDP_CHECK: sends the payload (16 random bytes when none is set) on a connected UDP socket. With require_reply a
    /// reply must come within connect_timeout (and match the pattern, X a wildcard nibble); without it the check passes
    /// unless an ICMP error (port or host unreachable) comes back within connect_timeout.
    /// </summary>
    private sealed class UdpProbe(UdpCheckConfig checker) : IHealthProbe
    {
        public async Task<ProbeResult> CheckAsync(CancellationToken stop)
        {
            byte[] payload = checker.Payload.IsEmpty ? RandomNumberGenerator.GetBytes(16) : [.. checker.Payload];
            (ProbeResult? failed, byte[]? reply) = await ExchangeAsync(checker, payload, stop).ConfigureAwait(false);
            if (failed is ProbeResult failure)
            {
                return !checker.RequireReply && failure.Detail.StartsWith("no reply", StringComparison.Ordinal)
                    ? ProbeResult.Passed("no ICMP error")
                    : failure;
            }
            if (checker.ReplyPattern is string pattern && !MatchesPattern(reply!, pattern))
            {
                return ProbeResult.Failed($"the reply {Convert.ToHexString(reply!.AsSpan(0, Math.Min(reply!.Length, 32)))} does not match {pattern}");
            }
            return ProbeResult.Passed($"a {reply!.Length}-byte reply");
        }

        private static bool MatchesPattern(byte[] reply, string pattern)
        {
            if (reply.Length < pattern.Length / 2)
            {
                return false;
            }
            for (int i = 0; i < pattern.Length; i++)
            {
                int nibble = (i % 2 == 0 ? reply[i / 2] >> 4 : reply[i / 2]) & 0xF;
                if (pattern[i] != 'X' && Convert.ToInt32(pattern[i].ToString(), 16) != nibble)
                {
                    return false;
                }
            }
            return true;
        }
    }

    /// <summary>
    /// DNS_CHECK (check_dns.c): a query for <c>name</c> of <c>type</c> (recursion desired) over UDP; it passes when the
    /// reply has the query's ID, QR set and RCODE 0.
    /// </summary>
    private sealed class DnsProbe(DnsCheckConfig checker) : IHealthProbe
    {
        public async Task<ProbeResult> CheckAsync(CancellationToken stop)
        {
            ushort id = (ushort)RandomNumberGenerator.GetInt32(ushort.MaxValue + 1);
            (ProbeResult? failed, byte[]? reply) = await ExchangeAsync(checker, Query(id, checker.Name, TypeCode(checker.Type)), stop).ConfigureAwait(false);
            if (failed is ProbeResult failure)
            {
                return failure;
            }
            if (reply!.Length < 12)
            {
                return ProbeResult.Failed($"DNS: a {reply.Length}-byte reply is shorter than a header");
            }
            ushort replyId = BinaryPrimitives.ReadUInt16BigEndian(reply);
            ushort flags = BinaryPrimitives.ReadUInt16BigEndian(reply.AsSpan(2));
            if (replyId != id)
            {
                return ProbeResult.Failed($"DNS: the reply's ID {replyId} is not the query's {id}");
            }
            if ((flags & 0x8000) == 0)
            {
                return ProbeResult.Failed("DNS: the reply is not a response (QR clear)");
            }
            int rcode = flags & 0xF;
            return rcode == 0 ? ProbeResult.Passed($"DNS {checker.Type} {checker.Name}: NOERROR") : ProbeResult.Failed($"DNS {checker.Type} {checker.Name}: RCODE {rcode}");
        }

        internal static byte[] Query(ushort id, string name, ushort type)
        {
            var query = new List<byte>(32 + name.Length);
            Span<byte> header = stackalloc byte[12];
            BinaryPrimitives.WriteUInt16BigEndian(header, id);
            BinaryPrimitives.WriteUInt16BigEndian(header[2..], 0x0100); // a standard query, recursion desired
            BinaryPrimitives.WriteUInt16BigEndian(header[4..], 1); // one question
            query.AddRange(header);
            foreach (string label in name.Split('.', StringSplitOptions.RemoveEmptyEntries))
            {
                byte[] bytes = Encoding.ASCII.GetBytes(label);
                query.Add((byte)bytes.Length);
                query.AddRange(bytes);
            }
            query.Add(0); // the root
            query.Add((byte)(type >> 8));
            query.Add((byte)type);
            query.Add(0);
            query.Add(1); // class IN
            return [.. query];
        }

        private static ushort TypeCode(string type) => type switch
        {
            "A" => 1,
            "NS" => 2,
            "CNAME" => 5,
            "SOA" => 6,
            "MX" => 15,
            "TXT" => 16,
            _ => 28, // AAAA
        };
    }

    /// <summary>One datagram out and one back on a connected UDP socket, within connect_timeout; an ICMP error ends it early.</summary>
    private static async Task<(ProbeResult? Failed, byte[]? Reply)> ExchangeAsync(CheckerConfig checker, byte[] datagram, CancellationToken stop)
    {
        using var socket = new Socket(checker.ConnectAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop);
        limit.CancelAfter(checker.ConnectTimeout);
        try
        {
            if (checker.BindTo is IPAddress bindTo)
            {
                socket.Bind(new IPEndPoint(bindTo, 0));
            }
            await socket.ConnectAsync(new IPEndPoint(checker.ConnectAddress, checker.ConnectPort), limit.Token).ConfigureAwait(false);
            await socket.SendAsync(datagram, SocketFlags.None, limit.Token).ConfigureAwait(false);
            byte[] buffer = new byte[65535];
            int length = await socket.ReceiveAsync(buffer, SocketFlags.None, limit.Token).ConfigureAwait(false);
            return (null, buffer[..length]);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            return (ProbeResult.Failed($"no reply within {Seconds(checker.ConnectTimeout)} s"), null);
        }
        catch (SocketException e)
        {
            return (ProbeResult.Failed(e.SocketErrorCode == System.Net.Sockets.SocketError.ConnectionRefused
                ? "port unreachable (ICMP)"
                : $"UDP exchange failed: {SocketError(e)}"), null);
        }
    }
}
