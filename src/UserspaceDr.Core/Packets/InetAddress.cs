using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace UserspaceDr.Core.Packets;

/// <summary>The address family of an <see cref="InetAddress"/>; the values are Linux's AF_INET and AF_INET6, which ipvsadm sorts by.</summary>
public enum IpFamily : byte
{
    IPv4 = 2,
    IPv6 = 10,
}

/// <summary>
/// An IPv4 or IPv6 address as a value (the kernel's union nf_inet_addr together with its af): what services, real
/// servers, persistence masks, checkers, sync and metrics name. IPv4 is held as the host-order uint the IPv4 code
/// paths and schedulers use (<see cref="IPv4"/>); IPv6 as its 128 bits, most significant first. The family is part
/// of the value, so 198.18.0.1 and ::ffff:198.18.0.1 are different addresses, as they are to IPVS.
/// </summary>
public readonly struct InetAddress : IEquatable<InetAddress>, IComparable<InetAddress>, ISpanFormattable
{
    private static readonly SearchValues<char> NotInPlainIpv6 = SearchValues.Create("[]%/ \t");

    private readonly ulong _high;
    private readonly ulong _low;

    private InetAddress(IpFamily family, ulong high, ulong low)
    {
        Family = family;
        _high = high;
        _low = low;
    }

    public IpFamily Family { get; }

    public bool IsIPv4 => Family == IpFamily.IPv4;

    public bool IsIPv6 => Family == IpFamily.IPv6;

    /// <summary>The IPv4 address in host order; only meaningful when <see cref="IsIPv4"/>.</summary>
    public uint IPv4 => (uint)_low;

    /// <summary>The IPv6 address as one 128-bit number, most significant bit first; only meaningful when <see cref="IsIPv6"/>.</summary>
    public UInt128 IPv6 => new(_high, _low);

    /// <summary>The longest prefix the family allows: 32 or 128.</summary>
    public int MaxPrefixLength => IsIPv4 ? 32 : 128;

    public static InetAddress FromIPv4(uint hostOrder) => new(IpFamily.IPv4, 0, hostOrder);

    public static InetAddress FromIPv6(UInt128 value) => new(IpFamily.IPv6, (ulong)(value >> 64), (ulong)value);

    /// <summary>An IPv6 address from its 16 wire bytes.</summary>
    public static InetAddress FromIPv6(ReadOnlySpan<byte> bytes) =>
        new(IpFamily.IPv6, BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes[8..]));

    public static InetAddress FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            return FromIPv4(Ipv4Address.FromIPAddress(address));
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            throw new ArgumentException($"{address} is neither IPv4 nor IPv6", nameof(address));
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return FromIPv6(bytes);
    }

    public IPAddress ToIPAddress()
    {
        if (IsIPv4)
        {
            return Ipv4Address.ToIPAddress(IPv4);
        }
        Span<byte> bytes = stackalloc byte[16];
        WriteIPv6Bytes(bytes);
        return new IPAddress(bytes);
    }

    /// <summary>Writes an IPv6 address's 16 wire bytes.</summary>
    public void WriteIPv6Bytes(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
        BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
    }

    /// <summary>
    /// The address as four network-order 32-bit words read as host-order numbers (word 0 first); IPv4 is word 3 alone.
    /// What IPVS's schedulers fold (a[0]^a[1]^a[2]^a[3]).
    /// </summary>
    public uint Word(int index) => index switch
    {
        0 => (uint)(_high >> 32),
        1 => (uint)_high,
        2 => (uint)(_low >> 32),
        _ => (uint)_low,
    };

    /// <summary>
    /// The address IPVS's hashing schedulers use for it: IPv4 itself, IPv6 the XOR of its four words
    /// (ip_vs_sh_hashkey / ip_vs_mh_hashkey: <c>ntohl(a[0]^a[1]^a[2]^a[3])</c>).
    /// </summary>
    public uint Fold() => IsIPv4 ? IPv4 : (uint)(_high >> 32) ^ (uint)_high ^ (uint)(_low >> 32) ^ (uint)_low;

    /// <summary>
    /// The persistence template's client key (ip_vs_sched_persist): IPv4 ANDed with a netmask, IPv6 cut to a prefix of
    /// <paramref name="netmaskOrPrefixLength"/> bits (ipv6_addr_prefix). The one number means either, as in the kernel's
    /// ip_vs_service.netmask.
    /// </summary>
    public InetAddress Mask(uint netmaskOrPrefixLength)
    {
        if (IsIPv4)
        {
            return FromIPv4(IPv4 & netmaskOrPrefixLength);
        }
        int prefix = (int)Math.Min(netmaskOrPrefixLength, 128u);
        UInt128 mask = prefix == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - prefix);
        return FromIPv6(IPv6 & mask);
    }

    /// <summary>
    /// Parses the text inet_pton takes: an IPv4 dotted quad, or IPv6 (with an optional dotted-quad tail). No brackets,
    /// zone indexes or prefixes: those belong to the syntax around an address, which its caller reads.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<char> text, out InetAddress address)
    {
        address = default;
        if (text.IndexOf(':') < 0)
        {
            if (!Ipv4Address.TryParse(text, out uint v4))
            {
                return false;
            }
            address = FromIPv4(v4);
            return true;
        }
        if (text.IndexOfAny(NotInPlainIpv6) >= 0 || !IPAddress.TryParse(text, out IPAddress? parsed) ||
            parsed.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        address = FromIPAddress(parsed);
        return true;
    }

    /// <summary>Parses trusted text (tests, constants); <see cref="FormatException"/> for anything else.</summary>
    public static InetAddress Parse(string text) =>
        TryParse(text, out InetAddress address) ? address : throw new FormatException($"'{text}' is not an IPv4 or IPv6 address");

    public static implicit operator InetAddress(IPAddress address) => FromIPAddress(address);

    public bool Equals(InetAddress other) => _low == other._low && _high == other._high && Family == other.Family;

    public override bool Equals(object? obj) => obj is InetAddress other && Equals(other);

    public override int GetHashCode() => HashCode.Combine(Family, _high, _low);

    /// <summary>IPv4 before IPv6 (AF_INET before AF_INET6), then numerically.</summary>
    public int CompareTo(InetAddress other)
    {
        int result = Family.CompareTo(other.Family);
        if (result != 0)
        {
            return result;
        }
        result = _high.CompareTo(other._high);
        return result != 0 ? result : _low.CompareTo(other._low);
    }

    public static bool operator ==(InetAddress left, InetAddress right) => left.Equals(right);
    public static bool operator !=(InetAddress left, InetAddress right) => !left.Equals(right);
    public static bool operator <(InetAddress left, InetAddress right) => left.CompareTo(right) < 0;
    public static bool operator >(InetAddress left, InetAddress right) => left.CompareTo(right) > 0;
    public static bool operator <=(InetAddress left, InetAddress right) => left.CompareTo(right) <= 0;
    public static bool operator >=(InetAddress left, InetAddress right) => left.CompareTo(right) >= 0;

    /// <summary>The text glibc's inet_ntop writes (what ipvsadm and iproute2 print).</summary>
    public override string ToString() => IsIPv4 ? Ipv4Address.Format(IPv4) : FormatIPv6();

    /// <summary>"ADDRESS:PORT", an IPv6 address in brackets ("[2001:2::100]:80"), as ipvsadm and URLs write them.</summary>
    public string WithPort(int port) => IsIPv4
        ? string.Create(CultureInfo.InvariantCulture, $"{this}:{port}")
        : string.Create(CultureInfo.InvariantCulture, $"[{this}]:{port}");

    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        string text = ToString();
        charsWritten = 0;
        if (!text.TryCopyTo(destination))
        {
            return false;
        }
        charsWritten = text.Length;
        return true;
    }

    /// <summary>
    /// glibc's inet_ntop6: the first longest run of two or more zero words becomes "::", words in lowercase hex without
    /// leading zeros, and an IPv4-compatible address with a non-zero seventh word (::a.b.c.d) or an IPv4-mapped one
    /// (::ffff:a.b.c.d) ends in a dotted quad (current glibc prints ::2, not ::0.0.0.2).
    /// </summary>
    private string FormatIPv6()
    {
        Span<ushort> words = stackalloc ushort[8];
        for (int i = 0; i < 8; i++)
        {
            words[i] = (ushort)((i < 4 ? _high : _low) >> (48 - (16 * (i % 4))));
        }
        int bestBase = -1, bestLength = 0;
        for (int i = 0; i < 8;)
        {
            if (words[i] != 0)
            {
                i++;
                continue;
            }
            int start = i;
            while (i < 8 && words[i] == 0)
            {
                i++;
            }
            if (i - start > bestLength)
            {
                (bestBase, bestLength) = (start, i - start);
            }
        }
        if (bestLength < 2)
        {
            bestBase = -1;
        }

        var text = new System.Text.StringBuilder(46);
        for (int i = 0; i < 8; i++)
        {
            if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLength)
            {
                if (i == bestBase)
                {
                    text.Append(':');
                }
                continue;
            }
            if (i != 0)
            {
                text.Append(':');
            }
            if (i == 6 && bestBase == 0 && (bestLength == 6 || (bestLength == 5 && words[5] == 0xFFFF)))
            {
                text.Append(Ipv4Address.Format((uint)_low));
                return text.ToString();
            }
            text.Append(words[i].ToString("x", CultureInfo.InvariantCulture));
        }
        if (bestBase >= 0 && bestBase + bestLength == 8)
        {
            text.Append(':');
        }
        return text.ToString();
    }
}
