using System.Runtime.InteropServices;
using UserspaceDr.Linux;

namespace UserspaceDr.Io.AfPacket;

/// <summary>
/// How to open a <see cref="PacketTxBatch"/>. <paramref name="InterfaceName"/> null: the socket is not bound to an
/// interface, and every frame names its own (<see cref="PacketTxBatch.Add(byte*, int, int)"/>), so one sendmmsg can
/// carry frames for several interfaces.
/// </summary>
public sealed record PacketTxBatchOptions(string? InterfaceName)
{
    /// <summary>Frames per sendmmsg; <see cref="Add"/> flushes when the batch is full. At most 1024 (UIO_MAXIOV).</summary>
    public int Capacity { get; init; } = 64;

    /// <summary>
    /// Every frame starts with a <see cref="VirtioNetHeader"/> (PACKET_VNET_HDR). The kernel then segments GSO
    /// super-frames and finishes partial checksums on the way out: what a frame received with a vnet header needs.
    /// </summary>
    public bool VirtioNetHeader { get; init; }

    /// <summary>
    /// PACKET_QDISC_BYPASS: hand frames straight to the driver, skipping the qdisc layer (and with it the taps that
    /// would show our own frames to every ETH_P_ALL socket on this host).
    /// </summary>
    public bool QdiscBypass { get; init; } = true;

    public const int MaxCapacity = 1024;
}

/// <summary>
/// Transmits frames in batches, on the interface it is bound to or on the one each frame names: <see cref="Add"/> queues a pointer and a length (into the RX ring
/// for zero-copy forwarding, or into any buffer that lives until <see cref="Flush"/>), <see cref="Flush"/> sends the
/// whole batch with one sendmmsg. Failures are counted per errno, never thrown.
/// </summary>
/// <remarks>
/// The socket is bound with protocol 0, so it receives nothing: it exists only to send. Without a virtio_net_hdr
/// the kernel refuses a frame larger than the device MTU plus its link header with EMSGSIZE (that is where a
/// GSO super-frame ends up); such a frame is counted and skipped, the rest of the batch still goes out.
/// One instance belongs to one worker thread.
/// </remarks>
public sealed unsafe class PacketTxBatch : IDisposable
{
    /// <summary>How often one flush retries a send that a signal interrupted before giving the frame up.</summary>
    private const int InterruptRetries = 3;

    private readonly SafeDescriptorHandle _socket;
    private readonly int _fd;
    private readonly Interop.MMsgHdr* _messages;
    private readonly Interop.IoVec* _vectors;
    private readonly Interop.SockAddrLl* _addresses;
    private readonly long[] _errorsByErrno = new long[Interop.Errno.CounterSlots];
    private bool _socketReferenced;
    private int _count;
    private bool _disposed;

