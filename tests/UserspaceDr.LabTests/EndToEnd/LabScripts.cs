using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// The small Python programs the end-to-end tests run in the lab hosts (real kernel sockets on both ends, every loop
/// bounded in count and time), kept in tools/lab/ beside the lab bench's, so tests, bench and demo share one copy.
/// </summary>
internal static class LabScripts
{
    public const string ClientFile = "client.py";
    public const string UdpEchoFile = "udp_echo.py";
    public const string TcpSinkFile = "tcp_sink.py";
    public const string DnsServerFile = "dns_server.py";
    public const string HttpsServerFile = "https_server.py";
    public const string SyncSenderFile = "sync_sender.py";
    public const string SyncListenerFile = "sync_listener.py";
    public const string ChatServerFile = "chat_server.py";
    public const string FloodFile = "flood.py";
    public const string WebServerFile = "web_server.py";

    /// <summary>Copies the programs into <paramref name="directory"/>, where the lab hosts run them.</summary>
    public static void CopyTo(string directory)
    {
        foreach (string file in (string[])[ClientFile, UdpEchoFile, TcpSinkFile, DnsServerFile, HttpsServerFile, SyncSenderFile, SyncListenerFile, ChatServerFile, FloodFile, WebServerFile])
        {
            File.Copy(Path.Combine(RepositoryPaths.Root, "tools", "lab", file), Path.Combine(directory, file), overwrite: true);
        }
    }
}
