using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using UserspaceDr.ControlPlane.Keepalived;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.ControlPlane.Health;

/// <summary>One check's outcome: passed or not, why (for the log), and the weight a misc_dynamic script gave.</summary>
public readonly record struct ProbeResult(bool Success, string Detail, int? Weight = null)
{
    public static ProbeResult Passed(string detail, int? weight = null) => new(true, detail, weight);

    public static ProbeResult Failed(string detail) => new(false, detail);
}

/// <summary>One check of a real server, as a keepalived checker runs it (check_tcp.c, check_http.c, …).</summary>
public interface IHealthProbe
{
    /// <summary>Runs the check once, within its own time limit; never throws for what the server does.</summary>
    Task<ProbeResult> CheckAsync(CancellationToken cancellation);
}

/// <summary>
/// The probes, each a real socket (or process) from the balancer straight to the checked address, as keepalived's
/// checkers connect to <c>RIP:port</c> (or <c>connect_ip:connect_port</c>), never through the VIP. A slow or silent
/// server costs a pending socket operation and a timer, not a thread.
/// </summary>
public static partial class HealthProbes
{
    /// <summary>The most of an HTTP answer read (headers and body); a larger one fails the check.</summary>
    public const int MaxHttpResponse = 4 << 20;

    public static IHealthProbe Create(CheckerConfig checker)
    {
        ArgumentNullException.ThrowIfNull(checker);
        return checker switch
        {
            TcpCheckConfig tcp => new TcpProbe(tcp),
            HttpCheckConfig http => new HttpProbe(http),
            MiscCheckConfig misc => new MiscProbe(misc),
            UdpCheckConfig udp => new UdpProbe(udp),
            DnsCheckConfig dns => new DnsProbe(dns),
            _ => throw new ArgumentException($"no probe for {checker.Keyword}", nameof(checker)),
        };
    }

    private static string Seconds(TimeSpan time) => time.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>A TCP connection to the checked address within connect_timeout; the reason why not otherwise.</summary>
    private static async Task<(Socket? Socket, string? Failure)> ConnectAsync(CheckerConfig checker, CancellationToken limit, CancellationToken stop)
    {
        var socket = new Socket(checker.ConnectAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (checker.BindTo is IPAddress bindTo)
            {
                socket.Bind(new IPEndPoint(bindTo, 0));
            }
            await socket.ConnectAsync(new IPEndPoint(checker.ConnectAddress, checker.ConnectPort), limit).ConfigureAwait(false);
            return (socket, null);
        }
        catch (OperationCanceledException) when (!stop.IsCancellationRequested)
        {
            socket.Dispose();
            return (null, $"connect timeout after {Seconds(checker.ConnectTimeout)} s");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            return (null, $"connect failed: {SocketError(e)}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static string SocketError(SocketException e) => e.SocketErrorCode switch
    {
        System.Net.Sockets.SocketError.ConnectionRefused => "connection refused",
        System.Net.Sockets.SocketError.HostUnreachable => "host unreachable",
        System.Net.Sockets.SocketError.NetworkUnreachable => "network unreachable",
        System.Net.Sockets.SocketError.AddressNotAvailable => "bindto address not available",
        System.Net.Sockets.SocketError.ConnectionReset => "connection reset",
        _ => e.Message,
    };

    /// <summary>TCP_CHECK: the connection completes within connect_timeout.</summary>
    private sealed class TcpProbe(TcpCheckConfig checker) : IHealthProbe
    {
        public async Task<ProbeResult> CheckAsync(CancellationToken stop)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop);
            limit.CancelAfter(checker.ConnectTimeout);
            (Socket? socket, string? failure) = await ConnectAsync(checker, limit.Token, stop).ConfigureAwait(false);
            using (socket)
            {
                return socket is null ? ProbeResult.Failed(failure!) : ProbeResult.Passed("connected");
            }
        }
    }

    /// <summary>
    /// HTTP_GET / SSL_GET: for each url, a connection, <c>GET path HTTP/1.x</c> with keepalived's User-Agent and Host,
    /// and the answer read within connect_timeout; it passes when the status is one of the url's codes and, when a
    /// digest is given, the body's MD5 is that digest. Every url must pass. SSL_GET does not verify the server's
    /// certificate (keepalived does only with a CA configured).
    /// </summary>
    private sealed class HttpProbe(HttpCheckConfig checker) : IHealthProbe
    {
        public async Task<ProbeResult> CheckAsync(CancellationToken stop)
        {
            ProbeResult result = default;
            foreach (UrlCheck url in checker.Urls)
            {
                result = await CheckUrlAsync(url, stop).ConfigureAwait(false);
                if (!result.Success)
                {
                    return result;
                }
            }
            return checker.Urls.Length == 1 ? result : ProbeResult.Passed($"HTTP ok for all {checker.Urls.Length} urls");
        }

        private async Task<ProbeResult> CheckUrlAsync(UrlCheck url, CancellationToken stop)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(stop);
            limit.CancelAfter(checker.ConnectTimeout);
            (Socket? socket, string? failure) = await ConnectAsync(checker, limit.Token, stop).ConfigureAwait(false);
            if (socket is null)
            {
                return ProbeResult.Failed(failure!);
            }
            using var network = new NetworkStream(socket, ownsSocket: true);
            Stream stream = network;
            try
            {
                string host = url.VirtualHost ?? checker.VirtualHost ?? HostOf(checker.ConnectAddress);
                if (checker.Kind == CheckerKind.Ssl)
                {
                    // keepalived verifies a real server's certificate only when given a CA; neither does udr (a
                    // checker asks "is it answering?", not "is it who it says?").
#pragma warning disable CA5359
                    var tls = new SslStream(network, leaveInnerStreamOpen: false, (_, _, _, _) => true);
#pragma warning restore CA5359
                    stream = tls;
                    await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                    {
                        TargetHost = IPAddress.TryParse(host.Trim('[', ']'), out _) ? "" : host,
                    }, limit.Token).ConfigureAwait(false);
                }
                int defaultPort = checker.Kind == CheckerKind.Ssl ? 443 : 80;
                string hostHeader = checker.ConnectPort == defaultPort ? host : $"{host}:{checker.ConnectPort}";
                string version = checker.Protocol == "1.1" ? "1.1" : "1.0";
                string close = checker.Protocol is "1.0C" or "1.1" ? "Connection: close\r\n" : "";
                byte[] request = Encoding.ASCII.GetBytes(
                    $"GET {url.Path} HTTP/{version}\r\nUser-Agent: KeepAliveClient\r\nHost: {hostHeader}\r\n{close}\r\n");
                await stream.WriteAsync(request, limit.Token).ConfigureAwait(false);
                return await ReadAnswerAsync(stream, url, limit.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!stop.IsCancellationRequested)
            {
                return ProbeResult.Failed($"no complete HTTP answer within {Seconds(checker.ConnectTimeout)} s");
            }
            catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException)
            {
                return ProbeResult.Failed($"HTTP exchange failed: {e.Message}");
            }
            finally
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
        }

