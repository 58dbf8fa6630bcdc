using System.Runtime.InteropServices;

namespace UserspaceDr.Linux.Host;

/// <summary>Named pipes (FIFOs), as keepalived's notify FIFO is one.</summary>
public static class Fifo
{
    private const int Eexist = 17;

    /// <summary>Makes a FIFO at <paramref name="path"/> (mode 0600) unless something is already there.</summary>
    public static void Ensure(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Interop.Mkfifo(path, 0x180) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Eexist)
            {
                throw new HostException($"mkfifo {path}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for writing without blocking and closes it at once: a reader blocked in open() on
    /// the FIFO wakes up. Does nothing when no one reads it.
    /// </summary>
    public static void Wake(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        const int WriteOnlyNonBlocking = 0x1 | 0x800; // O_WRONLY | O_NONBLOCK
        using SafeDescriptorHandle handle = Interop.Open(path, WriteOnlyNonBlocking | Interop.O_CLOEXEC);
    }
}
