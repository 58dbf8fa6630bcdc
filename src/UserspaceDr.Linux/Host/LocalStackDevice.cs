using System.Globalization;
using System.Runtime.InteropServices;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// The way into this host's own stack for frames udr hands over unchanged (real servers on the balancer itself): a TAP
/// device with virtio_net_hdr, so that a partial checksum or a GSO super-frame goes in as the kernel's own would (a
/// write is one frame received on the device, which the kernel then routes like any other). The device exists while
/// this process holds it. Frames that enter by it bypass the netdev guard on the served links, which is the point; its
/// reverse-path filter is turned off, since the clients' sources are routed by another device.
/// </summary>
public sealed unsafe class LocalStackDevice : IDisposable
{
    private readonly SafeDescriptorHandle _tap;
    private readonly int _descriptor;
    private bool _referenced;

    private LocalStackDevice(SafeDescriptorHandle tap, string name, MacAddress mac)
    {
        _tap = tap;
        Name = name;
        Mac = mac;
        // Raw descriptor per write: the handle stays referenced for this object's whole life instead of per frame.
        _tap.DangerousAddRef(ref _referenced);
        _descriptor = (int)_tap.DangerousGetHandle();
    }

    public string Name { get; }

    /// <summary>The device's own MAC: the destination of every frame written, so the stack takes them as its own.</summary>
    public MacAddress Mac { get; }

    /// <summary>
    /// Creates the TAP device <paramref name="name"/> with MAC <paramref name="mac"/>, brings it up and turns its
    /// rp_filter off. <paramref name="warning"/> says when the host's reverse-path filter will still drop what is
    /// written (conf/all not 0, or /proc/sys read-only).
    /// </summary>
    /// <exception cref="HostException">The device could not be created or configured.</exception>
    public static LocalStackDevice Create(string name, MacAddress mac, out string? warning)
    {
        SafeDescriptorHandle tap = TunTap.Open(name, Interop.IFF_TAP | Interop.IFF_NO_PI | Interop.IFF_VNET_HDR | Interop.IFF_TUN_EXCL);
        try
        {
            CommandRunner.RunChecked("ip", "link", "set", "dev", name, "address", mac.ToString(), "up");
            warning = LoosenReversePathFilter(name);
            return new LocalStackDevice(tap, name, mac);
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    /// <summary>
    /// rp_filter 0 on the device: a client's frame enters by it while the route back to the client leaves by a served
    /// link, and the device has no address, so both strict and loose mode drop it (fib_validate_source: loose mode
    /// on a device without an address ends in its last resort, a drop). The kernel uses the larger of conf/all and the
    /// device's value, so this holds only where conf/all is 0 (the kernel's default, and Debian's: systemd's
    /// 50-default.conf leaves "all" out). Null when in force; else why not, and what that means.
    /// </summary>
    private static string? LoosenReversePathFilter(string name)
    {
        string path = $"/proc/sys/net/ipv4/conf/{name}/rp_filter";
        string? failure = null;
        try
        {
            File.WriteAllText(path, "0");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            failure = $"cannot set {path} ({e.Message}); ";
        }
        string all = ReadSysctl("/proc/sys/net/ipv4/conf/all/rp_filter");
        string device = ReadSysctl(path);
        return all == "0" && device == "0"
            ? null
            : $"{failure}net.ipv4.conf.all.rp_filter is {all} and {name}'s {device}: the kernel's reverse-path filter drops the IPv4 frames udr hands to local real servers (the device has no address); set net.ipv4.conf.all.rp_filter=0 and the served links' own rp_filter instead";
    }

    private static string ReadSysctl(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }

    /// <summary>
    /// Writes one frame into the stack: <paramref name="header"/>, then <paramref name="head"/> and
    /// <paramref name="rest"/> as one frame (two pieces, so a VLAN tag can be left out without a copy). False, with
    /// the errno, when the kernel refused it. Safe from several threads at once (each write is one frame).
    /// </summary>
    public bool Write(VirtioNetHeader header, ReadOnlySpan<byte> head, ReadOnlySpan<byte> rest, out int errno)
    {
        fixed (byte* headBytes = head)
        fixed (byte* restBytes = rest)
        {
            Interop.IoVec* vectors = stackalloc Interop.IoVec[3];
            vectors[0] = new Interop.IoVec { Base = &header, Length = VirtioNetHeader.Size };
            vectors[1] = new Interop.IoVec { Base = headBytes, Length = (nuint)head.Length };
            vectors[2] = new Interop.IoVec { Base = restBytes, Length = (nuint)rest.Length };
            nint written = Interop.Writev(_descriptor, vectors, 3);
            errno = written < 0 ? Marshal.GetLastPInvokeError() : 0;
            return written >= 0;
        }
    }

    /// <summary>Why a write failed, in words.</summary>
    public static string Describe(int errno) => TunTap.Describe(errno);

    /// <summary>Closes the descriptor: the device disappears.</summary>
    public void Dispose()
    {
        if (_referenced)
        {
            _tap.DangerousRelease();
            _referenced = false;
        }
        _tap.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} ({Mac})");
}