        private static async Task<ProbeResult> ReadAnswerAsync(Stream stream, UrlCheck url, CancellationToken limit)
        {
            var answer = new MemoryStream();
            byte[] buffer = new byte[16384];
            int headerEnd = -1;
            long contentLength = -1;
            while (true)
            {
                int read = await stream.ReadAsync(buffer, limit).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                answer.Write(buffer, 0, read);
                if (answer.Length > MaxHttpResponse)
                {
                    return ProbeResult.Failed($"HTTP answer larger than {MaxHttpResponse} bytes");
                }
                if (headerEnd < 0)
                {
                    headerEnd = answer.GetBuffer().AsSpan(0, (int)answer.Length).IndexOf("\r\n\r\n"u8);
                    if (headerEnd >= 0)
                    {
                        contentLength = ContentLength(answer.GetBuffer().AsSpan(0, headerEnd));
                    }
                }
                // A server that keeps the connection open despite "Connection: close" is read up to its Content-Length.
                if (headerEnd >= 0 && contentLength >= 0 && answer.Length >= headerEnd + 4 + contentLength)
                {
                    break;
                }
            }
            ReadOnlySpan<byte> whole = answer.GetBuffer().AsSpan(0, (int)answer.Length);
            int lineEnd = whole.IndexOf("\r\n"u8);
            string statusLine = Encoding.ASCII.GetString(lineEnd >= 0 ? whole[..lineEnd] : whole[..Math.Min(whole.Length, 64)]);
            string[] parts = statusLine.Split(' ', 3);
            if (parts.Length < 2 || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) ||
                !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int status))
            {
                return ProbeResult.Failed(whole.IsEmpty ? "HTTP: the server closed without answering" : $"HTTP: not an HTTP answer ('{statusLine}')");
            }
            if (!url.StatusMatches(status))
            {
                return ProbeResult.Failed($"HTTP {status} for {url.Path}");
            }
            if (url.Digest is string digest)
            {
                ReadOnlySpan<byte> body = headerEnd >= 0 ? whole[(headerEnd + 4)..] : [];
                if (contentLength >= 0 && body.Length > contentLength)
                {
                    body = body[..(int)contentLength];
                }
#pragma warning disable CA5351 // keepalived's digest is MD5 (genhash); a fingerprint of a page, not a security check
                string actual = Convert.ToHexStringLower(MD5.HashData(body));
#pragma warning restore CA5351
                if (actual != digest)
                {
                    return ProbeResult.Failed($"HTTP digest of {url.Path} is {actual}, not {digest}");
                }
            }
            return ProbeResult.Passed($"HTTP {status} for {url.Path}");
        }

        private static long ContentLength(ReadOnlySpan<byte> headers)
        {
            foreach (string line in Encoding.ASCII.GetString(headers).Split("\r\n"))
            {
                int colon = line.IndexOf(':', StringComparison.Ordinal);
                if (colon > 0 && line[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase) &&
                    long.TryParse(line[(colon + 1)..].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long length))
                {
                    return length;
                }
            }
            return -1;
        }

        private static string HostOf(IPAddress address) =>
            address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
    }

}
