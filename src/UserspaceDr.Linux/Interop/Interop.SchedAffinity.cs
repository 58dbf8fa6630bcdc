using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    /// <summary>
    /// sched_setaffinity(2) for the calling thread (pid 0): the mask is <paramref name="size"/> bytes, a bit per CPU.
    /// </summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "sched_setaffinity", SetLastError = true)]
    internal static unsafe partial int SchedSetAffinity(int pid, nuint size, byte* mask);

    /// <summary>sched_getaffinity(2): the CPUs <paramref name="pid"/> (0: the calling thread) may run on.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "sched_getaffinity", SetLastError = true)]
    internal static unsafe partial int SchedGetAffinity(int pid, nuint size, byte* mask);
}
