using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node.Tunnel;

/// <summary>
/// The user-space tunnel endpoint for kernels without the ipip (or ip6tnl, sit) module: raw sockets receive every
/// locally delivered tunnel packet (already reassembled), <see cref="IpipDecapsulator"/> checks it, and the inner
/// packet is written to a TUN device, where the local stack receives it as if it had arrived on a link: client → VIP,
/// delivered to the VIP on lo, answered directly to the client. One raw socket per outer family and inner family served:
/// IPv4 in IPv4 and IPv4 in IPv6 for IPv4 VIPs, IPv6 in IPv4 and IPv6 in IPv6 for IPv6 VIPs (an IPv4 raw socket sees
/// the outer header; an IPv6 one does not, so the outer destination and traffic class come as control messages). In-order
/// TCP/IPv4 segments of a flow that arrive together are merged first (<see cref="TcpCoalescer"/>, user-space GRO) and
/// written as one GSO packet: the stack's receive path, which is most of this endpoint's cost, then runs once per merge.
/// </summary>
/// <remarks>
/// While a raw socket of a protocol is open the kernel does not answer its packets with ICMP protocol unreachable
/// (ip_local_deliver_finish) or parameter problem (ip6_input_finish). The TUN device is not persistent: it exists exactly
/// as long as its descriptor, so it vanishes when this endpoint is disposed, also when the process dies. Packets are
/// taken up to <see cref="BatchLimit"/> at a time with one recvmmsg (a call per packet was most of this endpoint's
/// system calls: bench/README.md), into slots of 64 KiB (the largest IP packet, as the kernel reassembles fragments
/// before a raw socket sees them) with a control buffer each, reused for every batch; nothing is allocated per packet.
/// </remarks>
public sealed unsafe class UserTunnelEndpoint : IDisposable
{
    /// <summary>Room for the largest IPv4 packet (total length is 16 bits).</summary>
    public const int BufferSize = 65536;

    /// <summary>Where a packet from an IPv6 raw socket (no outer header) is received: room in front for the virtio_net_hdr.</summary>
    private const int Ipv6ReceiveOffset = 64;

    /// <summary>Packets taken per recvmmsg, one call per socket and wake-up, before looking at the clock and the stop token again.</summary>
    private const int BatchLimit = 64;

    /// <summary>One receive slot: room in front for the virtio_net_hdr (IPv6 outer), then the largest packet.</summary>
    private const int SlotSize = Ipv6ReceiveOffset + BufferSize;
    private const int PollTimeoutMilliseconds = 200;
    private const int ReceiveBufferBytes = 4 << 20;
    private const int ControlBufferBytes = 128;
    private static readonly TimeSpan LocalRefreshPeriod = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LocalRefreshOnMissPeriod = TimeSpan.FromSeconds(1);

    /// <summary>
    /// One socket: a raw one of its family (AF_INET: the outer IPv4 header comes with the packet) and protocol (4 or 41,
    /// or 47 for GRE), or the UDP socket bound to the GUE port (protocol 17: the GUE header and what follows it, the
    /// outer destination and TOS as control messages).
    /// </summary>
    private readonly record struct TunnelSocket(SafeDescriptorHandle Handle, int Family, byte Protocol)
    {
        public bool IsGue => Protocol == UdpProtocol;

        /// <summary>Packets come without the outer IP header: room in front for the virtio_net_hdr, the outer fields from control messages.</summary>
        public bool WithoutOuterHeader => Family == Interop.AF_INET6 || IsGue;
    }

    private const byte UdpProtocol = 17;

    private readonly TunnelSocket[] _sockets;
    private readonly SafeDescriptorHandle _tun;
    private readonly byte[] _buffer = GC.AllocateUninitializedArray<byte>(BatchLimit * SlotSize, pinned: true);
    private readonly byte[] _control = GC.AllocateUninitializedArray<byte>(BatchLimit * ControlBufferBytes, pinned: true);
    private readonly TcpCoalescer _coalescer = new();
    private bool _disposed;

