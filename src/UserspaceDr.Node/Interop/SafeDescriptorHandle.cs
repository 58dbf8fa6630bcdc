using Microsoft.Win32.SafeHandles;

namespace UserspaceDr.Node;

/// <summary>A file descriptor we own (the raw IPIP socket, the TUN device), closed exactly once.</summary>
internal sealed class SafeDescriptorHandle : SafeHandleMinusOneIsInvalid
{
    public SafeDescriptorHandle()
        : base(ownsHandle: true)
    {
    }

    internal int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
