using System.Net;
using PacketDotNet;

namespace UserspaceDr.PcapGen;

/// <summary>The client side of one TCP connection to the VIP: keeps sequence numbers so the segments read as a real flow.</summary>
internal sealed class TcpFlow(IPAddress client, int clientPort, int virtualPort, uint initialSequence, uint serverSequence)
{
    private uint _sequence = initialSequence;
    private int _id = (int)(initialSequence & 0x7FFF);

    public IPAddress Client { get; } = client;
    public int ClientPort { get; } = clientPort;
    public int VirtualPort { get; } = virtualPort;

    /// <summary>MSS 1460, SACK permitted, window scale 7, as a Linux SYN carries (without timestamps), padded to 12 bytes.</summary>
    public static readonly byte[] SynOptions = [0x02, 0x04, 0x05, 0xB4, 0x04, 0x02, 0x01, 0x03, 0x03, 0x07, 0x01, 0x01];

    public string Name => $"{Client}:{ClientPort} → VIP:{VirtualPort}";

    public IPv4Packet Packet(TcpFlagSet flags, byte[]? payload = null, int ttl = 64)
    {
        IPv4Packet ip = Build.TcpPacket(Client, ClientPort, Lab.Vip, VirtualPort, flags, _sequence, serverSequence + 1, payload, ttl, _id++,
            flags.Syn ? SynOptions : null);
        _sequence += (uint)(payload?.Length ?? 0) + (flags.Syn || flags.Fin ? 1u : 0u);
        return ip;
    }

    public byte[] Frame(TcpFlagSet flags, byte[]? payload = null, int ttl = 64, ushort? vlanTci = null) =>
        Build.Frame(Packet(flags, payload, ttl), Client.Equals(Lab.Client2) ? Lab.Client2Mac : Lab.ClientMac, vlanTci: vlanTci);
}
