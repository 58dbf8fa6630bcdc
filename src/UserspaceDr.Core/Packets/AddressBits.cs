using System.Runtime.CompilerServices;

namespace UserspaceDr.Core.Packets;

/// <summary>
/// What the data plane does with an address of either family, for code written once over both: the address type is
/// <see cref="uint"/> for IPv4 (host order) and <see cref="UInt128"/> for IPv6 (most significant bit first). Every
/// method tests the type it was given, a test the JIT removes when it compiles the code for each family, so the
/// IPv4 path costs what it did before there was a second family.
/// </summary>
public static class AddressBits
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsIPv4<TAddress>() where TAddress : unmanaged => typeof(TAddress) == typeof(uint);

    /// <summary>The family an address type stands for.</summary>
    public static IpFamily Family<TAddress>() where TAddress : unmanaged => IsIPv4<TAddress>() ? IpFamily.IPv4 : IpFamily.IPv6;

    /// <summary>
    /// The address as 64 bits for a hash: IPv4 as itself; IPv6 with its halves mixed, so that addresses that differ
    /// only in the host half (one /64, the usual client subnet) still spread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong HashBits<TAddress>(TAddress address) where TAddress : unmanaged
    {
        if (typeof(TAddress) == typeof(uint))
        {
            return Unsafe.As<TAddress, uint>(ref address);
        }
        UInt128 value = Unsafe.As<TAddress, UInt128>(ref address);
        return ((ulong)(value >> 64) * 0x9E3779B97F4A7C15UL) ^ (ulong)value;
    }

    /// <summary>The scheduler's view (<see cref="InetAddress.Fold"/>): IPv4 itself, IPv6 the XOR of its four words.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Fold<TAddress>(TAddress address) where TAddress : unmanaged
    {
        if (typeof(TAddress) == typeof(uint))
        {
            return Unsafe.As<TAddress, uint>(ref address);
        }
        UInt128 value = Unsafe.As<TAddress, UInt128>(ref address);
        ulong folded = (ulong)(value >> 64) ^ (ulong)value;
        return (uint)(folded >> 32) ^ (uint)folded;
    }

    /// <summary>A persistence template's client key: IPv4 ANDed with the netmask, IPv6 cut to a prefix of that many bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TAddress Mask<TAddress>(TAddress address, uint netmaskOrPrefixLength) where TAddress : unmanaged
    {
        if (typeof(TAddress) == typeof(uint))
        {
            uint masked = Unsafe.As<TAddress, uint>(ref address) & netmaskOrPrefixLength;
            return Unsafe.As<uint, TAddress>(ref masked);
        }
        int prefix = (int)Math.Min(netmaskOrPrefixLength, 128u);
        UInt128 cut = prefix == 0 ? UInt128.Zero : Unsafe.As<TAddress, UInt128>(ref address) & (UInt128.MaxValue << (128 - prefix));
        return Unsafe.As<UInt128, TAddress>(ref cut);
    }

    public static InetAddress ToInet<TAddress>(TAddress address) where TAddress : unmanaged =>
        typeof(TAddress) == typeof(uint)
            ? InetAddress.FromIPv4(Unsafe.As<TAddress, uint>(ref address))
            : InetAddress.FromIPv6(Unsafe.As<TAddress, UInt128>(ref address));

    /// <summary>The address in this type's family; false when <paramref name="address"/> is of the other family.</summary>
    public static bool TryFrom<TAddress>(InetAddress address, out TAddress value) where TAddress : unmanaged
    {
        value = default;
        if (address.Family != Family<TAddress>())
        {
            return false;
        }
        if (typeof(TAddress) == typeof(uint))
        {
            uint v4 = address.IPv4;
            value = Unsafe.As<uint, TAddress>(ref v4);
        }
        else
        {
            UInt128 v6 = address.IPv6;
            value = Unsafe.As<UInt128, TAddress>(ref v6);
        }
        return true;
    }
    /// <summary>The address as a 128-bit number: IPv4 in the low 32 bits, IPv6 as itself.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static UInt128 Widen<TAddress>(TAddress address) where TAddress : unmanaged =>
        typeof(TAddress) == typeof(uint) ? Unsafe.As<TAddress, uint>(ref address) : Unsafe.As<TAddress, UInt128>(ref address);

    /// <summary>
    /// A firewall mark in the place of a virtual address, as a firewall-mark service's persistence template holds it
    /// (ip_vs_sched_persist: <c>fwmark.ip = htonl(svc->fwmark)</c>): the mark's four bytes first, in network order.
    /// </summary>
    public static TAddress FromMark<TAddress>(uint mark) where TAddress : unmanaged
    {
        if (typeof(TAddress) == typeof(uint))
        {
            return Unsafe.As<uint, TAddress>(ref mark);
        }
        UInt128 value = (UInt128)mark << 96;
        return Unsafe.As<UInt128, TAddress>(ref value);
    }

    /// <summary>The firewall mark a persistence template holds in the place of its virtual address (<see cref="FromMark{TAddress}"/>).</summary>
    public static uint ToMark<TAddress>(TAddress address) where TAddress : unmanaged =>
        typeof(TAddress) == typeof(uint) ? Unsafe.As<TAddress, uint>(ref address) : (uint)(Unsafe.As<TAddress, UInt128>(ref address) >> 96);
}
