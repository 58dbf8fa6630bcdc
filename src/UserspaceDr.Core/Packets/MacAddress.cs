using System.Buffers.Binary;
using System.Globalization;

namespace UserspaceDr.Core.Packets;

/// <summary>A 48-bit Ethernet address held in the low bits of a ulong (first octet most significant).</summary>
public readonly record struct MacAddress(ulong Value)
{
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFF);
    public static readonly MacAddress Zero = new(0);

    public static MacAddress Read(ReadOnlySpan<byte> six) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(six) << 32) | BinaryPrimitives.ReadUInt32BigEndian(six[2..]));

    public void Write(Span<byte> six)
    {
        BinaryPrimitives.WriteUInt16BigEndian(six, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(six[2..], (uint)Value);
    }

    public static bool TryParse(string text, out MacAddress mac)
    {
        mac = Zero;
        string[] parts = text.Split(':', '-');
        if (parts.Length != 6)
        {
            return false;
        }
        ulong value = 0;
        foreach (string part in parts)
        {
            if (part.Length is < 1 or > 2 || !byte.TryParse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out byte octet))
            {
                return false;
            }
            value = (value << 8) | octet;
        }
        mac = new MacAddress(value);
        return true;
    }

    public override string ToString()
    {
        Span<byte> b = stackalloc byte[6];
        Write(b);
        return string.Create(CultureInfo.InvariantCulture, $"{b[0]:x2}:{b[1]:x2}:{b[2]:x2}:{b[3]:x2}:{b[4]:x2}:{b[5]:x2}");
    }
}
