using System.CommandLine;
using UserspaceDr.Core.Services;
using UserspaceDr.Io.Preflight;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;

namespace UserspaceDr.Cli.Commands;

/// <summary>`udr preflight`: the balancer host's checklist (pass/warn/fail; exit 0, 1 or 2), with --fix for GRO/LRO.</summary>
internal static class PreflightCommand
{
    public static Command Create()
    {
        var interfaceName = new Option<string>("--interface") { Description = "the interface VIP traffic arrives on", Required = true };
        var rules = new Option<string>("--rules") { Description = "rules file in ipvsadm save syntax", Required = true };
        var fix = new Option<bool>("--fix") { Description = "turn GRO/LRO off on the interface (ethtool -K) and report the state after" };
        var answerArp = new Option<bool>("--answer-arp") { Description = "udr will answer ARP for the VIPs (as udr run --answer-arp): a VIP need not be on the interface" };
        var noIsolation = new Option<bool>("--no-kernel-isolation") { Description = "udr will run without the nftables ingress drop (as udr run --no-kernel-isolation)" };
        var fwmarkRules = new Option<string[]>("--fwmark-rules") { Description = "as udr run --fwmark-rules: the mark rules' destinations are checked as VIPs" };
        var backend = new Option<string>("--backend") { Description = "the backend udr run will use (as udr run --backend): xdp adds the AF_XDP checks", DefaultValueFactory = _ => "afpacket" };
        backend.AcceptOnlyFromAmong("afpacket", "pcap", "xdp");
        var command = new Command("preflight", "check the balancer host before udr run: exit 0 all pass, 1 warnings, 2 failures")
        {
            interfaceName, rules, fix, answerArp, noIsolation, backend, fwmarkRules,
        };
        command.SetAction(parse =>
        {
            RuleSetSpec spec = CliInputs.LoadRules(parse.GetRequiredValue(rules)) with
            {
                MarkRules = CliInputs.LoadMarkRules(parse.GetValue(fwmarkRules) ?? []).ForLinks([parse.GetRequiredValue(interfaceName)]),
            };
            var options = new PreflightOptions(parse.GetRequiredValue(interfaceName), spec)
            {
                Fix = parse.GetValue(fix),
                AnswerArp = parse.GetValue(answerArp),
                KernelIsolation = !parse.GetValue(noIsolation),
                AfXdp = parse.GetValue(backend) == "xdp",
            };
            if (options.Fix && !Environment.IsPrivilegedProcess)
            {
                throw new UsageException("preflight --fix changes interface settings: run it as root");
            }
            IReadOnlyList<CheckResult> results;
            try
            {
                results = PreflightChecks.Run(options, new LinuxHostSystem());
            }
            catch (HostException e)
            {
                throw new UsageException(e.Message, e);
            }
            Console.Out.Write(CheckReport.Format(results));
            return CheckReport.ExitCode(results);
        });
        return command;
    }
}
