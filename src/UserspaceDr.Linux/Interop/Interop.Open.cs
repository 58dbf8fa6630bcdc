using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int O_RDWR = 0x2;
    internal const int O_CLOEXEC = 0x80000;

    [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial SafeDescriptorHandle Open(string path, int flags);
}
