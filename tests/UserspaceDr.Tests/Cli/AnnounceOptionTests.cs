using UserspaceDr.Cli;
using UserspaceDr.Cli.Commands;
using UserspaceDr.Core.Packets;
using UserspaceDr.Io.Runtime;

namespace UserspaceDr.Tests.Cli;

/// <summary>udr run --announce VIP=DEVICE: what is accepted, and the clear refusal of the rest (exit 2 in the CLI).</summary>
public class AnnounceOptionTests
{
    [Test]
    public void Vips_of_both_families_with_their_devices_are_taken()
    {
        IReadOnlyList<VipAnnouncement> parsed = RunCommand.ParseAnnouncements(["198.18.0.100=udrvip0", "2001:2::100=udrvip6"]);
        Assert.That(parsed, Is.EqualTo(new[]
        {
            new VipAnnouncement(InetAddress.Parse("198.18.0.100"), "udrvip0"),
            new VipAnnouncement(InetAddress.Parse("2001:2::100"), "udrvip6"),
        }));
    }

    [TestCase("198.18.0.100", "expected VIP=DEVICE")]
    [TestCase("=udrvip0", "expected VIP=DEVICE")]
    [TestCase("198.18.0.300=udrvip0", "expected VIP=DEVICE")]
    [TestCase("198.18.0.100=", "not a valid interface name")]
    [TestCase("198.18.0.100=a-name-far-too-long", "not a valid interface name")]
    [TestCase("198.18.0.100=udr/vip", "not a valid interface name")]
    [TestCase("198.18.0.100=lo", "exists already")]
    public void A_bad_announcement_is_refused_with_the_reason(string value, string reason) =>
        Assert.That(() => RunCommand.ParseAnnouncements([value]), Throws.TypeOf<UsageException>().With.Message.Contains(reason).And.Message.Contains(value));

    [Test]
    public void A_vip_or_a_device_named_twice_is_refused() =>
        Assert.Multiple(() =>
        {
            Assert.That(() => RunCommand.ParseAnnouncements(["198.18.0.100=udrvip0", "198.18.0.101=udrvip0"]), Throws.TypeOf<UsageException>());
            Assert.That(() => RunCommand.ParseAnnouncements(["198.18.0.100=udrvip0", "198.18.0.100=udrvip1"]), Throws.TypeOf<UsageException>());
        });
}
