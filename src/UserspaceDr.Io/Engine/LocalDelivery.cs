using System.Buffers.Binary;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux;
using UserspaceDr.Linux.Host;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// Where frames for real servers on the balancer itself go (<see cref="FrameReason.DeliveredLocally"/>): into this
/// host's own stack through <see cref="LocalStackDevice"/>, made the first time a rule set names such a server (so a
/// balancer without one never has the device) and kept until udr stops. Every backend's frames come here through
/// <see cref="EngineHost.Forward{TSink}"/>, whatever their transport; the offload state travels in the virtio_net_hdr
/// as <see cref="OffloadPolicy.LocalDeliveryHeader"/> writes it.
/// </summary>
public sealed class LocalDelivery : IDisposable
{
    /// <summary>The device's name (one per network namespace: a second udr beside the first cannot make it).</summary>
    public const string DeviceName = "udrlocal0";

    /// <summary>The device's MAC: locally administered, "udr" in its middle bytes.</summary>
    public static readonly MacAddress DeviceMac = new(0x02_75_64_72_00_01);

    /// <summary>udr's side of the device: the source MAC of what it writes (the engine's local link).</summary>
    public static readonly MacAddress UdrMac = new(0x02_75_64_72_00_00);

    private readonly Lock _gate = new();
    private LocalStackDevice? _device;
    private bool _disposed;
    private long _failed;
    private int _lastErrno;

    /// <summary>
    /// Frames the kernel refused (or that came before the device existed), counted with the workers' transmit errors;
    /// a successful write counts nothing here (the engine counted it as delivered-locally, per worker).
    /// </summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>The errno of the last refused write (0: none).</summary>
    public int LastErrno => Volatile.Read(ref _lastErrno);

    /// <summary>
    /// Makes the device unless it exists. Control side only (the resolver's thread). False, with
    /// <paramref name="problem"/>, when it cannot be made; <paramref name="warning"/> is what was made but not fully.
    /// </summary>
    public bool Ensure(out string? problem, out string? warning)
    {
        problem = null;
        warning = null;
        lock (_gate)
        {
            if (_device is not null)
            {
                return true;
            }
            if (_disposed)
            {
                problem = "udr is stopping";
                return false;
            }
            try
            {
                Volatile.Write(ref _device, LocalStackDevice.Create(DeviceName, DeviceMac, out warning));
                return true;
            }
            catch (HostException e)
            {
                problem = e.Message;
                return false;
            }
        }
    }

    /// <summary>
    /// Writes what the engine made of a frame into the local stack: without its 802.1Q tag (the device is no trunk),
    /// with the checksum state and GSO in the virtio_net_hdr. Any worker thread.
    /// </summary>
    public void Deliver(ref FrameBuffer packet)
    {
        LocalStackDevice? device = Volatile.Read(ref _device);
        ReadOnlySpan<byte> frame = packet.Frame;
        if (device is null || frame.Length < EthernetFrame.HeaderLength)
        {
            Interlocked.Increment(ref _failed);
            return;
        }
        bool tagged = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == EtherTypes.Vlan && frame.Length >= EthernetFrame.HeaderLength + EthernetFrame.VlanTagLength;
        ReadOnlySpan<byte> rest = tagged ? frame[(12 + EthernetFrame.VlanTagLength)..] : frame[12..];
        VirtioNetHeader header = OffloadPolicy.LocalDeliveryHeader(rest[2..], packet.Flags);
        if (!device.Write(header, frame[..12], rest, out int errno))
        {
            Volatile.Write(ref _lastErrno, errno);
            Interlocked.Increment(ref _failed);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _device?.Dispose();
            Volatile.Write(ref _device, null);
        }
    }
}
