using System.Net;
using UserspaceDr.Core.Packets;

namespace UserspaceDr.Tests.Packets;

/// <summary>The family-neutral address value: text as glibc writes it, the kernel's folds and prefixes, ipvsadm's order.</summary>
public class InetAddressTests
{
    // Expected texts are what Python's socket.inet_ntop (glibc's inet_ntop) printed for the same addresses on Debian.
    [TestCase("2001:2::100", "2001:2::100")]
    [TestCase("2001:2:0:0:1:0:0:1", "2001:2::1:0:0:1")]
    [TestCase("::", "::")]
    [TestCase("::1", "::1")]
    [TestCase("::0.0.0.2", "::2")]
    [TestCase("::ffff:198.18.0.1", "::ffff:198.18.0.1")]
    [TestCase("::198.18.0.1", "::198.18.0.1")]
    [TestCase("2001:2::", "2001:2::")]
    [TestCase("2001:0:0:1::", "2001:0:0:1::")]
    [TestCase("1:0:0:0:0:0:0:8", "1::8")]
    [TestCase("0:0:0:0:0:ffff:0:1", "::ffff:0.0.0.1")]
    [TestCase("fe80::1:0:0:0", "fe80::1:0:0:0")]
    [TestCase("2001:2:0:1:0:1:0:1", "2001:2:0:1:0:1:0:1")]
    [TestCase("::ffff:0:0", "::ffff:0.0.0.0")]
    [TestCase("0:0:0:0:0:1:0:0", "::1:0:0")]
    [TestCase("2001:0002:0000:0000:0000:0000:00AB:0001", "2001:2::ab:1")]
    [TestCase("198.18.0.100", "198.18.0.100")]
    public void Prints_what_inet_ntop_prints(string text, string expected)
    {
        Assert.That(InetAddress.TryParse(text, out InetAddress address), Is.True);
        Assert.That(address.ToString(), Is.EqualTo(expected));
        Assert.That(InetAddress.Parse(expected), Is.EqualTo(address), "the printed form reads back as the same address");
    }

    [TestCase("")]
    [TestCase("[2001:2::1]")]
    [TestCase("2001:2::1%eth0")]
    [TestCase("2001:2::/48")]
    [TestCase("2001:2::1::2")]
    [TestCase("2001:2:0:0:0:0:0:0:1")]
    [TestCase("12345::1")]
    [TestCase("198.18.0")]
    [TestCase("198.18.0.256")]
    [TestCase("198.18.0.1 ")]
    [TestCase("localhost")]
    public void Refuses_what_is_not_one_address(string text) =>
        Assert.That(InetAddress.TryParse(text, out _), Is.False);

    [Test]
    public void With_a_port_ipv6_is_bracketed_and_ipv4_is_not()
    {
        Assert.That(InetAddress.Parse("2001:2::100").WithPort(80), Is.EqualTo("[2001:2::100]:80"));
        Assert.That(InetAddress.Parse("198.18.0.100").WithPort(80), Is.EqualTo("198.18.0.100:80"));
    }

    [Test]
    public void The_family_is_part_of_the_value()
    {
        InetAddress v4 = InetAddress.Parse("198.18.0.1");
        InetAddress mapped = InetAddress.Parse("::ffff:198.18.0.1");
        Assert.Multiple(() =>
        {
            Assert.That(v4.IsIPv4 && v4.Family == IpFamily.IPv4 && v4.IPv4 == 0xC6120001, Is.True);
            Assert.That(mapped.IsIPv6, Is.True);
            Assert.That(v4, Is.Not.EqualTo(mapped));
            Assert.That(v4.GetHashCode(), Is.Not.EqualTo(mapped.GetHashCode()));
            Assert.That(InetAddress.FromIPAddress(IPAddress.Parse("2001:2::7")), Is.EqualTo(InetAddress.Parse("2001:2::7")));
            Assert.That(InetAddress.Parse("2001:2::7").ToIPAddress(), Is.EqualTo(IPAddress.Parse("2001:2::7")));
            Assert.That(v4.ToIPAddress(), Is.EqualTo(IPAddress.Parse("198.18.0.1")));
        });
    }

    [Test]
    public void Wire_bytes_round_trip()
    {
        byte[] wire = [0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0xC6, 0x12, 0x00, 0x0B];
        InetAddress address = InetAddress.FromIPv6(wire);
        byte[] written = new byte[16];
        address.WriteIPv6Bytes(written);
        Assert.Multiple(() =>
        {
            Assert.That(address.ToString(), Is.EqualTo("2001:2::c612:b"));
            Assert.That(written, Is.EqualTo(wire));
            Assert.That(address.Word(0), Is.EqualTo(0x20010002u));
            Assert.That(address.Word(3), Is.EqualTo(0xC612000Bu));
        });
    }

    [Test]
    public void Folds_as_the_hashing_schedulers_do()
    {
        // ip_vs_sh_hashkey: ntohl(a[0] ^ a[1] ^ a[2] ^ a[3]) for IPv6; the address itself for IPv4.
        Assert.Multiple(() =>
        {
            Assert.That(InetAddress.Parse("2001:2::c612:b").Fold(), Is.EqualTo(0x20010002u ^ 0xC612000Bu));
            Assert.That(InetAddress.Parse("2001:2:1:2:3:4:5:6").Fold(), Is.EqualTo(0x20010002u ^ 0x00010002u ^ 0x00030004u ^ 0x00050006u));
            Assert.That(InetAddress.Parse("198.18.0.11").Fold(), Is.EqualTo(0xC612000Bu));
        });
    }

    [TestCase("2001:2:0:ab:1:2:3:4", 64u, "2001:2:0:ab::")]
    [TestCase("2001:2:0:ab:1:2:3:4", 128u, "2001:2:0:ab:1:2:3:4")]
    [TestCase("2001:2:0:ab:1:2:3:4", 56u, "2001:2::")]
    [TestCase("2001:2:0:ab:1:2:3:4", 1u, "::")]
    [TestCase("2001:2:0:ab:1:2:3:ffff", 127u, "2001:2:0:ab:1:2:3:fffe")]
    [TestCase("198.18.7.9", 0xFFFFFF00u, "198.18.7.0")]
    public void Masks_a_persistence_key_per_family(string address, uint netmaskOrPrefix, string expected) =>
        Assert.That(InetAddress.Parse(address).Mask(netmaskOrPrefix), Is.EqualTo(InetAddress.Parse(expected)));

    [Test]
    public void Orders_IPv4_before_IPv6_then_by_value()
    {
        InetAddress[] sorted = [.. new[] { "2001:2::2", "198.18.0.2", "2001:2::1", "198.18.0.1" }.Select(InetAddress.Parse).Order()];
        Assert.That(sorted.Select(a => a.ToString()), Is.EqualTo(new[] { "198.18.0.1", "198.18.0.2", "2001:2::1", "2001:2::2" }));
    }
}
