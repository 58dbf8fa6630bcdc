namespace UserspaceDr.Node;

// The node module's own interop (the user-space IP-in-IP endpoint), laid out as UserspaceDr.Io's: one partial
// Interop class, one file per libc call (or per small group that belongs together), LibraryImport source-generated
// marshalling, SafeHandle for the descriptors we own.
internal static partial class Interop
{
    internal static class Libraries
    {
        // The runtime maps "libc" to the platform C library (libc.so.6 on glibc).
        internal const string Libc = "libc";
    }
}
