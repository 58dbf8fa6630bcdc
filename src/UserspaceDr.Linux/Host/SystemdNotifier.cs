using System.Net.Sockets;
using System.Text;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// sd_notify(3) for a <c>Type=notify</c> unit: one datagram per state to the AF_UNIX socket systemd names in
/// <c>$NOTIFY_SOCKET</c> (a path, or an abstract address written with a leading '@'). Without that variable (not
/// started by systemd) every call does nothing, as sd_notify does. Errors are swallowed: a lost notification must
/// never stop the balancer, and systemd's start timeout reports a missing READY=1 on its own.
/// </summary>
public sealed class SystemdNotifier
{
    private readonly string? _socket;

    public SystemdNotifier(string? notifySocket = null) =>
        _socket = notifySocket ?? Environment.GetEnvironmentVariable("NOTIFY_SOCKET");

    /// <summary>Whether systemd (or another supervisor) asked for notifications.</summary>
    public bool Enabled => !string.IsNullOrEmpty(_socket);

    /// <summary>READY=1 with a STATUS line: start-up is complete (systemctl start returns, dependents start).</summary>
    public bool Ready(string status) => Send($"READY=1\nSTATUS={status}\nMAINPID={Environment.ProcessId}");

    /// <summary>RELOADING=1: a SIGHUP reload began; <see cref="Ready"/> again when it is done.</summary>
    public bool Reloading() => Send("RELOADING=1");

    /// <summary>STOPPING=1: the daemon is shutting down.</summary>
    public bool Stopping() => Send("STOPPING=1");

    /// <summary>STATUS=…: one line for systemctl status.</summary>
    public bool Status(string status) => Send($"STATUS={status}");

    private bool Send(string state)
    {
        if (!Enabled)
        {
            return false;
        }
        // An abstract socket's name starts with a NUL, which $NOTIFY_SOCKET writes as '@'.
        string address = _socket![0] == '@' ? "\0" + _socket[1..] : _socket;
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(address));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
