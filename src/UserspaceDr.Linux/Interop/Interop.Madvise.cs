using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int MADV_HUGEPAGE = 14;

    /// <summary>Collapse the range into transparent huge pages now, synchronously (Linux 6.1).</summary>
    internal const int MADV_COLLAPSE = 25;

    [LibraryImport(Libraries.Libc, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int Madvise(nint address, nuint length, int advice);
}
