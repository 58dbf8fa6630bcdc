using Microsoft.Win32.SafeHandles;

namespace UserspaceDr.Io;

/// <summary>An AF_PACKET socket descriptor, closed exactly once.</summary>
internal sealed class SafePacketSocketHandle : SafeHandleMinusOneIsInvalid
{
    public SafePacketSocketHandle()
        : base(ownsHandle: true)
    {
    }

    internal int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
