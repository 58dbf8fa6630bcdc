using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    internal const int CLONE_NEWNET = 0x40000000;

    /// <summary>Moves the calling thread (only it) into the namespace <paramref name="fd"/> refers to.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "setns", SetLastError = true)]
    internal static partial int SetNs(int fd, int namespaceType);
}
