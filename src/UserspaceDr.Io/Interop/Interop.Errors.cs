namespace UserspaceDr.Io;

internal static partial class Interop
{
    /// <summary>Linux errno values the frame I/O handles by name (asm-generic/errno-base.h, errno.h).</summary>
    internal static class Errno
    {
        internal const int EINTR = 4;
        internal const int EAGAIN = 11;
        internal const int ENOBUFS = 105;
        internal const int EMSGSIZE = 90;
        internal const int ENETDOWN = 100;
        internal const int ENXIO = 6;

        /// <summary>errno values are small; counters indexed by errno use this many slots (larger ones share the last).</summary>
        internal const int CounterSlots = 256;
    }
}
