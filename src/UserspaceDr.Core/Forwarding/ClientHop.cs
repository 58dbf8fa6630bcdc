using UserspaceDr.Core.Packets;

namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Where a NAT connection's replies go back to: the MAC the client's frames came from (the client, or the router in
/// front of it) and the link they arrived on, packed in one word of the connection entry (the entry stays 64 B).
/// </summary>
internal static class ClientHop
{
    private const int LinkShift = 48;
    private const ulong MacMask = (1UL << LinkShift) - 1;

    public static ulong Pack(MacAddress mac, byte link) => (mac.Value & MacMask) | ((ulong)link << LinkShift);

    public static MacAddress Mac(ulong packed) => new(packed & MacMask);

    public static byte Link(ulong packed) => (byte)(packed >> LinkShift);
}
