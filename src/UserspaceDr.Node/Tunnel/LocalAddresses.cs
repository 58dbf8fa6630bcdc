using System.Buffers.Binary;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace UserspaceDr.Node.Tunnel;

/// <summary>This node's own IPv4 addresses, the outer destinations the endpoint accepts (VIPs are excluded by the decapsulator).</summary>
public static class LocalAddresses
{
    /// <summary>Every IPv4 address of every interface except 127.0.0.0/8 (getifaddrs, no process started).</summary>
    public static AddressSet Read()
    {
        var addresses = new List<uint>();
        Span<byte> bytes = stackalloc byte[4];
        try
        {
            foreach (NetworkInterface networkInterface in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (UnicastIPAddressInformation unicast in networkInterface.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.AddressFamily != AddressFamily.InterNetwork)
                    {
                        continue;
                    }
                    if (unicast.Address.TryWriteBytes(bytes, out int written) && written == 4)
                    {
                        uint address = BinaryPrimitives.ReadUInt32BigEndian(bytes);
                        if (address >> 24 != 127)
                        {
                            addresses.Add(address);
                        }
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
            // Keep going with what was read: a packet for an address missed now is counted, and asked about again later.
        }
        return new AddressSet(addresses);
    }
}
