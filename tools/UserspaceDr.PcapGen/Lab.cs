using System.Net;
using System.Net.NetworkInformation;

namespace UserspaceDr.PcapGen;

/// <summary>
/// The lab every fixture lives in: one L2 segment, addresses from 198.18.0.0/15 only (RFC 2544 benchmarking space).
/// The same names and addresses as the forwarding tests (tests/UserspaceDr.Tests/Forwarding/Frames.cs).
/// </summary>
internal static class Lab
{
    public static readonly PhysicalAddress ClientMac = Mac("02:00:00:00:00:01");
    public static readonly PhysicalAddress BalancerMac = Mac("02:00:00:00:00:02");
    public static readonly PhysicalAddress Client2Mac = Mac("02:00:00:00:00:03");
    public static readonly PhysicalAddress OtherHostMac = Mac("02:00:00:00:00:99");
    public static readonly PhysicalAddress RouterMac = Mac("02:00:00:00:00:fe");
    public static readonly PhysicalAddress BroadcastMac = Mac("ff:ff:ff:ff:ff:ff");

    public static readonly IPAddress Client = IPAddress.Parse("198.18.0.1");
    public static readonly IPAddress Client2 = IPAddress.Parse("198.18.0.2");
    public static readonly IPAddress Vip = IPAddress.Parse("198.18.0.100");
    public static readonly IPAddress NotVip = IPAddress.Parse("198.18.0.200");
    public static readonly IPAddress Router = IPAddress.Parse("198.18.0.254");

    public static readonly RealServer Rs1 = new("rs1", IPAddress.Parse("198.18.0.11"), Mac("02:00:00:00:00:11"));
    public static readonly RealServer Rs2 = new("rs2", IPAddress.Parse("198.18.0.12"), Mac("02:00:00:00:00:12"));

    /// <summary>The neighbours every IPv4 fixture is replayed with (--neighbor IP=MAC).</summary>
    public static readonly RealServer[] Neighbors = [Rs1, Rs2];

    // IPv6 (2001:2::/48, RFC 5180's benchmarking range): the same hosts, the same MACs.
    public static readonly IPAddress Client6 = IPAddress.Parse("2001:2::1");
    public static readonly IPAddress Vip6 = IPAddress.Parse("2001:2::100");
    public static readonly IPAddress NotVip6 = IPAddress.Parse("2001:2::200");
    public static readonly IPAddress Router6 = IPAddress.Parse("2001:2::fe");
    public static readonly RealServer Rs1v6 = new("rs1", IPAddress.Parse("2001:2::11"), Rs1.Mac);
    public static readonly RealServer Rs2v6 = new("rs2", IPAddress.Parse("2001:2::12"), Rs2.Mac);

    /// <summary>The neighbours every IPv6 fixture is replayed with.</summary>
    public static readonly RealServer[] Neighbors6 = [Rs1v6, Rs2v6];

    /// <summary>2024-01-01T00:00:00Z: every fixture's first frame.</summary>
    public const long EpochMicroseconds = 1_704_067_200L * 1_000_000;

    public static PhysicalAddress Mac(string text) => PhysicalAddress.Parse(text.Replace(':', '-'));

    /// <summary>aa:bb:cc:dd:ee:ff, as udr's --local-mac and --neighbor take it.</summary>
    public static string Format(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
}

/// <summary>A real server: its name in the docs, its address (RIP) and MAC.</summary>
internal sealed record RealServer(string Name, IPAddress Address, PhysicalAddress Mac)
{
    public override string ToString() => $"{Name} ({Address})";
}

/// <summary>SplitMix64: a fixed, documented generator, so payloads are the same on every run and every .NET version.</summary>
internal sealed class SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public byte[] Bytes(int count)
    {
        byte[] bytes = new byte[count];
        for (int i = 0; i < count; i++)
        {
            bytes[i] = (byte)Next();
        }
        return bytes;
    }

    public uint NextUInt32() => (uint)(Next() >> 32);
}
