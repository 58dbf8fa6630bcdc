using UserspaceDr.Admin;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Tests.Admin;

/// <summary>-A -f: firewall-mark services edited, listed and saved as ipvsadm does them.</summary>
public class FirewallMarkServiceTests
{
    private static RuleSetSpec Applied(RuleSetSpec rules, params string[] args)
    {
        IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(args);
        Assert.That(parsed.IsSuccess, Is.True, () => $"parse failed: {parsed.Error}");
        IpvsadmResult<RuleSetSpec> result = RuleSetEditor.Apply(rules, parsed.Value!);
        Assert.That(result.IsSuccess, Is.True, () => $"apply failed: {result.Error}");
        return result.Value!;
    }

    private static RuleSetSpec MarkedServices()
    {
        RuleSetSpec rules = Applied(RuleSetSpec.Empty, "-A", "-t", "198.18.10.1:80", "-s", "rr");
        rules = Applied(rules, "-A", "-f", "7", "-s", "rr", "-p", "300");
        rules = Applied(rules, "-a", "-f", "7", "-r", "198.18.12.2", "-g");
        rules = Applied(rules, "-a", "-f", "7", "-r", "198.18.12.1:8080", "-m", "-w", "2");
        rules = Applied(rules, "-A", "-f", "3", "-6", "-s", "sh", "-p", "60", "-M", "64");
        return Applied(rules, "-a", "-f", "3", "-6", "-r", "2001:2::12", "-g");
    }

    [Test]
    public void A_mark_service_is_keyed_by_mark_and_family()
    {
        RuleSetSpec rules = MarkedServices();
        VirtualServiceSpec seven = rules.Services.Single(s => s.FirewallMark == 7);
        Assert.That((seven.Address, seven.Port, seven.PersistenceTimeout), Is.EqualTo((InetAddress.Parse("0.0.0.0"), (ushort)0, 300)));
        Assert.That(seven.RealServers.Select(r => (r.Address.ToString(), r.Port)), Is.EqualTo(new[] { ("198.18.12.2", (ushort)0), ("198.18.12.1", (ushort)8080) }),
            "a -g server of a mark service keeps the port given (none: 0, the packet's own)");
        VirtualServiceSpec three = rules.Services.Single(s => s.FirewallMark == 3);
        Assert.That((three.Address.IsIPv6, three.PersistenceNetmask), Is.EqualTo((true, 64u)));

        IpvsadmResult<IpvsadmCommand> again = IpvsadmParser.Parse(["-A", "-f", "7"]);
        Assert.That(RuleSetEditor.Apply(rules, again.Value!).Error!.Message, Is.EqualTo("Service already exists"));
        RuleSetSpec ipv6Seven = Applied(rules, "-A", "-f", "7", "-6");
        Assert.That(ipv6Seven.Services.Count(s => s.FirewallMark == 7), Is.EqualTo(2), "-f 7 and -f 7 -6 are two services");
        IpvsadmResult<IpvsadmCommand> missing = IpvsadmParser.Parse(["-a", "-f", "8", "-r", "198.18.12.2"]);
        Assert.That(RuleSetEditor.Apply(rules, missing.Value!).Error!.Message, Is.EqualTo("Service not defined"));
        RuleSetSpec deleted = Applied(rules, "-D", "-f", "7");
        Assert.That(deleted.Services.Select(s => s.FirewallMark), Is.EqualTo(new uint[] { 0, 3 }));
    }

    [Test]
    public void Save_and_list_print_fwm_as_ipvsadm_does()
    {
        RuleSetSpec rules = MarkedServices();
        Assert.That(RulesFile.Save(rules), Is.EqualTo(
            "-A -t 198.18.10.1:80 -s rr\n" +
            "-A -f 3 -6 -s sh -p 60 -M 64\n" +
            "-a -f 3 -6 -r [2001:2::12]:0 -g -w 1\n" +
            "-A -f 7 -s rr -p 300\n" +
            "-a -f 7 -r 198.18.12.1:8080 -m -w 2\n" +
            "-a -f 7 -r 198.18.12.2:0 -g -w 1\n"));
        string listing = IpvsadmPrinter.ListAll(IpvsState.FromRules(rules), IpvsadmFormat.Numeric);
        Assert.That(listing, Does.Contain("\nFWM  7 rr persistent 300\n  -> 198.18.12.1:8080             Masq    2      0          0         \n"));
        Assert.That(listing, Does.Contain("\nFWM  3 IPv6 sh persistent 60 mask 64\n"));

        // ipvsadm prints the mark with %d.
        RuleSetSpec high = Applied(RuleSetSpec.Empty, "-A", "-f", "4294967295", "-s", "rr");
        Assert.That(RulesFile.Save(high), Is.EqualTo("-A -f -1 -s rr\n"));

        // The saved form reads back to the same rule set.
        IpvsadmResult<RuleSetSpec> reloaded = RulesFile.Load(RulesFile.Save(rules));
        Assert.That(RulesFile.Save(reloaded.Value!), Is.EqualTo(RulesFile.Save(rules)));
    }

    [Test]
    public void Clearing_the_services_keeps_the_mark_rules()
    {
        var marks = MarkRulesFile.Parse("*mangle\n-A PREROUTING -d 198.18.10.2/32 -j MARK --set-xmark 0x7/0xffffffff\nCOMMIT\n", "marks");
        RuleSetSpec rules = MarkedServices() with { MarkRules = marks };
        Assert.That(Applied(rules, "-C").MarkRules, Is.SameAs(marks));
        Assert.That(Applied(rules, "-D", "-f", "7").MarkRules, Is.SameAs(marks));
    }
}
