using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int CLOCK_MONOTONIC = 1;

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
    /// Sleeps about <paramref name="microseconds"/> (plus the thread's timer slack, 50 µs by default); false when a
    /// signal cut it short (the caller's loop goes on either way).
    /// </summary>
    internal static unsafe bool SleepMicroseconds(int microseconds)
    {
        var request = new TimeSpec { Seconds = 0, Nanoseconds = microseconds * 1000L };
        return ClockNanoSleep(CLOCK_MONOTONIC, 0, &request, null) == 0;
    }
}
