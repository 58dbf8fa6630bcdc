using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using UserspaceDr.Tests.TestSupport;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>
/// A program running inside a network namespace (`ip netns exec NS program args…`), with its stdout and stderr
/// collected line by line as they come, so a test can wait for a "ready" line, send it signals and read what it
/// said when it ended. `ip netns exec` execs the program in place (no fork), so <see cref="Id"/> is the program's
/// own pid and a signal sent to it reaches the program, not a wrapper.
/// </summary>
internal sealed partial class NamespacedProcess : IDisposable
{
    public const int SigHup = 1;
    public const int SigInt = 2;
    public const int SigKill = 9;
    public const int SigStop = 19;
    public const int SigCont = 18;
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly List<string> _lines = [];
    private int _openStreams = 2;
    private bool _disposed;

    private NamespacedProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    public string Name { get; }

    public int Id => _process.Id;

    public bool HasExited => _disposed || _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything printed so far (stdout and stderr interleaved as they were read).</summary>
    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }

    public static NamespacedProcess Start(string networkNamespace, string name, string? workingDirectory, bool redirectInput, params string[] command)
    {
        ArgumentNullException.ThrowIfNull(command);
        // Through env(1), which resets SIGINT and SIGQUIT to their defaults: a runner started in the background by a
        // non-interactive shell ignores both, children inherit that, and .NET then never delivers SIGINT to udr.
        var startInfo = new ProcessStartInfo("env")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = redirectInput,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepositoryPaths.Root,
        };
        startInfo.ArgumentList.Add("--default-signal=INT,QUIT");
        startInfo.ArgumentList.Add("ip");
        startInfo.ArgumentList.Add("netns");
        startInfo.ArgumentList.Add("exec");
        startInfo.ArgumentList.Add(networkNamespace);
        foreach (string argument in command)
        {
            startInfo.ArgumentList.Add(argument);
        }
        var process = new Process { StartInfo = startInfo };
        var started = new NamespacedProcess(process, name);
        process.OutputDataReceived += (_, e) => started.Collect(e.Data);
        process.ErrorDataReceived += (_, e) => started.Collect(e.Data);
        if (!process.Start())
        {
            process.Dispose();
            throw new InvalidOperationException($"could not start {name}");
        }
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    private void Collect(string? line)
    {
        lock (_lines)
        {
            if (line == null)
            {
                _openStreams--;
            }
            else
            {
                _lines.Add(line);
            }
            Monitor.PulseAll(_lines);
        }
    }

    public int CountLines(Func<string, bool> predicate)
    {
        lock (_lines)
        {
            return _lines.Count(predicate);
        }
    }

    /// <summary>
    /// Waits until a line after the first <paramref name="skip"/> matching ones matches; returns it, or null when the
    /// timeout passed or the program ended (its output closed) without printing one.
    /// </summary>
    public string? WaitForLine(Func<string, bool> predicate, TimeSpan timeout, int skip = 0)
    {
        var clock = Stopwatch.StartNew();
        lock (_lines)
        {
            while (true)
            {
                string? match = _lines.Where(predicate).Skip(skip).FirstOrDefault();
                if (match != null)
                {
                    return match;
                }
                TimeSpan left = timeout - clock.Elapsed;
                if (left <= TimeSpan.Zero || _openStreams == 0)
                {
                    return null;
                }
                Monitor.Wait(_lines, left < TimeSpan.FromMilliseconds(100) ? left : TimeSpan.FromMilliseconds(100));
            }
        }
    }

    public void WriteLine(string line)
    {
        _process.StandardInput.WriteLine(line);
        _process.StandardInput.Flush();
    }

    /// <summary>Sends a signal to the program (nothing when it has already ended, so a recycled pid is never hit).</summary>
    public void Signal(int signal)
    {
        if (HasExited)
        {
            return;
        }
        if (Kill(_process.Id, signal) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (!_process.HasExited)
            {
                throw new Win32Exception(errno, $"kill({_process.Id}, {signal}) for {Name} failed");
            }
        }
    }

    /// <summary>Waits for the end, and for the output to be read completely; false on timeout.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout))
        {
            return false;
        }
        _process.WaitForExit(); // drains the asynchronous readers
        return true;
    }

    /// <summary>Sends <paramref name="signal"/>; if the program has not ended after <paramref name="grace"/>, kills it. True when it ended by itself.</summary>
    public bool Stop(int signal, TimeSpan grace)
    {
        if (_disposed)
        {
            return true;
        }
        if (_process.HasExited)
        {
            WaitForExit(grace);
            return true;
        }
        Signal(signal);
        if (WaitForExit(grace))
        {
            return true;
        }
        KillNow();
        return false;
    }

    private void KillNow()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(TimeSpan.FromSeconds(5));
        }
        catch (InvalidOperationException)
        {
            // It ended between the check and the kill.
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (!_process.HasExited)
        {
            KillNow();
        }
        _process.Dispose();
    }

    public override string ToString() => $"{Name} (pid {_process.Id})";

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
