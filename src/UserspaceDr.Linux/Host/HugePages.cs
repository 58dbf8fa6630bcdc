using System.Runtime.InteropServices;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// Backs a large, long-lived block of memory (a worker's connection table) with transparent huge pages, so that a
/// random access to it costs no page walk: with 4 KiB pages a table of a million entries spans 30,000 pages, far more
/// than a TLB holds, and each cold lookup pays a walk before its cache miss. On this project's machines transparent
/// huge pages are "madvise" (Debian's default): the range is marked MADV_HUGEPAGE, so that the pages not yet touched
/// (a new table's) fault in as huge pages, and what was touched already is offered to MADV_COLLAPSE (Linux 6.1).
/// The price: a huge page is resident whole once any of it is touched, so a table's memory is all resident soon after
/// it fills from random slots (bench/README.md).
/// </summary>
public static class HugePages
{
    public const long Size = 2 << 20;

    /// <summary>
    /// Marks the 2 MiB-aligned part of [<paramref name="address"/>, +<paramref name="length"/>) for huge pages and tries
    /// to collapse what is already resident; returns the bytes marked, or a negative errno when the kernel refused the
    /// mark (the memory stays usable either way: advice only).
    /// </summary>
    public static long Back(nint address, long length)
    {
        long start = (address + Size - 1) & ~(Size - 1);
        long end = (address + length) & ~(Size - 1);
        if (end <= start)
        {
            return 0;
        }
        var span = (nuint)(end - start);
        if (Interop.Madvise((nint)start, span, Interop.MADV_HUGEPAGE) != 0)
        {
            return -Marshal.GetLastPInvokeError();
        }
        // Best effort: MADV_COLLAPSE fails (EAGAIN, ENOMEM, or EINVAL on ranges with nothing resident on this VM) when
        // it cannot act now; the mark stands, so pages faulted later are huge and khugepaged may collapse the rest.
        _ = Interop.Madvise((nint)start, span, Interop.MADV_COLLAPSE);
        return end - start;
    }
}
