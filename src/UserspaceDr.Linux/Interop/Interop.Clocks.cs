using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int CLOCK_MONOTONIC = 1;
    internal const int CLOCK_THREAD_CPUTIME_ID = 3;
    private const int PR_SET_TIMERSLACK = 29;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TimeSpec
    {
        internal long Seconds;
        internal long Nanoseconds;
    }

    // A sleep below a millisecond (Thread.Sleep's unit); returns 0 or an error number (EINTR when a signal came).
    [LibraryImport(Libraries.Libc, EntryPoint = "clock_nanosleep")]
    internal static unsafe partial int ClockNanoSleep(int clock, int flags, TimeSpec* request, TimeSpec* remaining);

    /// <summary>
    /// Sleeps about <paramref name="microseconds"/> (plus the thread's timer slack: <see cref="SetTimerSlackNanoseconds"/>); false when a
    /// signal cut it short (the caller's loop goes on either way).
    /// </summary>
    internal static unsafe bool SleepMicroseconds(int microseconds)
    {
        var request = new TimeSpec { Seconds = 0, Nanoseconds = microseconds * 1000L };
        return ClockNanoSleep(CLOCK_MONOTONIC, 0, &request, null) == 0;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "clock_gettime")]
    private static unsafe partial int ClockGetTime(int clock, TimeSpec* time);

    [LibraryImport(Libraries.Libc, EntryPoint = "prctl")]
    private static partial int Prctl(int option, nuint argument2, nuint argument3, nuint argument4, nuint argument5);

    /// <summary>The CPU time the calling thread has used, user and system, in nanoseconds.</summary>
    internal static unsafe long ThreadCpuNanoseconds()
    {
        TimeSpec time;
        return ClockGetTime(CLOCK_THREAD_CPUTIME_ID, &time) == 0 ? (time.Seconds * 1_000_000_000L) + time.Nanoseconds : 0;
    }

    /// <summary>
    /// Sets the calling thread's timer slack (prctl PR_SET_TIMERSLACK): how much later than asked the kernel may end
    /// its sleeps, 50 µs by default, which would make a sleep of a few microseconds one of tens.
    /// </summary>
    internal static bool SetTimerSlackNanoseconds(int nanoseconds) => Prctl(PR_SET_TIMERSLACK, (nuint)nanoseconds, 0, 0, 0) == 0;
}
