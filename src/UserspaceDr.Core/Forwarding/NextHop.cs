using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// How udr reaches one address (a real server), as the kernel's routing table and neighbour resolution say: the
/// link it leaves by, the MAC it is sent to (the server's own, or its gateway's), the balancer's source address on
/// that route (the outer source of an IP-in-IP packet), and the path MTU (the route's, else the link's).
/// </summary>
public readonly record struct NextHop(MacAddress Mac, byte Link = 0, uint SourceAddress = 0, int Mtu = EngineLink.DefaultMtu);
