using System.Net.Sockets;
using System.Text;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Tests.Linux;

/// <summary><see cref="SystemdNotifier"/> against a real AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET is one.</summary>
public class SystemdNotifierTests
{
    [Test]
    public void Ready_sends_READY_STATUS_and_MAINPID_in_one_datagram_to_a_path_socket()
    {
        string path = Path.Combine(Path.GetTempPath(), $"udr-notify-{Guid.NewGuid():N}.sock");
        try
        {
            using Socket listener = Listen(path);
            Assert.That(new SystemdNotifier(path).Ready("serving 2 service(s)"), Is.True);
            Assert.That(Receive(listener), Is.EqualTo($"READY=1\nSTATUS=serving 2 service(s)\nMAINPID={Environment.ProcessId}"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void An_at_sign_names_an_abstract_socket()
    {
        string name = $"udr-notify-{Guid.NewGuid():N}";
        using Socket listener = Listen("\0" + name);
        var notifier = new SystemdNotifier("@" + name);
        Assert.That(notifier.Reloading(), Is.True);
        Assert.That(Receive(listener), Is.EqualTo("RELOADING=1"));
        Assert.That(notifier.Stopping(), Is.True);
        Assert.That(Receive(listener), Is.EqualTo("STOPPING=1"));
    }

    [Test]
    public void Without_a_socket_it_does_nothing_and_a_dead_socket_is_no_error()
    {
        Assert.That(new SystemdNotifier("").Ready("x"), Is.False);
        Assert.That(new SystemdNotifier("").Enabled, Is.False);
        Assert.That(new SystemdNotifier(Path.Combine(Path.GetTempPath(), $"udr-absent-{Guid.NewGuid():N}.sock")).Ready("x"), Is.False);
    }

    private static Socket Listen(string address)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(address));
        socket.ReceiveTimeout = 5000;
        return socket;
    }

    private static string Receive(Socket socket)
    {
        var buffer = new byte[1024];
        int length = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
