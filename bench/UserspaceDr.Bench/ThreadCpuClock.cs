using System.Runtime.InteropServices;
using Perfolizer.Horology;

namespace UserspaceDr.Bench;

/// <summary>
/// A BenchmarkDotNet clock that counts the calling thread's CPU time (Linux CLOCK_THREAD_CPUTIME_ID, ns) instead
/// of wall time, so time spent descheduled while other processes use the cores is not counted. Opt-in with
/// <c>--thread-cpu-clock</c>, for noisy shared machines; it does not remove cache or memory-bandwidth interference.
/// </summary>
internal sealed partial class ThreadCpuClock : IClock
{
    private const int ClockThreadCpuTimeId = 3;

    public string Title => "ThreadCpuTime";

    public bool IsAvailable => OperatingSystem.IsLinux();

    public Frequency Frequency => Frequency.FromHz(1_000_000_000);

    public long GetTimestamp()
    {
        _ = ClockGetTime(ClockThreadCpuTimeId, out Timespec now);
        return (now.Seconds * 1_000_000_000L) + now.Nanoseconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clockId, out Timespec time);
}
