using Microsoft.Win32.SafeHandles;

namespace UserspaceDr.Linux;

/// <summary>A file descriptor we own (an AF_PACKET or raw IP socket, a TUN device), closed exactly once.</summary>
internal sealed class SafeDescriptorHandle : SafeHandleMinusOneIsInvalid
{
    public SafeDescriptorHandle()
        : base(ownsHandle: true)
    {
    }

    internal int Fd => (int)handle;

    /// <summary>Takes ownership of a descriptor a library returned (libbpf's maps, programs and links).</summary>
    internal static SafeDescriptorHandle Own(int fd)
    {
        var owned = new SafeDescriptorHandle();
        owned.SetHandle(fd);
        return owned;
    }

    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
