using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using UserspaceDr.Core.Packets;
using System.Net.Sockets;

namespace UserspaceDr.Admin;

/// <summary>
/// The C library conversions ipvsadm leans on (strtol, atoi, inet_aton, inet_pton, getservbyname), reproduced
/// so that what ipvsadm accepts, udr accepts, and what it rejects, udr rejects. No DNS, no /etc/services:
/// host names are refused and only a fixed list of well-known service names is known.
/// </summary>
internal static class IpvsadmSyntax
{
    // .NET's parser also takes brackets, ports, zones and prefixes, which inet_pton refuses.

    /// <summary>
    /// ipvsadm's string_to_number: strtol base 10 over the whole string (leading white space and a sign are
    /// allowed, trailing characters are not), then a range check.
    /// </summary>
    public static bool TryStringToNumber(string text, long min, long max, out long value)
    {
        value = 0;
        int i = 0;
        while (i < text.Length && IsCSpace(text[i]))
        {
            i++;
        }
        bool negative = false;
        if (i < text.Length && text[i] is '+' or '-')
        {
            negative = text[i] == '-';
            i++;
        }
        int digitsStart = i;
        long magnitude = 0;
        for (; i < text.Length && text[i] is >= '0' and <= '9'; i++)
        {
            if (magnitude > (long.MaxValue - 9) / 10)
            {
                return false; // strtol reports ERANGE, which string_to_number rejects
            }
            magnitude = (magnitude * 10) + (text[i] - '0');
        }
        if (i == digitsStart || i != text.Length)
        {
            return false;
        }
        value = negative ? -magnitude : magnitude;
        return value >= min && value <= max;
    }

    /// <summary>atoi: leading white space, optional sign, then as many digits as there are; 0 when none.</summary>
    public static long Atoi(string text)
    {
        int i = 0;
        while (i < text.Length && IsCSpace(text[i]))
        {
            i++;
        }
        bool negative = false;
        if (i < text.Length && text[i] is '+' or '-')
        {
            negative = text[i] == '-';
            i++;
        }
        long value = 0;
        for (; i < text.Length && text[i] is >= '0' and <= '9' && value < int.MaxValue; i++)
        {
            value = (value * 10) + (text[i] - '0');
        }
        return negative ? -value : value;
    }

    /// <summary>
    /// glibc inet_aton: one to four parts (a, a.b, a.b.c, a.b.c.d), each decimal, octal (leading 0) or hex
    /// (0x); the last part fills the remaining bytes. Trailing white space ends the address. Host order result.
    /// </summary>
    public static bool TryInetAton(string text, out uint address)
    {
        address = 0;
        Span<ulong> parts = stackalloc ulong[4];
        int partCount = 0;
        int i = 0;
        ulong value;
        while (true)
        {
            if (i >= text.Length || text[i] is < '0' or > '9')
            {
                return false;
            }
            value = 0;
            int numberBase = 10;
            if (text[i] == '0')
            {
                i++;
                if (i < text.Length && text[i] is 'x' or 'X')
                {
                    numberBase = 16;
                    i++;
                }
                else
                {
                    numberBase = 8;
                }
            }
            for (; i < text.Length; i++)
            {
                char c = text[i];
                int digit;
                if (c is >= '0' and <= '9')
                {
                    if (numberBase == 8 && c is '8' or '9')
                    {
                        return false;
                    }
                    digit = c - '0';
                }
                else if (numberBase == 16 && char.IsAsciiHexDigit(c))
                {
                    digit = char.ToLowerInvariant(c) - 'a' + 10;
                }
                else
                {
                    break;
                }
                value = (value * (ulong)numberBase) + (ulong)digit;
                if (value > 0xFFFF_FFFF)
                {
                    return false;
                }
            }
            if (i < text.Length && text[i] == '.')
            {
                if (partCount == 3 || value > 0xFF)
                {
                    return false;
                }
                parts[partCount++] = value;
                i++;
                continue;
            }
            break;
        }
        if (i < text.Length && !IsCSpace(text[i]))
        {
            return false;
        }
        // The last part covers every byte the earlier parts did not.
        ulong limit = partCount switch { 0 => 0xFFFF_FFFF, 1 => 0xFF_FFFF, 2 => 0xFFFF, _ => 0xFF };
        if (value > limit)
        {
            return false;
        }
        for (int p = 0; p < partCount; p++)
        {
            value |= parts[p] << (24 - (8 * p));
        }
        address = (uint)value;
        return true;
    }

    /// <summary>inet_pton(AF_INET6): plain IPv6 text only (no brackets, port, zone or prefix).</summary>
    public static bool TryParseIpv6(string text, out IPAddress address)
    {
        bool parsed = InetAddress.TryParse(text, out InetAddress value) && value.IsIPv6;
        address = parsed ? value.ToIPAddress() : IPAddress.IPv6None;
        return parsed;
    }

    public static IPAddress FromHostOrder(uint address) => Ipv4Address.ToIPAddress(address);

    public static uint ToHostOrder(IPAddress address) => Ipv4Address.FromIPAddress(address);

    public static string FormatIpv6(IPAddress address) => address.ToString();

    /// <summary>
    /// getservbyname for the handful of names operators actually type; ipvsadm asks /etc/services, which udr
    /// does not read. -1 when unknown for the protocol.
    /// </summary>
    public static int ServiceToPort(string name, VirtualServiceKind kind)
    {
        (int Port, bool Tcp, bool Udp) entry = name switch
        {
            "ftp" => (21, true, false),
            "ssh" => (22, true, false),
            "telnet" => (23, true, false),
            "smtp" => (25, true, false),
            "domain" => (53, true, true),
            "bootps" => (67, false, true),
            "tftp" => (69, false, true),
            "http" or "www" => (80, true, false),
            "pop3" => (110, true, false),
            "ntp" => (123, false, true),
            "imap" or "imap2" => (143, true, false),
            "snmp" => (161, true, true),
            "ldap" => (389, true, false),
            "https" => (443, true, false),
            "syslog" => (514, false, true),
            "submission" => (587, true, false),
            "ldaps" => (636, true, false),
            "imaps" => (993, true, false),
            "pop3s" => (995, true, false),
            "mysql" => (3306, true, false),
            "postgresql" => (5432, true, false),
            "http-alt" or "webcache" => (8080, true, false),
            _ => (-1, false, false),
        };
        bool known = kind switch
        {
            VirtualServiceKind.Udp => entry.Udp,
            VirtualServiceKind.Sctp => false,
            _ => entry.Tcp, // fwmark services carry TCP as their nominal protocol in ipvsadm
        };
        return known ? entry.Port : -1;
    }

    public static string Format(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>C isspace in the "C" locale.</summary>
    private static bool IsCSpace(char c) => c is ' ' or '\t' or '\n' or '\v' or '\f' or '\r';
}