    private UserTunnelEndpoint(TunnelSocket[] sockets, SafeDescriptorHandle tun, string deviceName)
    {
        _sockets = sockets;
        _tun = tun;
        DeviceName = deviceName;
        foreach (TunnelSocket socket in sockets)
        {
            bool added = false;
            socket.Handle.DangerousAddRef(ref added);
        }
        bool tunAdded = false;
        _tun.DangerousAddRef(ref tunAdded);
    }

    public string DeviceName { get; }

    /// <summary>
    /// Opens the raw sockets for the VIPs' families (<paramref name="ipv4Vips"/>: protocol 4 over IPv4 and IPv6;
    /// <paramref name="ipv6Vips"/>: protocol 41 over both) and creates the TUN device <paramref name="deviceName"/>
    /// (down; bring it up next). An IPv6 raw socket for IPv4 VIPs is left out where the kernel has no IPv6.
    /// With <paramref name="queues"/> above 1 this is queue <paramref name="queue"/> of a multi-queue endpoint: queue 0
    /// creates the device and each further one attaches a queue of it; each raw socket takes only its share of the
    /// flows (<see cref="TunnelQueueFilter"/>), and the GUE sockets share the port (SO_REUSEPORT: the kernel picks one
    /// per datagram by its addresses and ports, and the balancer's GUE source port is a hash of the flow).
    /// </summary>
    public static UserTunnelEndpoint Open(string deviceName, bool ipv4Vips = true, bool ipv6Vips = false, TunnelType type = TunnelType.Ipip,
        ushort guePort = 0, int queue = 0, int queues = 1)
    {
        ArgumentNullException.ThrowIfNull(deviceName);
        TunnelPlanner.ValidateDeviceName(deviceName);
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(queues, TunnelQueueFilter.MaxQueues);
        ArgumentOutOfRangeException.ThrowIfNegative(queue);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(queue, queues);
        var share = new QueueShare(queue, queues);
        var sockets = new List<TunnelSocket>();
        try
        {
            if (type == TunnelType.Gre)
            {
                // One raw socket per outer family takes every GRE packet, whichever family it carries (the protocol type says).
                sockets.Add(OpenSocket(Interop.AF_INET, Interop.IPPROTO_GRE, required: true, share)!.Value);
                if (OpenSocket(Interop.AF_INET6, Interop.IPPROTO_GRE, required: false, share) is { } greOverIpv6)
                {
                    sockets.Add(greOverIpv6);
                }
            }
            else if (type == TunnelType.Gue)
            {
                sockets.Add(OpenGueSocket(Interop.AF_INET, guePort, share)!.Value);
                if (OpenGueSocket(Interop.AF_INET6, guePort, share) is { } gueOverIpv6)
                {
                    sockets.Add(gueOverIpv6);
                }
            }
            else if (ipv4Vips)
            {
                sockets.Add(OpenSocket(Interop.AF_INET, Interop.IPPROTO_IPIP, required: true, share)!.Value);
                if (OpenSocket(Interop.AF_INET6, Interop.IPPROTO_IPIP, required: false, share) is { } ipv4InIpv6)
                {
                    sockets.Add(ipv4InIpv6);
                }
            }
            if (ipv6Vips)
            {
                sockets.Add(OpenSocket(Interop.AF_INET, Interop.IPPROTO_IPV6, required: true, share)!.Value);
                sockets.Add(OpenSocket(Interop.AF_INET6, Interop.IPPROTO_IPV6, required: true, share)!.Value);
            }
            SafeDescriptorHandle tun = OpenTun(deviceName, multiQueue: queues > 1);
            return new UserTunnelEndpoint([.. sockets], tun, deviceName);
        }
        catch
        {
            foreach (TunnelSocket socket in sockets)
            {
                socket.Handle.Dispose();
            }
            throw;
        }
    }

    /// <summary>Which queue of how many an endpoint is (0 of 1: the only one).</summary>
    private readonly record struct QueueShare(int Queue, int Queues)
    {
        public bool Shared => Queues > 1;
    }

