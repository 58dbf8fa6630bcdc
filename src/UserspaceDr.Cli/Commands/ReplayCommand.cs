using System.CommandLine;
using System.Globalization;
using UserspaceDr.Core.Forwarding;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;
using UserspaceDr.Core.Stats;
using UserspaceDr.Io.CaptureFiles;

namespace UserspaceDr.Cli.Commands;

/// <summary>`udr replay`: the engine over a capture, offline. Writes what udr would send; prints what happened.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var rules = new Option<string>("--rules") { Description = "rules file in ipvsadm save syntax (-A/-a lines)", Required = true };
        var input = new Option<string>("--in") { Description = "capture to replay (pcap, Ethernet)", Required = true };
        var output = new Option<string>("--out") { Description = "where to write every frame udr would transmit or reply with", Required = true };
        var localMac = new Option<string>("--local-mac") { Description = "the balancer interface's MAC", Required = true };
        var localAddress = new Option<string>("--local-address") { Description = "the balancer's IPv4 address: the outer source of IP-in-IP (-i) packets" };
        var neighbors = new Option<string[]>("--neighbor") { Description = "IP=MAC of a real server or next hop (repeatable)", AllowMultipleArgumentsPerToken = false };
        var answerArp = new Option<bool>("--answer-arp") { Description = "answer ARP for VIPs (normally the kernel does)" };
        var checksumNotReady = new Option<bool>("--checksum-not-ready") { Description = "treat every frame's L4 checksum as unfinished (as TP_STATUS_CSUMNOTREADY marks them)" };
        var capacity = new Option<int>("--max-connections") { Description = "connection table capacity", DefaultValueFactory = _ => 1 << 16 };
        var fwmarkRules = new Option<string[]>("--fwmark-rules")
        {
            Description = "as udr run --fwmark-rules: iptables-save output whose mangle MARK rules select the firewall-mark services' packets " +
                "(the capture's frames arrive on no named interface: a rule with -i matches none of them, one with ! -i all)",
        };

        var command = new Command("replay", "run the forwarding engine over a pcap file offline")
        {
            rules, input, output, localMac, localAddress, neighbors, answerArp, checksumNotReady, capacity, fwmarkRules,
        };
        command.SetAction(parse =>
        {
            RuleSetSpec spec = CliInputs.LoadRules(parse.GetRequiredValue(rules)) with
            {
                MarkRules = CliInputs.LoadMarkRules(parse.GetValue(fwmarkRules) ?? []),
            };
            MacAddress mac = CliInputs.ParseMac(parse.GetRequiredValue(localMac), "--local-mac");
            NeighborTable table = CliInputs.ParseNeighbors(parse.GetValue(neighbors) ?? []);
            int maxConnections = parse.GetValue(capacity);
            if (maxConnections <= 0)
            {
                throw new UsageException("--max-connections must be positive");
            }
            string inputPath = parse.GetRequiredValue(input);
            IReadOnlyList<PcapRecord> frames;
            try
            {
                frames = PcapFile.Read(inputPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                throw new UsageException($"--in {inputPath}: {e.Message}", e);
            }

            string? addressText = parse.GetValue(localAddress);
            uint address = addressText is null ? 0 : CliInputs.ParseAddress(addressText, "--local-address");
            var options = new EngineOptions
            {
                LocalMac = mac,
                Links = [new EngineLink(mac, EngineLink.DefaultMtu, address)],
                AnswerArpForVirtualAddresses = parse.GetValue(answerArp),
            };
            ReplayResult result = PcapReplay.Run(RuleSet.Build(spec), table, options, frames, maxConnections,
                parse.GetValue(checksumNotReady) ? FrameFlags.ChecksumNotReady : FrameFlags.None);
            string outputPath = parse.GetRequiredValue(output);
            try
            {
                PcapFile.Write(outputPath, result.Output);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"--out {outputPath}: {e.Message}", e);
            }
            Console.Out.Write(Report(frames.Count, result));
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Per-server forwarded counts, verdict totals and every non-zero reason.</summary>
    internal static string Report(int inputFrames, ReplayResult result)
    {
        var text = new System.Text.StringBuilder();
        IFormatProvider c = CultureInfo.InvariantCulture;
        text.AppendLine(c, $"frames in: {inputFrames}, frames out: {result.Output.Count}");
        text.AppendLine("forwarded per real server:");
        foreach (VirtualService service in result.Rules.Services)
        {
            text.AppendLine(c, $"  {service}");
            foreach (RealServer server in service.Destinations.Reverse())
            {
                TrafficCounters traffic = result.Counters.Read(server);
                text.AppendLine(c, $"    -> {server,-21} conns {traffic.Connections,8} frames {traffic.InPackets,10} bytes {traffic.InBytes,12}");
            }
        }
        text.AppendLine(c, $"verdicts: transmit {result.Counters.Total(Verdict.Transmit)}, reply {result.Counters.Total(Verdict.Reply)}, " +
            $"pass {result.Counters.Total(Verdict.Pass)}, drop {result.Counters.Total(Verdict.Drop)}");
        text.AppendLine("reasons:");
        for (int i = 0; i < FrameReasons.Count; i++)
        {
            var reason = (FrameReason)i;
            long count = result.Counters[reason];
            if (count != 0)
            {
                text.AppendLine(c, $"  {FrameReasons.VerdictOf(reason).ToString().ToLowerInvariant(),-8} {FrameReasons.Name(reason),-32} {count}");
            }
        }
        return text.ToString();
    }
}
