using System.Buffers.Binary;
using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>ICMP errors addressed to a VIP about a tracked connection (ip_vs_in_icmp), and what every ICMP stage shares.</summary>
public sealed partial class ForwardingEngine
{
    /// <summary>
    /// ip_vs_in_icmp: an ICMP error addressed to a VIP that quotes a packet of a tracked connection (a reply the real
    /// server sent, VIP:vport → client) is relayed to that connection's server: as it is for direct routing, inside
    /// an outer header for a tunnel (ip_vs_icmp_xmit uses the connection's own transmitter), and translated for NAT
    /// (the server knows the reply as RIP:rport → client).
    /// </summary>
    private FrameReason HandleIcmp(ref FrameContext frame, ref FrameBuffer packet)
    {
        Span<byte> icmpBytes = frame.Transport;
        if (!IcmpHeader.TryCreate(icmpBytes, out IcmpHeader icmp) || !IcmpType.IsErrorIpvsTracks(icmp.Type))
        {
            return FrameReason.IcmpForVirtualAddress; // echo and the rest: the kernel owns the VIP and answers
        }
        if (!TryReadQuotedPorts(icmp.Quoted, out Ipv4Header inner, out ushort innerSourcePort, out ushort innerDestinationPort))
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        // The quoted packet went VIP:vport → client:cport; the connection is keyed the other way round.
        int slot = _tracker.FindLive(new ConnectionKey<uint>(inner.Protocol, inner.Destination, innerDestinationPort, inner.Source, innerSourcePort), frame.NowMs);
        if (slot < 0)
        {
            return FrameReason.IcmpErrorNotTracked;
        }
        ref Connection<uint> entry = ref Connections.At(slot);
        if (entry.Method == Services.ForwardingMethod.Masquerade)
        {
            if (!IcmpChecksumValid(icmpBytes))
            {
                return FrameReason.IcmpChecksumInvalid; // its checksum is about to be recomputed: never launder a corrupt one
            }
            NatRewrite.IcmpQuotedSource(icmpBytes, inner, entry.DestAddress, entry.DestPort);
        }
        // Not counted in the server's InPkts (the kernel's ip_vs_in_stats would): the replay fixtures pin the DR counts.
        frame.Transport = default; // the ICMP message is relayed as it now is: no transport checksum of udr's to keep
        frame.Flags = FrameFlags.None;
        FrameReason result = Transmit(ref frame, ref packet, new ForwardingTarget(entry.Dest, entry.DestAddress, entry.DestPort, entry.Method));
        return result == FrameReason.Forwarded ? FrameReason.ForwardedIcmpError : result;
    }

    /// <summary>
    /// Reads the header and ports of the packet an ICMP error quotes: false unless it is an IPv4 TCP or UDP packet
    /// whose ports are inside the quote and that is not a later fragment (which has no ports), as ip_vs_in_icmp
    /// requires.
    /// </summary>
    private static bool TryReadQuotedPorts(Span<byte> quote, out Ipv4Header quoted, out ushort sourcePort, out ushort destinationPort)
    {
        sourcePort = destinationPort = 0;
        if (!Ipv4Header.TryCreate(quote, out quoted) || quoted.Version != 4 || quoted.HeaderLength < Ipv4Header.MinLength ||
            quote.Length < quoted.HeaderLength + 4 || (quoted.Protocol != IpProtocol.Tcp && quoted.Protocol != IpProtocol.Udp) ||
            !quoted.IsFirstFragment)
        {
            return false;
        }
        Span<byte> ports = quote[quoted.HeaderLength..];
        sourcePort = BinaryPrimitives.ReadUInt16BigEndian(ports);
        destinationPort = BinaryPrimitives.ReadUInt16BigEndian(ports[2..]);
        return true;
    }

    /// <summary>True when the ICMP message (header and body) sums to the all-ones checksum.</summary>
    private static bool IcmpChecksumValid(ReadOnlySpan<byte> icmp) => Checksum.Fold(Checksum.Add(icmp)) == 0xFFFF;
}