    /// <summary>A raw socket of <paramref name="family"/> and <paramref name="protocol"/>; null when optional and the kernel refuses it.</summary>
    private static TunnelSocket? OpenSocket(int family, int protocol, bool required, QueueShare share)
    {
        SafeDescriptorHandle socket = Interop.Socket(family, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, protocol);
        string what = $"a raw {(family == Interop.AF_INET ? "IPv4" : "IPv6")} socket for protocol {protocol}";
        if (socket.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            return required ? throw new NodeException($"cannot open {what}: {Describe(errno)}") : null;
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
            if (family == Interop.AF_INET6)
            {
                int on = 1;
                if (Interop.SetSockOpt(socket, Interop.SOL_IPV6, Interop.IPV6_RECVPKTINFO, &on, sizeof(int)) != 0 ||
                    Interop.SetSockOpt(socket, Interop.SOL_IPV6, Interop.IPV6_RECVTCLASS, &on, sizeof(int)) != 0)
                {
                    throw new NodeException($"cannot ask {what} for the outer destination and traffic class: {Describe(Marshal.GetLastPInvokeError())}");
                }
            }
            if (share.Shared)
            {
                TakeShare(socket, what, LayoutOf(family, protocol), share);
            }
            return new TunnelSocket(socket, family, (byte)protocol);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The UDP socket of <paramref name="family"/> on <paramref name="port"/> (every address) that GUE arrives by, with
    /// the outer destination and TOS or traffic class as control messages and the same deep receive queue as the raw
    /// sockets. The IPv6 one is IPv6-only (the IPv4 one has the port for IPv4) and optional: null where the kernel has
    /// no IPv6.
    /// </summary>
    private static TunnelSocket? OpenGueSocket(int family, ushort port, QueueShare share)
    {
        bool ipv6 = family == Interop.AF_INET6;
        SafeDescriptorHandle socket = Interop.Socket(family, Interop.SOCK_DGRAM | Interop.SOCK_CLOEXEC, 0);
        if (socket.IsInvalid)
        {
            int errno = Marshal.GetLastPInvokeError();
            socket.Dispose();
            return ipv6 ? null : throw new NodeException($"cannot open a UDP socket for GUE: {Describe(errno)}");
        }
        try
        {
            int size = ReceiveBufferBytes;
            if (Interop.SetSockOpt(socket, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, &size, sizeof(int)) != 0)
            {
                _ = Interop.SetSockOpt(socket, Interop.SOL_SOCKET, Interop.SO_RCVBUF, &size, sizeof(int));
            }
            int on = 1;
            bool asked = ipv6
                ? Interop.SetSockOpt(socket, Interop.SOL_IPV6, Interop.IPV6_V6ONLY, &on, sizeof(int)) == 0 &&
                  Interop.SetSockOpt(socket, Interop.SOL_IPV6, Interop.IPV6_RECVPKTINFO, &on, sizeof(int)) == 0 &&
                  Interop.SetSockOpt(socket, Interop.SOL_IPV6, Interop.IPV6_RECVTCLASS, &on, sizeof(int)) == 0
                : Interop.SetSockOpt(socket, Interop.SOL_IP, Interop.IP_PKTINFO, &on, sizeof(int)) == 0 &&
                  Interop.SetSockOpt(socket, Interop.SOL_IP, Interop.IP_RECVTOS, &on, sizeof(int)) == 0;
            if (!asked)
            {
                throw new NodeException($"cannot ask the GUE socket for the outer destination and TOS: {Describe(Marshal.GetLastPInvokeError())}");
            }
            if (share.Shared && Interop.SetSockOpt(socket, Interop.SOL_SOCKET, Interop.SO_REUSEPORT, &on, sizeof(int)) != 0)
            {
                throw new NodeException($"cannot share UDP port {port} among the GUE sockets of the queues: {Describe(Marshal.GetLastPInvokeError())}");
            }
            int bound;
            if (ipv6)
            {
                var address6 = new Interop.SockAddrIn6 { Family = Interop.AF_INET6, PortBigEndian = BinaryPrimitives.ReverseEndianness(port) };
                bound = Interop.Bind(socket, &address6, (uint)sizeof(Interop.SockAddrIn6));
            }
            else
            {
                var address = new Interop.SockAddrIn { Family = Interop.AF_INET, PortBigEndian = BinaryPrimitives.ReverseEndianness(port) };
                bound = Interop.Bind(socket, &address, (uint)sizeof(Interop.SockAddrIn));
            }
            if (bound != 0)
            {
                throw new NodeException($"cannot bind the {(ipv6 ? "IPv6" : "IPv4")} GUE socket to UDP port {port}: {Describe(Marshal.GetLastPInvokeError())}");
            }
            return new TunnelSocket(socket, family, UdpProtocol);
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
    /// (zero: never). <paramref name="busyPollMicroseconds"/>: for so long after its last packets the loop spins on
    /// poll() without a timeout instead of sleeping in it (<see cref="BusyPoll"/>; 0: never).
    /// </summary>
    public void Run(AddressSet vips, Func<AddressSet> localAddresses, TunnelCounters counters, CancellationToken stop,
        TimeSpan reportEvery = default, Action<TunnelCounters>? report = null, int busyPollMicroseconds = 0)
    {
        ArgumentNullException.ThrowIfNull(vips);
        ArgumentNullException.ThrowIfNull(localAddresses);
        ArgumentNullException.ThrowIfNull(counters);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var state = new ReceiveState(localAddresses(), Environment.TickCount64);
        long reportedAt = state.LocalRefreshedAt;
        Interop.PollFd* polls = stackalloc Interop.PollFd[_sockets.Length];
        Interop.MMsgHdr* messages = stackalloc Interop.MMsgHdr[BatchLimit];
        Interop.IoVec* vectors = stackalloc Interop.IoVec[BatchLimit];
        for (int i = 0; i < _sockets.Length; i++)
        {
            polls[i] = new Interop.PollFd { Fd = _sockets[i].Handle.Fd, Events = Interop.POLLIN };
        }
        var busyPoll = new BusyPoll(busyPollMicroseconds);
        BusyPolling = busyPoll;
        fixed (byte* buffer = _buffer)
        fixed (byte* control = _control)
        {
            while (!stop.IsCancellationRequested)
            {
                // A spin that found packets leaves their sockets' revents in polls: no second poll() for them.
                int ready = busyPoll.SpinForFrames(((nint)polls, _sockets.Length), AnySocketReady)
                    ? 1
                    : Interop.Poll(polls, (nuint)_sockets.Length, PollTimeoutMilliseconds);
                if (ready > 0)
                {
                    busyPoll.FramesSeen();
                }
                if (ready < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno != Interop.Errno.EINTR)
                    {
                        throw new NodeException($"poll on the tunnel sockets failed: {Describe(errno)}");
                    }
                }
                for (int s = 0; ready > 0 && s < _sockets.Length; s++)
                {
                    if ((polls[s].ReturnedEvents & Interop.POLLIN) != 0)
                    {
                        ReceiveBatch(_sockets[s], messages, vectors, buffer, control, vips, localAddresses, counters, ref state);
                    }
                }
                // Nothing waits in a merge across a wait for more packets.
                WriteMerged(counters);

                long now = Environment.TickCount64;
                if (now - state.LocalRefreshedAt >= LocalRefreshPeriod.TotalMilliseconds)
                {
                    state = new ReceiveState(localAddresses(), now);
                }
                if (report != null && reportEvery > TimeSpan.Zero && now - reportedAt >= reportEvery.TotalMilliseconds)
                {
                    report(counters);
                    reportedAt = now;
                }
            }
        }
    }

    /// <summary>The busy polling of the last <see cref="Run"/> (what it bought: <see cref="BusyPoll.Hits"/>); null before one.</summary>
    public BusyPoll? BusyPolling { get; private set; }

    /// <summary>A poll() that does not wait: a socket has packets.</summary>
    private static readonly Func<(nint Polls, int Count), bool> AnySocketReady =
        sockets => Interop.Poll((Interop.PollFd*)sockets.Polls, (nuint)sockets.Count, 0) > 0;

    /// <summary>This node's addresses as last read, and when.</summary>
    private record struct ReceiveState(AddressSet Local, long LocalRefreshedAt);

    /// <summary>Up to <see cref="BatchLimit"/> packets from one socket in one recvmmsg, each checked and delivered or counted.</summary>
    private void ReceiveBatch(in TunnelSocket socket, Interop.MMsgHdr* messages, Interop.IoVec* vectors, byte* buffer, byte* control,
        AddressSet vips, Func<AddressSet> localAddresses, TunnelCounters counters, ref ReceiveState state)
    {
        bool withControl = socket.WithoutOuterHeader;
        int offset = withControl ? Ipv6ReceiveOffset : 0;
        for (int i = 0; i < BatchLimit; i++)
        {
            // The kernel writes each message's lengths and flags back: every field is set again for every call.
            vectors[i] = new Interop.IoVec { Base = buffer + (i * SlotSize) + offset, Length = BufferSize };
            messages[i] = new Interop.MMsgHdr
            {
                Header = new Interop.MsgHdr
                {
                    Iov = &vectors[i],
                    IovLength = 1,
                    Control = withControl ? control + (i * ControlBufferBytes) : null,
                    ControlLength = withControl ? (nuint)ControlBufferBytes : 0,
                },
            };
        }
        int count = Interop.RecvMmsg(socket.Handle.Fd, messages, BatchLimit, Interop.MSG_DONTWAIT, null);
        if (count < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Interop.Errno.EAGAIN && errno != Interop.Errno.EINTR)
            {
                counters.CountReceiveError();
            }
            return;
        }
        for (int i = 0; i < count; i++)
        {
            byte* start = buffer + (i * SlotSize) + offset;
            int received = (int)messages[i].SentLength;
            UInt128 outerDestination = UInt128.Zero;
            byte outerTrafficClass = 0;
            if (withControl)
            {
                ReadControl((byte*)messages[i].Header.Control, (int)messages[i].Header.ControlLength, out outerDestination, out outerTrafficClass);
            }
            var packet = new Span<byte>(start, received);
            DecapsulationOutcome outcome = Decapsulate(packet, socket, outerDestination, outerTrafficClass, state.Local, vips, out int innerOffset, out int innerLength);
            if (outcome == DecapsulationOutcome.OuterNotLocal && Environment.TickCount64 - state.LocalRefreshedAt >= LocalRefreshOnMissPeriod.TotalMilliseconds)
            {
                state = new ReceiveState(localAddresses(), Environment.TickCount64);
                outcome = Decapsulate(packet, socket, outerDestination, outerTrafficClass, state.Local, vips, out innerOffset, out innerLength);
            }
            counters.Count(outcome, received, innerLength);
            if (outcome == DecapsulationOutcome.Delivered)
            {
                Deliver(start + innerOffset, innerLength, counters);
            }
        }
    }

    private static DecapsulationOutcome Decapsulate(Span<byte> packet, in TunnelSocket socket, UInt128 outerDestination, byte outerTrafficClass,
        AddressSet local, AddressSet vips, out int innerOffset, out int innerLength)
    {
        if (socket.IsGue)
        {
            InetAddress destination = socket.Family == Interop.AF_INET6 ? InetAddress.FromIPv6(outerDestination) : InetAddress.FromIPv4((uint)outerDestination);
            return IpipDecapsulator.DecapsulateGue(packet, destination, outerTrafficClass, local, vips, out innerOffset, out innerLength);
        }
        if (socket.Protocol == Interop.IPPROTO_GRE)
        {
            return socket.Family == Interop.AF_INET6
                ? IpipDecapsulator.DecapsulateGreFromIpv6(packet, outerDestination, outerTrafficClass, local, vips, out innerOffset, out innerLength)
                : IpipDecapsulator.DecapsulateGre(packet, local, vips, out innerOffset, out innerLength);
        }
        if (socket.Family == Interop.AF_INET)
        {
            return IpipDecapsulator.Decapsulate(packet, local, vips, out innerOffset, out innerLength);
        }
        innerOffset = 0;
        return IpipDecapsulator.DecapsulateFromIpv6(packet, socket.Protocol, outerDestination, outerTrafficClass, local, vips, out innerLength);
    }

    /// <summary>
    /// The outer destination and traffic class from the control messages: an IPv6 raw socket's (IPV6_PKTINFO,
    /// IPV6_TCLASS), or the GUE socket's (IP_PKTINFO's header destination, IP_TOS; the IPv4 address in the low 32 bits).
    /// </summary>
    private static void ReadControl(byte* control, int length, out UInt128 destination, out byte trafficClass)
    {
        destination = UInt128.Zero;
        trafficClass = 0;
        int offset = 0;
        while (offset + Interop.CmsgHeaderSize <= length)
        {
            var header = (Interop.CmsgHdr*)(control + offset);
            int size = (int)header->Length;
            if (size < Interop.CmsgHeaderSize || offset + size > length)
            {
                break;
            }
            byte* data = control + offset + Interop.CmsgHeaderSize;
            if (header->Level == Interop.SOL_IPV6 && header->Type == Interop.IPV6_PKTINFO && size >= Interop.CmsgHeaderSize + 16)
            {
                destination = BinaryPrimitives.ReadUInt128BigEndian(new ReadOnlySpan<byte>(data, 16));
            }
            else if (header->Level == Interop.SOL_IPV6 && header->Type == Interop.IPV6_TCLASS && size >= Interop.CmsgHeaderSize + sizeof(int))
            {
                trafficClass = (byte)*(int*)data;
            }
            else if (header->Level == Interop.SOL_IP && header->Type == Interop.IP_PKTINFO && size >= Interop.CmsgHeaderSize + 12)
            {
                destination = BinaryPrimitives.ReadUInt32BigEndian(new ReadOnlySpan<byte>(data + 8, 4)); // ipi_addr, after ifindex and spec_dst
            }
            else if (header->Level == Interop.SOL_IP && header->Type == Interop.IP_TOS && size >= Interop.CmsgHeaderSize + 1)
            {
                trafficClass = *data;
            }
            offset += (size + nint.Size - 1) & ~(nint.Size - 1);
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
        foreach (TunnelSocket socket in _sockets)
        {
            socket.Handle.DangerousRelease();
            socket.Handle.Dispose();
        }
    }

    /// <summary>
    /// Narrows a raw socket to its queue's share of the flows. What it took between its creation and the filter, every
    /// queue's socket took too: that is read off and dropped, so that no packet of the moments before the endpoint is
    /// ready is delivered twice (the device is not up yet, so nothing delivered is lost by it either).
    /// </summary>
    private static void TakeShare(SafeDescriptorHandle socket, string what, TunnelQueueFilter.Layout layout, QueueShare share)
    {
        try
        {
            TunnelQueueFilter.For(layout, share.Queue, share.Queues).Attach(socket, Interop.SOL_SOCKET, Interop.SO_ATTACH_FILTER);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new NodeException($"cannot narrow {what} to queue {share.Queue}'s share of the flows: {e.Message}");
        }
        byte discard;
        while (Interop.Recv(socket.Fd, &discard, 1, Interop.MSG_DONTWAIT) >= 0)
        {
            // a packet from before the filter (truncated to one byte: only the count matters)
        }
    }

    /// <summary>Where a raw socket of <paramref name="family"/> and <paramref name="protocol"/> finds the inner packet (for its queue filter).</summary>
    private static TunnelQueueFilter.Layout LayoutOf(int family, int protocol) => (family == Interop.AF_INET, protocol) switch
    {
        (true, Interop.IPPROTO_IPIP) => TunnelQueueFilter.Layout.Ipv4InIpv4,
        (false, Interop.IPPROTO_IPIP) => TunnelQueueFilter.Layout.Ipv4InIpv6,
        (true, Interop.IPPROTO_IPV6) => TunnelQueueFilter.Layout.Ipv6InIpv4,
        (false, Interop.IPPROTO_IPV6) => TunnelQueueFilter.Layout.Ipv6InIpv6,
        (true, _) => TunnelQueueFilter.Layout.GreOverIpv4,
        (false, _) => TunnelQueueFilter.Layout.GreOverIpv6,
    };

    private static SafeDescriptorHandle OpenTun(string deviceName, bool multiQueue)
    {
        try
        {
            short flags = (short)(Interop.IFF_TUN | Interop.IFF_NO_PI | Interop.IFF_VNET_HDR | (multiQueue ? Interop.IFF_MULTI_QUEUE : 0));
            return TunTap.Open(deviceName, flags);
        }
        catch (HostException e)
        {
            throw new NodeException($"{e.Message} (is the tun driver there?)");
        }
    }

    private static string Describe(int errno) => TunTap.Describe(errno);
}
