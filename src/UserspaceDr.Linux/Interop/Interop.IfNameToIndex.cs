using System.Runtime.InteropServices;

namespace UserspaceDr.Linux;

internal static partial class Interop
{
    /// <summary>Interface index in the calling thread's network namespace; 0 when there is no such interface.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint IfNameToIndex(string name);
}
