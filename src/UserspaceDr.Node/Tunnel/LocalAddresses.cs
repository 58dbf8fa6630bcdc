using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Node.Tunnel;

/// <summary>This node's own addresses, the outer destinations the endpoint accepts (VIPs are excluded by the decapsulator).</summary>
public static class LocalAddresses
{
    /// <summary>Every IPv4 and IPv6 address of every interface except loopback ones (getifaddrs, no process started).</summary>
    public static AddressSet Read()
    {
        var addresses = new List<InetAddress>();
        try
        {
            foreach (NetworkInterface networkInterface in NetworkInterface.GetAllNetworkInterfaces())
            {
                foreach (UnicastIPAddressInformation unicast in networkInterface.GetIPProperties().UnicastAddresses)
                {
                    if (unicast.Address.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6 &&
                        !IPAddress.IsLoopback(unicast.Address))
                    {
                        addresses.Add(InetAddress.FromIPAddress(unicast.Address));
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
