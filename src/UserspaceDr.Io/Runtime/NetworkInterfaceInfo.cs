using System.Net.NetworkInformation;
using System.Net.Sockets;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Io.Runtime;

/// <summary>What udr needs to know about the interface it serves: MAC, MTU, and its IPv4 addresses with prefixes.</summary>
public sealed record NetworkInterfaceInfo(string Name, MacAddress Mac, int Mtu, bool IsUp, IReadOnlyList<(uint Address, int PrefixLength)> Addresses)
{
    /// <summary>Reads the interface from the system; null when there is none of that name.</summary>
    public static NetworkInterfaceInfo? Find(string name)
    {
        NetworkInterface? nic = NetworkInterface.GetAllNetworkInterfaces().FirstOrDefault(n => n.Name == name);
        if (nic is null)
        {
            return null;
        }
        byte[] mac = nic.GetPhysicalAddress().GetAddressBytes();
        IPInterfaceProperties properties = nic.GetIPProperties();
        var addresses = properties.UnicastAddresses
            .Where(a => a.Address.AddressFamily == AddressFamily.InterNetwork)
            .Select(a => (Ipv4Address.TryParse(a.Address.ToString(), out uint v) ? v : 0u, a.PrefixLength))
            .ToList();
        int mtu = properties.GetIPv4Properties()?.Mtu ?? 1500;
        return new NetworkInterfaceInfo(name, mac.Length == 6 ? MacAddress.Read(mac) : MacAddress.Zero, mtu,
            nic.OperationalStatus is OperationalStatus.Up or OperationalStatus.Unknown, addresses);
    }

    /// <summary>The address to speak ARP from towards <paramref name="neighbor"/>: one on the same subnet, else the first non-/32.</summary>
    public uint? SourceAddressFor(uint neighbor)
    {
        foreach ((uint address, int prefix) in Addresses)
        {
            uint mask = prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
            if (prefix < 32 && (address & mask) == (neighbor & mask))
            {
                return address;
            }
        }
        foreach ((uint address, int prefix) in Addresses)
        {
            if (prefix < 32)
            {
                return address;
            }
        }
        return null;
    }

    /// <summary>True when <paramref name="address"/> is on a subnet of this interface (not counting /32s).</summary>
    public bool IsOnLink(uint address) => Addresses.Any(a =>
        a.PrefixLength < 32 && (a.Address & (a.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - a.PrefixLength))) ==
        (address & (a.PrefixLength == 0 ? 0 : uint.MaxValue << (32 - a.PrefixLength))));
}
