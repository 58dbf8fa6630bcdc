using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace UserspaceDr.Linux.Host;

/// <summary>Opening a TUN or TAP device (linux/if_tun.h), for the devices udr keeps: the lifeline and the local stack's.</summary>
internal static unsafe class TunTap
{
    /// <summary>Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..".</summary>
    public static bool IsValidName(string name) =>
        name is { Length: > 0 and <= 15 } && name is not ("." or "..") && !name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || c > '~');

    /// <summary>Creates (or, without IFF_TUN_EXCL in <paramref name="flags"/>, attaches to) the device <paramref name="name"/>.</summary>
    /// <exception cref="HostException">The name is not valid, or the device could not be made (it exists, no CAP_NET_ADMIN, no tun driver).</exception>
    public static SafeDescriptorHandle Open(string name, short flags)
    {
        if (!IsValidName(name))
        {
            throw new HostException($"'{name}' is not a valid interface name (1-15 characters, no '/', ':' or spaces)");
        }
        SafeDescriptorHandle device = Interop.Open("/dev/net/tun", Interop.O_RDWR | Interop.O_CLOEXEC);
        if (device.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            device.Dispose();
            throw new HostException($"cannot open /dev/net/tun for {name}: {Describe(errno)}");
        }
        var request = default(Interop.IfReq);
        Encoding.ASCII.GetBytes(name).AsSpan().CopyTo(new Span<byte>(request.Name, Interop.IFNAMSIZ - 1));
        request.Flags = flags;
        if (Interop.Ioctl(device, Interop.TUNSETIFF, &request) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            device.Dispose();
            throw new HostException($"cannot create the device {name}: {Describe(errno)}");
        }
        return device;
    }

    public static string Describe(int errno) => $"{new Win32Exception(errno).Message} (errno {errno})";
}
