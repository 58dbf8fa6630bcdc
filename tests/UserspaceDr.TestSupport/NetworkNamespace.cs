using System.ComponentModel;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using UserspaceDr.Io;
using UserspaceDr.Linux;

namespace UserspaceDr.Tests.Lab;

/// <summary>
/// Runs code inside a named network namespace (/var/run/netns/NAME, as `ip netns add` creates it).
/// </summary>
/// <remarks>
/// setns(2) moves only the calling thread, so the code runs on a dedicated thread that ends afterwards: no pool
/// thread is ever left in a lab namespace. Sockets keep the namespace they were created in, so a socket (or an
/// AF_PACKET ring) created inside <see cref="Run{T}"/> can be used from any thread afterwards.
/// </remarks>
public static class NetworkNamespace
{
    public static T Run<T>(string name, Func<T> action)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(action);
        if (name.Contains('/', StringComparison.Ordinal) || name is "." or "..")
        {
            throw new ArgumentException($"'{name}' is not a namespace name", nameof(name));
        }
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var namespaceFile = File.OpenHandle(Path.Combine("/var/run/netns", name), FileMode.Open, FileAccess.Read);
                if (Interop.SetNs((int)namespaceFile.DangerousGetHandle(), Interop.CLONE_NEWNET) != 0)
                {
                    throw new Win32Exception(Marshal.GetLastPInvokeError(), $"setns into network namespace '{name}' failed");
                }
                result = action();
            }
#pragma warning disable CA1031 // every failure is handed to the calling thread
            catch (Exception exception)
#pragma warning restore CA1031
            {
                failure = ExceptionDispatchInfo.Capture(exception);
            }
        })
        {
            IsBackground = true,
            Name = $"netns {name}",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    public static void Run(string name, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run(name, () =>
        {
            action();
            return 0;
        });
    }
}
