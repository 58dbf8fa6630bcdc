using System.Collections.Immutable;
using UserspaceDr.Admin;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

public class RulesFileTests
{
    private static RuleSetSpec Loaded(string text)
    {
        IpvsadmResult<RuleSetSpec> result = RulesFile.Load(text);
        Assert.That(result.IsSuccess, Is.True, () => $"load failed: {result.Error}");
        return result.Value!;
    }

    // Written from ipvsadm.c print_service_entry / print_tunnel_rule with FMT_RULE | FMT_NUMERIC.
    private const string ReferenceSave =
        "-A -t 198.18.10.1:80 -s wrr -p 360 -M 255.255.255.0\n" +
        "-a -t 198.18.10.1:80 -r 198.18.9.2:80 -g -w 3\n" +
        "-a -t 198.18.10.1:80 -r 198.18.9.9:80 -i -w 1 --tun-type ipip\n" +
        "-A -t 198.18.10.2:443 -s sh -b sh-fallback,sh-port\n" +
        "-a -t 198.18.10.2:443 -r 198.18.9.2:443 -g -w 0\n" +
        "-A -u 198.18.10.1:53 -s rr -o\n" +
        "-a -u 198.18.10.1:53 -r 198.18.9.2:53 -m -w 1\n" +
        "-a -u 198.18.10.1:53 -r 198.18.9.2:5353 -m -w 2\n";

    [Test]
    public void Save_prints_ipvsadm_rule_format_byte_for_byte()
    {
        // Deliberately out of order: ipvsadm sorts services by protocol, address, port and servers by address, port.
        RuleSetSpec rules = Loaded(
            "-A -u 198.18.10.1:53 -s rr -o\n" +
            "-a -u 198.18.10.1:53 -r 198.18.9.2:5353 -m -w 2\n" +
            "-a -u 198.18.10.1:53 -r 198.18.9.2:53 -m\n" +
            "-A -t 198.18.10.2:443 -s sh -b sh-port,sh-fallback\n" +
            "-a -t 198.18.10.2:443 -r 198.18.9.2 -w 0\n" +
            "-A -t 198.18.10.1:80 -s wrr -p -M 255.255.255.0\n" +
            "-a -t 198.18.10.1:80 -r 198.18.9.9 -i -x 10 -y 5\n" +
            "-a -t 198.18.10.1:80 -r 198.18.9.2:80 -g -w 3\n");
        Assert.That(RulesFile.Save(rules), Is.EqualTo(ReferenceSave));
    }

    [Test]
    public void Save_of_nothing_is_empty()
    {
        Assert.That(RulesFile.Save(RuleSetSpec.Empty), Is.Empty);
    }

    [Test]
    public void Save_round_trips()
    {
        string once = RulesFile.Save(Loaded(ReferenceSave));
        Assert.That(once, Is.EqualTo(ReferenceSave));
        Assert.That(RulesFile.Save(Loaded(once)), Is.EqualTo(once));
    }

    [Test]
    public void Load_of_saved_rules_rebuilds_the_same_services()
    {
        RuleSetSpec rules = Loaded(ReferenceSave);
        RuleSetSpec again = Loaded(RulesFile.Save(rules));
        Assert.That(again.Services, Has.Length.EqualTo(rules.Services.Length));
        for (int i = 0; i < rules.Services.Length; i++)
        {
            // Record equality compares ImmutableArray by reference, so the servers are compared on their own.
            Assert.That(again.Services[i] with { RealServers = [] }, Is.EqualTo(rules.Services[i] with { RealServers = [] }));
            Assert.That(again.Services[i].RealServers, Is.EqualTo(rules.Services[i].RealServers));
        }
    }

    [Test]
    public void Save_prints_mask_only_for_persistent_services_and_flags_by_scheduler()
    {
        var rules = new RuleSetSpec(
        [
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.10.1"), 80, "rr", SchedulerFlags.Flag1 | SchedulerFlags.Flag3, 0, 0xFFFF_FF00),
            new VirtualServiceSpec(ServiceProtocol.Tcp, InetAddress.Parse("198.18.10.1"), 81, "mh", SchedulerFlags.Flag1, 30, 0xFFFF_0000),
        ]);
        Assert.That(RulesFile.Save(rules), Is.EqualTo(
            "-A -t 198.18.10.1:80 -s rr -b flag-1,flag-3\n" +
            "-A -t 198.18.10.1:81 -s mh -p 30 -M 255.255.0.0 -b mh-fallback\n"));
    }

    [Test]
    public void Save_prints_local_servers_as_route_and_omits_thresholds()
    {
        VirtualServiceSpec service = new(ServiceProtocol.Tcp, InetAddress.Parse("198.18.10.1"), 80)
        {
            RealServers = [new RealServerSpec(InetAddress.Parse("127.0.0.1"), 80, ForwardingMethod.Local, 7, 100, 50)],
        };
        Assert.That(RulesFile.Save(new RuleSetSpec([service])), Is.EqualTo(
            "-A -t 198.18.10.1:80 -s wlc\n" +
            "-a -t 198.18.10.1:80 -r 127.0.0.1:80 -g -w 7\n"));
    }

