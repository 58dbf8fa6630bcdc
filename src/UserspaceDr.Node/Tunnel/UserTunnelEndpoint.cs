using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;
using UserspaceDr.Linux;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// The user-space IP-in-IP endpoint for kernels without the ipip module: a raw IPPROTO_IPIP socket receives every
/// locally delivered protocol-4 packet (outer header included, already reassembled), <see cref="IpipDecapsulator"/>
/// checks it, and the inner packet is written to a TUN device, where the local stack receives it as if it had arrived
/// on a link: client → VIP, delivered to the VIP on lo, answered directly to the client. In-order TCP segments of a
/// flow that arrive together are merged first (<see cref="TcpCoalescer"/>, user-space GRO) and written as one GSO
/// packet: the stack's receive path, which is most of this endpoint's cost, then runs once per merge.
/// </summary>
/// <remarks>
/// While the raw socket is open the kernel does not answer IP-in-IP packets with ICMP protocol-unreachable
/// (ip_local_deliver_finish sends that only when no raw socket took the packet). The TUN device is not persistent: it
/// exists exactly as long as its descriptor, so it vanishes when this endpoint is disposed, also when the process dies.
/// One buffer of 64 KiB (the largest IPv4 packet) is reused for every packet; nothing is allocated per packet.
/// </remarks>
public sealed unsafe class UserTunnelEndpoint : IDisposable
{
    /// <summary>Room for the largest IPv4 packet (total length is 16 bits).</summary>
    public const int BufferSize = 65536;

    /// <summary>Packets taken per wake-up before looking at the clock and the stop token again.</summary>
    private const int BatchLimit = 64;
    private const int PollTimeoutMilliseconds = 200;
    private const int ReceiveBufferBytes = 4 << 20;
    private static readonly TimeSpan LocalRefreshPeriod = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LocalRefreshOnMissPeriod = TimeSpan.FromSeconds(1);