    public PacketTxBatch(PacketTxBatchOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Capacity is < 1 or > PacketTxBatchOptions.MaxCapacity)
        {
            throw new ArgumentException($"Capacity must be 1 to {PacketTxBatchOptions.MaxCapacity}, not {options.Capacity}", nameof(options));
        }
        Options = options;
        Capacity = options.Capacity;
        InterfaceIndex = options.InterfaceName is null ? 0 : PacketSocket.InterfaceIndex(options.InterfaceName);
        _socket = PacketSocket.Open();
        try
        {
            if (options.VirtioNetHeader)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_VNET_HDR, 1, "PACKET_VNET_HDR");
            }
            if (options.QdiscBypass)
            {
                PacketSocket.SetOption(_socket, Interop.SOL_PACKET, Interop.PACKET_QDISC_BYPASS, 1, "PACKET_QDISC_BYPASS");
            }
            // Protocol 0: bound to the interface for sending, but no receive hook is registered. Unbound, it needs
            // no bind at all: a frame's sockaddr_ll names the interface, and protocol 0 there makes the kernel read
            // the protocol from the frame's own Ethernet header (packet_parse_headers).
            if (options.InterfaceName is not null)
            {
                PacketSocket.Bind(_socket, InterfaceIndex, 0);
            }

            _messages = (Interop.MMsgHdr*)NativeMemory.AllocZeroed((nuint)Capacity, (nuint)sizeof(Interop.MMsgHdr));
            _vectors = (Interop.IoVec*)NativeMemory.AllocZeroed((nuint)Capacity, (nuint)sizeof(Interop.IoVec));
            _addresses = (Interop.SockAddrLl*)NativeMemory.AllocZeroed((nuint)Capacity, (nuint)sizeof(Interop.SockAddrLl));
            for (int i = 0; i < Capacity; i++)
            {
                // One iovec per message, wired once: Add only fills in the iovec.
                _messages[i].Header.Iov = _vectors + i;
                _messages[i].Header.IovLength = 1;
                _addresses[i].Family = Interop.AF_PACKET;
            }
            _socket.DangerousAddRef(ref _socketReferenced);
            _fd = _socket.Fd;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public PacketTxBatchOptions Options { get; }

    /// <summary>The interface the socket is bound to; 0 when it is not (every frame names its own).</summary>
    public int InterfaceIndex { get; }

    public int Capacity { get; }

    /// <summary>Frames queued and not yet flushed.</summary>
    public int Count => _count;

    /// <summary>Frames the kernel accepted.</summary>
    public long Sent { get; private set; }

    /// <summary>Frames the kernel refused (each counted once, under its errno).</summary>
    public long Errors { get; private set; }

    /// <summary>sendmmsg calls made: one per flush, plus one per retry after a refused frame.</summary>
    public long SendCalls { get; private set; }

    /// <summary>errno of the last refused frame; 0 when none was refused.</summary>
    public int LastErrno { get; private set; }

    /// <summary>Frames refused with <paramref name="errno"/> (e.g. 90, EMSGSIZE).</summary>
    public long ErrorsWithErrno(int errno) => _errorsByErrno[Math.Clamp(errno, 0, _errorsByErrno.Length - 1)];

    /// <summary>
    /// Queues one frame: <paramref name="start"/> is the first byte to send (the virtio_net_hdr when the batch was
    /// opened with one, else the MAC header). The memory must stay valid and unchanged until the next flush.
    /// Flushes first when the batch is full.
    /// </summary>
    public void Add(byte* start, int length)
    {
        if (_count == Capacity)
        {
            Flush();
        }
        Interop.IoVec* vector = _vectors + _count;
        vector->Base = start;
        vector->Length = (nuint)length;
        _messages[_count].Header.Name = null; // the bound interface
        _messages[_count].Header.NameLength = 0;
        _count++;
    }

    /// <summary>
    /// Queues one frame for the interface <paramref name="interfaceIndex"/> (its sockaddr_ll goes in the message's
    /// msg_name): one batch may mix interfaces. Otherwise as <see cref="Add(byte*, int)"/>.
    /// </summary>
    public void Add(byte* start, int length, int interfaceIndex)
    {
        if (_count == Capacity)
        {
            Flush();
        }
        Interop.IoVec* vector = _vectors + _count;
        vector->Base = start;
        vector->Length = (nuint)length;
        Interop.SockAddrLl* address = _addresses + _count;
        address->InterfaceIndex = interfaceIndex;
        _messages[_count].Header.Name = address;
        _messages[_count].Header.NameLength = (uint)sizeof(Interop.SockAddrLl);
        _count++;
    }

    /// <summary>
    /// Sends every queued frame with one sendmmsg. When the kernel refuses a frame, sendmmsg returns how many went
    /// before it; the next call then fails on that frame with its errno, which is counted, and the rest is retried.
    /// Returns the number of frames sent.
    /// </summary>
    public int Flush()
    {
        int index = 0;
        int sent = 0;
        int interruptRetries = InterruptRetries;
        while (index < _count)
        {
            int result = Interop.SendMmsg(_fd, _messages + index, (uint)(_count - index), 0);
            SendCalls++;
            if (result > 0)
            {
                index += result;
                sent += result;
                continue;
            }
            int errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
            if (errno == Interop.Errno.EINTR && interruptRetries-- > 0)
            {
                continue;
            }
            // The frame at index failed on its own: count it and go on with the rest of the batch.
            _errorsByErrno[Math.Clamp(errno, 0, _errorsByErrno.Length - 1)]++;
            Errors++;
            LastErrno = errno;
            index++;
        }
        Sent += sent;
        _count = 0;
        return sent;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        NativeMemory.Free(_messages);
        NativeMemory.Free(_vectors);
        NativeMemory.Free(_addresses);
        if (_socketReferenced)
        {
            _socket.DangerousRelease();
            _socketReferenced = false;
        }
        _socket?.Dispose();
    }
}
