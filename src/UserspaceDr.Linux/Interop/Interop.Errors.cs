namespace UserspaceDr.Linux;

internal static partial class Interop
{
    /// <summary>Linux errno values handled by name (asm-generic/errno-base.h, errno.h).</summary>
    internal static class Errno
    {
        internal const int EPERM = 1;
        internal const int ENOENT = 2;
        internal const int EINTR = 4;
        internal const int ENXIO = 6;
        internal const int EAGAIN = 11;
        internal const int EACCES = 13;
        internal const int EBUSY = 16;
        internal const int ENODEV = 19;
        internal const int EINVAL = 22;
        internal const int EMSGSIZE = 90;
        internal const int ENETDOWN = 100;
        internal const int ENOBUFS = 105;

        /// <summary>errno values are small; counters indexed by errno use this many slots (larger ones share the last).</summary>
        internal const int CounterSlots = 256;
    }
}