    private readonly SafeDescriptorHandle _socket;
    private readonly SafeDescriptorHandle _tun;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BufferSize, pinned: true);
    private readonly TcpCoalescer _coalescer = new();
    private bool _disposed;

    private UserTunnelEndpoint(SafeDescriptorHandle socket, SafeDescriptorHandle tun, string deviceName)
    {
        _socket = socket;
        _tun = tun;
        DeviceName = deviceName;
        bool added = false;
        _socket.DangerousAddRef(ref added);
        added = false;
        _tun.DangerousAddRef(ref added);
    }

    public string DeviceName { get; }

    /// <summary>Opens the raw IPIP socket and creates the TUN device <paramref name="deviceName"/> (down; bring it up next).</summary>
    public static UserTunnelEndpoint Open(string deviceName)
    {
        ArgumentNullException.ThrowIfNull(deviceName);
        TunnelPlanner.ValidateDeviceName(deviceName);
        SafeDescriptorHandle socket = Interop.Socket(Interop.AF_INET, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, Interop.IPPROTO_IPIP);
        if (socket.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            throw new NodeException($"cannot open a raw IP-in-IP socket: {Describe(errno)}");
        }
        try
        {
            // A deeper queue absorbs bursts while the loop writes to the TUN device; the kernel caps SO_RCVBUF at
            // net.core.rmem_max, SO_RCVBUFFORCE (root) does not. Either failing leaves the default: not fatal.
            int size = ReceiveBufferBytes;
            if (Interop.SetSockOpt(socket, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, &size, sizeof(int)) != 0)
            {
                _ = Interop.SetSockOpt(socket, Interop.SOL_SOCKET, Interop.SO_RCVBUF, &size, sizeof(int));
            }
            SafeDescriptorHandle tun = OpenTun(deviceName);
            return new UserTunnelEndpoint(socket, tun, deviceName);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Receives, checks and delivers until <paramref name="stop"/> is cancelled. <paramref name="localAddresses"/> is
    /// asked again every 10 s, and at most once a second when a packet's outer destination is not in the current set
    /// (an address added since). <paramref name="report"/> runs on this thread every <paramref name="reportEvery"/>
    /// (zero: never).
    /// </summary>
    public void Run(AddressSet vips, Func<AddressSet> localAddresses, TunnelCounters counters, CancellationToken stop,
        TimeSpan reportEvery = default, Action<TunnelCounters>? report = null)
    {
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(counters);
        ObjectDisposedException.ThrowIf(_disposed, this);
        AddressSet local = localAddresses();
        long now = Environment.TickCount64;
        long localRefreshedAt = now;
        long reportedAt = now;
        fixed (byte* buffer = _buffer)
        {
            var poll = new Interop.PollFd { Fd = _socket.Fd, Events = Interop.POLLIN };
            while (!stop.IsCancellationRequested)
            {
                int ready = Interop.Poll(&poll, 1, PollTimeoutMilliseconds);
                if (ready < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != Interop.Errno.EINTR)
                    {
                        throw new NodeException($"poll on the IP-in-IP socket failed: {Describe(errno)}");
                    }
                }
                for (int i = 0; ready > 0 && i < BatchLimit; i++)
                {
                    nint received = Interop.Recv(_socket.Fd, buffer, BufferSize, Interop.MSG_DONTWAIT);
                    if (received < 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        if (errno != Interop.Errno.EAGAIN && errno != Interop.Errno.EINTR)
                        {
                            counters.CountReceiveError();
                        }
                        break;
                    }
                    var packet = new Span<byte>(buffer, (int)received);
                    DecapsulationOutcome outcome = IpipDecapsulator.Decapsulate(packet, local, vips, out int innerOffset, out int innerLength);
                    if (outcome == DecapsulationOutcome.OuterNotLocal && Environment.TickCount64 - localRefreshedAt >= LocalRefreshOnMissPeriod.TotalMilliseconds)
                    {
                        local = localAddresses();
                        localRefreshedAt = Environment.TickCount64;
                        outcome = IpipDecapsulator.Decapsulate(packet, local, vips, out innerOffset, out innerLength);
                    }
                    counters.Count(outcome, (int)received, innerLength);
                    if (outcome == DecapsulationOutcome.Delivered)
                    {
                        Deliver(buffer + innerOffset, innerLength, counters);
                    }
                }
                // Nothing waits in a merge across a wait for more packets.
                WriteMerged(counters);

                now = Environment.TickCount64;
                if (now - localRefreshedAt >= LocalRefreshPeriod.TotalMilliseconds)
                {
                    local = localAddresses();
                    localRefreshedAt = now;
                }
                if (report != null && reportEvery > TimeSpan.Zero && now - reportedAt >= reportEvery.TotalMilliseconds)
                {
                    report(counters);
                    reportedAt = now;
                }
            }
        }
    }

    /// <summary>
    /// Hands one inner packet on: into the open merge if it continues it, else the merge is written first and the
    /// packet opens a new one or, if it cannot be merged, is written as it is. <paramref name="packet"/> has at least
    /// <see cref="TcpCoalescer.VnetHeaderSize"/> bytes in front of it (the outer header), where its virtio_net_hdr goes.
    /// </summary>
    private void Deliver(byte* packet, int length, TunnelCounters counters)
    {
        var inner = new ReadOnlySpan<byte>(packet, length);
        if (_coalescer.TryAppend(inner))
        {
            return;
        }
        WriteMerged(counters);
        if (TcpCoalescer.IsCandidate(inner))
        {
            _coalescer.Start(inner);
            return;
        }
        byte* withHeader = packet - TcpCoalescer.VnetHeaderSize;
        new Span<byte>(withHeader, TcpCoalescer.VnetHeaderSize).Clear(); // no GSO; the kernel checks the checksums itself
        Write(withHeader, length + TcpCoalescer.VnetHeaderSize, counters);
    }

    private void WriteMerged(TunnelCounters counters)
    {
        if (!_coalescer.IsActive)
        {
            return;
        }
        int segments = _coalescer.Segments;
        ReadOnlySpan<byte> merged = _coalescer.Finish();
        fixed (byte* bytes = merged)
        {
            Write(bytes, merged.Length, counters);
        }
        counters.CountMerged(segments);
    }

    private void Write(byte* bytes, int length, TunnelCounters counters)
    {
        if (Interop.Write(_tun.Fd, bytes, (nuint)length) != length)
        {
            counters.CountTunWriteError();
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        // Closing the TUN descriptor removes the (non-persistent) device.
        _tun.DangerousRelease();
        _tun.Dispose();
        _socket.DangerousRelease();
        _socket.Dispose();
    }

    private static SafeDescriptorHandle OpenTun(string deviceName)
    {
        SafeDescriptorHandle tun = Interop.Open("/dev/net/tun", Interop.O_RDWR | Interop.O_CLOEXEC);
        if (tun.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            tun.Dispose();
            throw new NodeException($"cannot open /dev/net/tun: {Describe(errno)} (is the tun driver there?)");
        }
        var request = default(Interop.IfReq);
        byte[] name = Encoding.ASCII.GetBytes(deviceName);
        name.AsSpan().CopyTo(new Span<byte>(request.Name, Interop.IFNAMSIZ - 1));
        request.Flags = Interop.IFF_TUN | Interop.IFF_NO_PI | Interop.IFF_VNET_HDR;
        if (Interop.Ioctl(tun, Interop.TUNSETIFF, &request) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            tun.Dispose();
            throw new NodeException($"cannot create TUN device {deviceName}: {Describe(errno)}");
        }
        return tun;
    }

    private static string Describe(int errno) => $"{new Win32Exception(errno).Message} (errno {errno})";
}
