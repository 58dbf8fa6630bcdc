using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const short POLLIN = 0x001;
    internal const short POLLERR = 0x008;

    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        internal int Fd;
        internal short Events;
        internal short ReturnedEvents;
    }

    // Takes the raw descriptor: it runs once per empty wait on the hot path, and the owner keeps the SafeHandle
    // referenced (DangerousAddRef) for its whole lifetime instead of paying the ref-count per call.
    [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
    internal static unsafe partial int Poll(PollFd* fds, nuint count, int timeoutMilliseconds);
}