    [Test]
    public void Save_keeps_ipvsadm_wrapping_address_comparison()
    {
        // ipvs_cmp_services / ipvs_cmp_dests subtract the addresses as 32-bit ints, so two addresses 2^31 or more
        // apart compare the wrong way round. No two addresses of the lab range are that far apart (it would take one
        // below 70.18.0.0), so the comparators are checked on the 32-bit values themselves; nothing here is an
        // address the project uses or sends to.
        const uint Low = 0x0000_0001, High = 0xC612_0001; // High is 198.18.0.1
        VirtualServiceSpec Service(uint address) => new(ServiceProtocol.Tcp, InetAddress.FromIPv4(address), 80);
        Assert.Multiple(() =>
        {
            Assert.That(IpvsadmOrder.CompareServices(Service(Low), Service(High)), Is.Positive, "High - Low wraps: Low sorts after High");
            Assert.That(IpvsadmOrder.CompareRealServers(new RealServerSpec(InetAddress.FromIPv4(Low), 80), new RealServerSpec(InetAddress.FromIPv4(High), 80)), Is.Positive, "the same for real servers");
            Assert.That(IpvsadmOrder.CompareServices(Service(Ipv4Address.Parse("198.18.0.1")), Service(Ipv4Address.Parse("198.19.0.1"))), Is.Negative,
                "within 2^31 the order is the plain one");
        });
        // And Save lists in that order (the merge sort over the comparator), here within the lab range.
        Assert.That(RulesFile.Save(Loaded("-A -t 198.19.0.1:80\n-A -t 198.18.0.1:80\n")), Is.EqualTo(
            "-A -t 198.18.0.1:80 -s wlc\n" +
            "-A -t 198.19.0.1:80 -s wlc\n"));
    }

    [Test]
    public void Save_sorts_tcp_before_udp_then_port()
    {
        RuleSetSpec rules = Loaded("-A -u 198.18.10.1:53\n-A -t 198.18.10.1:443\n-A -t 198.18.10.1:80\n-A -t 198.18.10.1:0 -p\n");
        Assert.That(RulesFile.Save(rules), Is.EqualTo(
            "-A -t 198.18.10.1:0 -s wlc -p 360\n" +
            "-A -t 198.18.10.1:80 -s wlc\n" +
            "-A -t 198.18.10.1:443 -s wlc\n" +
            "-A -u 198.18.10.1:53 -s wlc\n"));
    }

    [Test]
    public void Load_skips_comments_blank_lines_and_the_word_ipvsadm()
    {
        RuleSetSpec rules = Loaded(
            "# web tier\r\n" +
            "\r\n" +
            "ipvsadm -A -t 198.18.10.1:80 -s rr   # round robin\r\n" +
            "   \t\n" +
            "ipvsadm\n" +
            "\t-a\t-t 198.18.10.1:80 -r 198.18.9.2 ipvsadm -w 2");
        Assert.That(rules.Services, Has.Length.EqualTo(1));
        Assert.That(rules.Services[0].Scheduler, Is.EqualTo("rr"));
        Assert.That(rules.Services[0].RealServers, Is.EqualTo(new[]
        {
            new RealServerSpec(InetAddress.Parse("198.18.9.2"), 80, ForwardingMethod.Route, 2),
        }));
    }

    [Test]
    public void Load_applies_lines_in_order_including_edits_and_clears()
    {
        RuleSetSpec rules = Loaded(
            "-A -t 198.18.10.9:80\n" +
            "-C\n" +
            "-A -t 198.18.10.1:80 -s rr\n" +
            "-a -t 198.18.10.1:80 -r 198.18.9.2\n" +
            "-a -t 198.18.10.1:80 -r 198.18.9.3\n" +
            "-e -t 198.18.10.1:80 -r 198.18.9.2 -w 5\n" +
            "-d -t 198.18.10.1:80 -r 198.18.9.3\n" +
            "-E -t 198.18.10.1:80 -s wrr\n");
        Assert.That(RulesFile.Save(rules), Is.EqualTo(
            "-A -t 198.18.10.1:80 -s wrr\n" +
            "-a -t 198.18.10.1:80 -r 198.18.9.2:80 -g -w 5\n"));
    }

    [TestCase("-A -t 198.18.10.1:80\n\n-A -t 198.18.10.1:80\n", "line 3: Service already exists", 255)]
    [TestCase("-A -t 198.18.10.1:80\n-A -t 198.18.10.2:80 -w 2\n", "line 2: Illegal 'weight' option with the 'add-service' command", 2)]
    [TestCase("# nothing yet\n-a -t 198.18.10.1:80 -r 198.18.9.2\n", "line 2: Service not defined", 255)]
    [TestCase("-A -t 198.18.10.1:80 -s lblcr\n", "line 1: Scheduler or persistence engine not found", 255)]
    [TestCase("-A -t 198.18.10.1:80\n-A --sctp-service 198.18.10.1:80\n", "line 2: udr does not support SCTP services (--sctp-service); only TCP (-t), UDP (-u) and firewall marks (-f)", 255)]
    [TestCase("-A -t 198.18.10.1:80\n-R\n", "line 2: the 'restore' command does not change the rule set; udr cannot apply it here", 2)]
    [TestCase("-A -t 198.18.10.1:80\r\n-L -n\r\n", "line 2: the 'list' command does not change the rule set; udr cannot apply it here", 2)]
    [TestCase("-A -t 198.18.10.1:80 --bogus\n", "line 1: --bogus: unknown option", 255)]
    [TestCase("-t 198.18.10.1:80\n", "line 1: Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 255)]
    public void Load_is_all_or_nothing_and_names_the_failing_line(string text, string message, int exitCode)
    {
        IpvsadmResult<RuleSetSpec> result = RulesFile.Load(text);
        Assert.That(result.IsSuccess, Is.False);
        Assert.That(result.Value, Is.Null);
        Assert.That(result.Error!.Message, Is.EqualTo(message));
        Assert.That(result.Error.ExitCode, Is.EqualTo(exitCode));
    }

    [Test]
    public void Load_of_an_empty_file_is_an_empty_rule_set()
    {
        Assert.That(Loaded("").Services, Is.Empty);
        Assert.That(Loaded("# only a comment\n\n").Services, Is.EqualTo(ImmutableArray<VirtualServiceSpec>.Empty));
    }
}
