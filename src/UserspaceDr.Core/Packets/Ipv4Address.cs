using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace UserspaceDr.Core.Packets;

/// <summary>IPv4 addresses as host-order uint (the value ntohl() gives), the form the kernel's schedulers hash.</summary>
public static class Ipv4Address
{
    /// <summary>Parses strict dotted-quad notation (four decimal octets, nothing else).</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out uint address)
    {
        address = 0;
        int octets = 0;
        foreach (Range range in text.Split('.'))
        {
            ReadOnlySpan<char> part = text[range];
            if (octets == 4 || part.Length is < 1 or > 3 || !IsDigits(part) ||
                !uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out uint octet) || octet > 255)
            {
                return false;
            }
            address = (address << 8) | octet;
            octets++;
        }
        return octets == 4;
    }

    /// <summary>Parses strict dotted-quad notation; throws <see cref="FormatException"/> for anything else (trusted text: tests, constants).</summary>
    public static uint Parse(string text) =>
        TryParse(text, out uint address) ? address : throw new FormatException($"'{text}' is not a dotted-quad IPv4 address");

    private static bool IsDigits(ReadOnlySpan<char> part)
    {
        foreach (char c in part)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>An IPv4 <see cref="IPAddress"/> as host order; <see cref="ArgumentException"/> for another family.</summary>
    public static uint FromIPAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        }
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    public static IPAddress ToIPAddress(uint address)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
        return new IPAddress(bytes);
    }

    public static string Format(uint address) => string.Create(CultureInfo.InvariantCulture,
        $"{address >> 24}.{(address >> 16) & 0xFF}.{(address >> 8) & 0xFF}.{address & 0xFF}");
}
