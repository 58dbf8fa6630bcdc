using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int PROT_READ = 0x1;
    internal const int PROT_WRITE = 0x2;
    internal const int MAP_SHARED = 0x01;
    internal const int MAP_LOCKED = 0x2000;
    internal static readonly nint MAP_FAILED = -1;

    [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint address, nuint length, int protection, int flags, SafeDescriptorHandle fd, nint offset);

    [LibraryImport(Libraries.Libc, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(nint address, nuint length);
}
