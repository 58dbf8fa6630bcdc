namespace UserspaceDr.Linux;

// The one Linux interop layer of udr (the balancer's frame I/O and the node's tunnel endpoint alike), laid out as
// dotnet/runtime's interop guidelines ask: one partial Interop class, one file per libc call (or per small group of
// calls that belong together), LibraryImport source-generated marshalling, SafeHandle for the descriptors we own.
internal static partial class Interop
{
    internal static partial class Libraries
    {
        // The runtime maps "libc" to the platform C library (libc.so.6 on glibc).
        internal const string Libc = "libc";
    }
}
