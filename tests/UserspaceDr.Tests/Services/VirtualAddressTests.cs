using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Services;

/// <summary>
/// <see cref="RuleSet.IsVirtualAddress(InetAddress)"/> on both sides of the size where the lookup turns from a scan into
/// a binary search (32 VIPs): every VIP is one, no other address is, in either family.
/// </summary>
public class VirtualAddressTests
{
    [TestCase(1)]
    [TestCase(32)]
    [TestCase(33)]
    [TestCase(200)]
    public void Every_vip_and_no_other_address_is_virtual(int count)
    {
        var services = new List<VirtualServiceSpec>();
        for (int i = 0; i < count; i++)
        {
            // Every other address, so that each VIP has a non-VIP neighbour on both sides.
            services.Add(new VirtualServiceSpec(ServiceProtocol.Tcp, Ipv4Vip(2 * (i + 1)), 80, "rr"));
            services.Add(new VirtualServiceSpec(ServiceProtocol.Udp, Ipv6Vip(2 * (i + 1)), 53, "rr"));
        }
        RuleSet rules = RuleSet.Build(new RuleSetSpec([.. services]));
        Assert.Multiple(() =>
        {
            for (int i = 0; i <= (2 * count) + 1; i++)
            {
                bool vip = i % 2 == 0 && i > 0;
                Assert.That(rules.IsVirtualAddress(Ipv4Vip(i)), Is.EqualTo(vip), $"IPv4 address {i}");
                Assert.That(rules.IsVirtualAddress(Ipv4Vip(i).IPv4), Is.EqualTo(vip), $"IPv4 address {i}, as a number");
                Assert.That(rules.IsVirtualAddress(Ipv6Vip(i)), Is.EqualTo(vip), $"IPv6 address {i}");
            }
        });
    }

    private static InetAddress Ipv4Vip(int i) => InetAddress.FromIPv4(0xC6120000u + 0x0200u + (uint)i); // 198.18.2.0 onwards

    private static InetAddress Ipv6Vip(int i) => InetAddress.Parse($"2001:2::2:{i:x}");
}
