using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Linux;

namespace UserspaceDr.Io.Engine;

/// <summary>
/// The one rule set for offloads, whatever the backend: how a virtio_net_hdr becomes frame flags and back, when a GSO
/// super-frame is cut in software before the engine, and into what size. DESIGN: never emit a corrupt or oversize
/// frame; what a virtio_net_hdr can describe goes to the kernel to finish, what it cannot is cut first.
/// </summary>
public static class OffloadPolicy
{
    /// <summary>What a received virtio_net_hdr tells the engine: a checksum left partial, a GSO super-frame.</summary>
    public static FrameFlags ReceiveFlags(in VirtioNetHeader header)
    {
        // With a vnet header, NEEDS_CSUM frames go back out with it and the kernel finishes the checksum; the engine
        // only has to keep the pseudo-header seed in step when it rewrites addresses.
        FrameFlags flags = header.NeedsChecksum ? FrameFlags.ChecksumPartial : FrameFlags.None;
        return header.IsGso ? flags | FrameFlags.Gso : flags;
    }

    /// <summary>
    /// A frame a backend without virtio_net_hdr (libpcap) received: the checksum state is unknown, and a frame larger
    /// than the link allows (<see cref="IsSuperFrame"/>) is a GRO/GSO super-frame.
    /// </summary>
    public static FrameFlags ReceiveFlagsWithoutHeader(bool isSuperFrame) =>
        isSuperFrame ? FrameFlags.ChecksumUnknown | FrameFlags.Gso : FrameFlags.ChecksumUnknown;

    /// <summary>Longer than the link's MTU allows with its Ethernet header (and one 802.1Q tag, when it carries one).</summary>
    public static bool IsSuperFrame(ReadOnlySpan<byte> frame, int linkMtu)
    {
        int linkHeader = frame.Length > 13 && frame[12] == 0x81 && frame[13] == 0x00
            ? EthernetFrame.HeaderLength + EthernetFrame.VlanTagLength
            : EthernetFrame.HeaderLength;
        return frame.Length > linkMtu + linkHeader;
    }

    /// <summary>
    /// A super-frame is cut before the engine only when it may go to an IP-in-IP server: an encapsulated super-frame
    /// cannot be described by a virtio_net_hdr, so neither the kernel nor a later step could cut it.
    /// </summary>
    public static bool CutBeforeEngine(bool isSuperFrame, in FlowHint hint) => isSuperFrame && hint.MayBeTunnelled;

    /// <summary>
    /// How a super-frame for a tunnel is cut: into the segments its sender meant (gso_size, from the virtio_net_hdr) so
    /// that a path MTU the sender learned holds; where the receive path does not know it (libpcap), into segments that
    /// fit the narrowest tunnel server's path once encapsulated. Never wider than the ingress link. 0 when the frame
    /// cannot be cut (not TCP, malformed).
    /// </summary>
    public static int TunnelSegmentCount(ReadOnlySpan<byte> frame, int linkMtu, int gsoSize, EngineSnapshot snapshot, out int payloadPerSegment)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return gsoSize > 0
            ? TcpSegmentation.SegmentCount(frame, linkMtu, out payloadPerSegment, gsoSize)
            : TcpSegmentation.SegmentCount(frame, Math.Min(linkMtu, snapshot.SmallestTunnelPayloadMtu), out payloadPerSegment);
    }

    /// <summary>
    /// The virtio_net_hdr a frame enters the local stack with (<see cref="LocalDelivery"/>), from
    /// <paramref name="packet"/> (the IPv4 or IPv6 packet after the untagged Ethernet header) and what the engine left
    /// of its flags: a partial TCP or UDP checksum becomes NEEDS_CSUM with its offsets (the stack then trusts it, as it
    /// trusts its own), a GSO super-frame goes in whole (the stack takes packets larger than the MTU, as from GRO), and
    /// anything else carries no flags, so the stack checks its checksum itself.
    /// </summary>
    public static VirtioNetHeader LocalDeliveryHeader(ReadOnlySpan<byte> packet, FrameFlags flags)
    {
        if ((flags & FrameFlags.ChecksumPartial) == 0 || packet.Length < 1)
        {
            return default;
        }
        byte protocol;
        int transportOffset;
        if (packet[0] >> 4 == 4 && packet.Length >= Ipv4Header.MinLength)
        {
            protocol = packet[9];
            transportOffset = (packet[0] & 0x0F) * 4;
        }
        else if (packet[0] >> 4 == 6 && Ipv6ExtensionHeaders.Walk(packet, out Ipv6Transport transport) == Ipv6ChainEnd.Found)
        {
            protocol = transport.Protocol;
            transportOffset = transport.Offset;
        }
        else
        {
            return default;
        }
        ushort checksumField = protocol switch
        {
            IpProtocol.Tcp => 16,
            IpProtocol.Udp => 6,
            _ => 0,
        };
        return checksumField == 0 ? default : new VirtioNetHeader
        {
            Flags = VirtioNetHeader.FlagNeedsChecksum,
            ChecksumStart = (ushort)(EthernetFrame.HeaderLength + transportOffset),
            ChecksumOffset = checksumField,
        };
    }

    /// <summary>
    /// The virtio_net_hdr to send a processed frame with: the received one, its checksum offsets moved by the bytes the
    /// engine put in front (<paramref name="growth"/>: an outer IPv4 header), and NEEDS_CSUM cleared when nothing is
    /// left for the kernel to finish (a stale one would make the kernel sum over a finished checksum).
    /// </summary>
    public static VirtioNetHeader TransmitHeader(VirtioNetHeader received, FrameFlags flags, int growth)
    {
        if ((flags & FrameFlags.ChecksumPartial) == 0)
        {
            received.Flags &= unchecked((byte)~VirtioNetHeader.FlagNeedsChecksum);
            received.ChecksumStart = 0;
            received.ChecksumOffset = 0;
        }
        else
        {
            received.ChecksumStart = (ushort)(received.ChecksumStart + growth);
        }
        if (received.HeaderLength != 0)
        {
            received.HeaderLength = (ushort)(received.HeaderLength + growth);
        }
        return received;
    }
}
