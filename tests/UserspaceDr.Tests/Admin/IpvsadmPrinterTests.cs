using UserspaceDr.Core.Packets;
using UserspaceDr.Admin;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

/// <summary>The pieces of <see cref="IpvsadmPrinter"/> the corpus does not reach on its own.</summary>
public class IpvsadmPrinterTests
{
    // print_largenum: "%9llu" below 100 million, then "%8lluK" / M (below 100 billion) / G (below 100 trillion) / T.
    [TestCase(0L, "        0")]
    [TestCase(99_999_999L, " 99999999")]
    [TestCase(100_000_000L, "  100000K")]
    [TestCase(999_999_999L, "  999999K")]
    [TestCase(1_000_000_000L, "    1000M")]
    [TestCase(99_999_999_999L, "   99999M")]
    [TestCase(100_000_000_000L, "     100G")]
    [TestCase(99_999_999_999_999L, "   99999G")]
    [TestCase(100_000_000_000_000L, "     100T")]
    [TestCase(long.MaxValue, " 9223372T")]
    public void Large_numbers_scale_as_print_largenum(long value, string expected)
    {
        Assert.That(IpvsadmPrinter.LargeNumber(value, IpvsadmFormat.None), Is.EqualTo(expected));
    }

    // --exact: "%*llu" with width 9, or one more than the digits.
    [TestCase(0L, "        0")]
    [TestCase(12_345_678L, " 12345678")]
    [TestCase(123_456_789L, " 123456789")]
    [TestCase(123_456_789_012_345L, " 123456789012345")]
    public void Exact_prints_every_digit(long value, string expected)
    {
        Assert.That(IpvsadmPrinter.LargeNumber(value, IpvsadmFormat.Exact), Is.EqualTo(expected));
    }

    [Test]
    public void Sh_with_only_flag_3_prints_empty_parentheses_as_ipvsadm_does()
    {
        var rules = new RuleSetSpec([new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.FromIPv4(0xC6120064), 80, "sh", SchedulerFlags.Flag3)]);
        string listed = IpvsadmPrinter.ListAll(IpvsState.FromRules(rules), IpvsadmFormat.Numeric);
        Assert.That(listed, Does.EndWith("TCP  198.18.0.100:80 sh ()\n"));
        Assert.That(RulesFile.Save(rules), Is.EqualTo("-A -t 198.18.0.100:80 -s sh -b \n"));
    }

    [Test]
    public void Header_reports_the_connection_table_size()
    {
        var state = new IpvsState([]) { ConnectionTableSize = 1 << 20 };
        Assert.That(IpvsadmPrinter.ListAll(state, IpvsadmFormat.None), Is.EqualTo(
            "IP Virtual Server version 1.2.1 (size=1048576)\n" +
            "Prot LocalAddress:Port Scheduler Flags\n" +
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"));
    }

    [Test]
    public void File_names_read_hosts_and_services_files()
    {
        string directory = Path.Combine(Path.GetTempPath(), "udr-names-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string hosts = Path.Combine(directory, "hosts");
            string services = Path.Combine(directory, "services");
            File.WriteAllText(hosts, "127.0.0.1 localhost\n198.18.0.11\trs1.lab rs1 # first wins\n198.18.0.11 other\n::1 ip6-localhost\n");
            File.WriteAllText(services, "# comment\nhttp\t\t80/tcp\t\twww\ndomain\t\t53/tcp\ndomain\t\t53/udp\nntp 123/udp\nbad x/tcp\n");
            var names = new FileNames(hosts, services);
            Assert.Multiple(() =>
            {
                Assert.That(names.HostName(InetAddress.FromIPv4(0xC612000B)), Is.EqualTo("rs1.lab"));
                Assert.That(names.HostName(InetAddress.FromIPv4(0xC612000C)), Is.Null);
                Assert.That(names.ServiceName(80, ServiceProtocol.Tcp), Is.EqualTo("http"));
                Assert.That(names.ServiceName(80, ServiceProtocol.Udp), Is.Null);
                Assert.That(names.ServiceName(123, ServiceProtocol.Udp), Is.EqualTo("ntp"));
            });
            Assert.That(new FileNames(Path.Combine(directory, "none"), Path.Combine(directory, "none")).HostName(InetAddress.FromIPv4(0x7F000001)), Is.Null);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
