using Microsoft.Extensions.Logging;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.ControlPlane.Vrrp;

/// <summary>A VRRP instance's (or sync group's) state as keepalived reports it.</summary>
public enum VrrpRole
{
    Unknown,
    Master,
    Backup,
    Fault,
    Stop,
}

/// <summary>
/// Learns VRRP roles from keepalived (which owns the election, the addresses and the gratuitous ARPs) through its
/// <c>vrrp_notify_fifo</c>: one line per transition, <c>INSTANCE "VI_1" MASTER 150</c> or <c>GROUP "G" BACKUP 0</c>.
/// The FIFO rather than notify scripts because keepalived writes it from one process in the order the transitions
/// happen, where scripts are separate processes that may run (and finish) out of order. The FIFO is made if missing;
/// when keepalived closes it (a restart) it is opened again. Lines that are not a known state are logged and ignored.
/// </summary>
public sealed partial class VrrpRoleReader : IDisposable
{
    private readonly string _path;
    private readonly Action<string, VrrpRole> _changed;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, VrrpRole> _roles = new(StringComparer.Ordinal);
    private Thread? _thread;
    private volatile bool _stopping;

    public VrrpRoleReader(string path, Action<string, VrrpRole> changed, ILogger log)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(log);
        _path = path;
        _changed = changed;
        _log = log;
    }

    /// <summary>The last role keepalived reported for <paramref name="instance"/>; <see cref="VrrpRole.Unknown"/> before any.</summary>
    public VrrpRole RoleOf(string instance)
    {
        lock (_gate)
        {
            return _roles.GetValueOrDefault(instance);
        }
    }

    /// <summary>Every instance keepalived has reported on, with its last role.</summary>
    public IReadOnlyList<(string Instance, VrrpRole Role)> Roles()
    {
        lock (_gate)
        {
            return [.. _roles.Select(r => (r.Key, r.Value))];
        }
    }

    public void Start()
    {
        Fifo.Ensure(_path);
        // Opening a FIFO blocks until a writer comes: a thread of its own, not the pool's.
        _thread = new Thread(ReadLoop) { IsBackground = true, Name = "udr vrrp fifo" };
        _thread.Start();
        Listening(_log, _path);
    }

    private void ReadLoop()
    {
        while (!_stopping)
        {
            try
            {
                using var stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                using var reader = new StreamReader(stream);
                while (reader.ReadLine() is string line)
                {
                    if (!_stopping)
                    {
                        Handle(line);
                    }
                }
            }
            catch (IOException e)
            {
                if (!_stopping)
                {
                    ReadFailed(_log, _path, e.Message);
                    Thread.Sleep(1000);
                }
            }
        }
    }

    /// <summary>One FIFO line; returns the instance and role it reported, or null for a line that is not one.</summary>
    internal (string Name, VrrpRole Role)? Handle(string line)
    {
        (string Name, VrrpRole Role)? parsed = Parse(line);
        if (parsed is not { } transition)
        {
            UnknownLine(_log, line);
            return null;
        }
        lock (_gate)
        {
            _roles[transition.Name] = transition.Role;
        }
        RoleChanged(_log, transition.Name, transition.Role.ToString().ToUpperInvariant());
        _changed(transition.Name, transition.Role);
        return transition;
    }

    /// <summary><c>INSTANCE "VI_1" MASTER 150</c> (or GROUP): the name and the state; null for anything else.</summary>
    public static (string Name, VrrpRole Role)? Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        string[] words = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length < 3 || words[0] is not ("INSTANCE" or "GROUP") || words[1].Length < 3 || words[1][0] != '"' || words[1][^1] != '"')
        {
            return null;
        }
        VrrpRole role = words[2] switch
        {
            "MASTER" => VrrpRole.Master,
            "BACKUP" => VrrpRole.Backup,
            "FAULT" => VrrpRole.Fault,
            "STOP" => VrrpRole.Stop,
            _ => VrrpRole.Unknown,
        };
        return role == VrrpRole.Unknown ? null : (words[1][1..^1], role);
    }

    public void Dispose()
    {
        _stopping = true;
        if (_thread is null)
        {
            return;
        }
        // Unblock a reader waiting in open() by being a writer for a moment; one reading keepalived's lines stops at
        // its next line or when keepalived closes (a background thread: it never holds the daemon's exit).
        Fifo.Wake(_path);
        _thread.Join(TimeSpan.FromSeconds(2));
    }

    [LoggerMessage(EventId = 130, Level = LogLevel.Information, Message = "VRRP: reading keepalived's notify FIFO {Path}")]
    private static partial void Listening(ILogger logger, string path);

    [LoggerMessage(EventId = 131, Level = LogLevel.Warning, Message = "VRRP instance {Instance} is {Role}")]
    private static partial void RoleChanged(ILogger logger, string instance, string role);

    [LoggerMessage(EventId = 132, Level = LogLevel.Warning, Message = "VRRP: ignored a line of the notify FIFO that is not a state: {Line}")]
    private static partial void UnknownLine(ILogger logger, string line);

    [LoggerMessage(EventId = 133, Level = LogLevel.Error, Message = "VRRP: reading {Path} failed: {Message}")]
    private static partial void ReadFailed(ILogger logger, string path, string message);
}
