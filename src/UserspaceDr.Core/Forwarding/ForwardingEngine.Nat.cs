using UserspaceDr.Core.Connections;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;

namespace UserspaceDr.Core.Forwarding;

/// <summary>The NAT reply direction: real server → balancer → client (ip_vs_out).</summary>
public sealed partial class ForwardingEngine
{
    /// <summary>
    /// Indexes a new NAT connection by the tuple its replies will carry (RIP:rport → client:cport). If another
    /// connection already owns that tuple (two VIPs mapping one client port to the same server port), the first
    /// keeps it, as ip_vs_conn_out_get finds the first match.
    /// </summary>
    private static void InsertReplyLink(ConnectionTable table, in Connection connection)
    {
        var key = new ConnectionKey(connection.Protocol, connection.ClientAddress, connection.ClientPort, connection.DestAddress, connection.DestPort, ReplyLink: true);
        if (table.Find(key) >= 0)
        {
            return;
        }
        int slot = table.TryInsert(key);
        if (slot < 0)
        {
            return; // cannot happen: the caller reserved room for it
        }
        ref Connection link = ref table.At(slot);
        link.DestAddress = connection.VirtualAddress;
        link.DestPort = connection.VirtualPort;
        link.Method = ForwardingMethod.Masquerade;
        link.ExpiresAtMs = long.MaxValue; // goes with its connection, never on its own
    }

    /// <summary>
    /// A frame not addressed to a VIP: if it is a reply of a tracked NAT connection, SNAT it to VIP:vport and send it
    /// to the client's MAC; otherwise it is not udr's (the kernel's copy goes its own way).
    /// </summary>
    private FrameReason HandlePossibleNatReply(ref FrameBuffer packet, EthernetFrame ethernet, Ipv4Header ip, Span<byte> transport, FrameFlags flags, long nowMs)
    {
        byte protocol = ip.Protocol;
        if ((protocol != IpProtocol.Tcp && protocol != IpProtocol.Udp) || (ip.IsFragment && !ip.IsFirstFragment))
        {
            return FrameReason.NotForVirtualAddress;
        }
        if (!TryReadPorts(protocol, transport, out ushort serverPort, out ushort clientPort, out byte tcpFlags))
        {
            return FrameReason.NotForVirtualAddress;
        }

        ConnectionTable table = Connections;
        int linkSlot = table.Find(new ConnectionKey(protocol, ip.Destination, clientPort, ip.Source, serverPort, ReplyLink: true));
        if (linkSlot < 0)
        {
            return FrameReason.NotForVirtualAddress;
        }
        uint vip = table.At(linkSlot).DestAddress;
        ushort virtualPort = table.At(linkSlot).DestPort;
        int slot = FindLive(new ConnectionKey(protocol, ip.Destination, clientPort, vip, virtualPort), nowMs);
        if (slot < 0)
        {
            return FrameReason.NotForVirtualAddress; // expired just now (its link went with it)
        }
        if (!ip.HeaderChecksumValid)
        {
            return FrameReason.IpChecksumInvalid;
        }
        if (ip.TimeToLive <= 1)
        {
            return FrameReason.ReplyTtlExpired;
        }

        ref Connection entry = ref table.At(slot);
        if (protocol == IpProtocol.Tcp)
        {
            AdvanceTcpState(ref entry, tcpFlags, reply: true);
        }
        entry.ExpiresAtMs = nowMs + (TimeoutOf(entry) * 1000L);
        if (entry.Dest is not null)
        {
            ref TrafficCounters traffic = ref Counters.For(entry.Dest);
            traffic.OutPackets++;
            traffic.OutBytes += ip.TotalLength;
        }
        FinishChecksumIfNeeded(ip, transport, ref flags);
        NatRewrite.Source(ip, transport, vip, virtualPort, (flags & FrameFlags.ChecksumPartial) != 0);
        ip.DecrementTimeToLive();
        byte link = ClientHop.Link(entry.ClientMac);
        if (link >= _links.Length)
        {
            return FrameReason.LinkUnknown;
        }
        ethernet.Destination = ClientHop.Mac(entry.ClientMac);
        ethernet.Source = _links[link].Mac;
        packet.Link = link;
        packet.Flags = flags;
        return FrameReason.ForwardedReply;
    }
}
