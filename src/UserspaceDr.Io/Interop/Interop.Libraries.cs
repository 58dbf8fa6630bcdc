namespace UserspaceDr.Io;

// Interop layout follows dotnet/runtime's interop guidelines: one partial Interop class, one file per libc call
// (or per small group of calls that belong together), LibraryImport source-generated marshalling, SafeHandle for
// the descriptors we own.
internal static partial class Interop
{
    internal static class Libraries
    {
        // The runtime maps "libc" to the platform C library (libc.so.6 on glibc).
        internal const string Libc = "libc";
    }
}
