using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using UserspaceDr.Core.Services;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node;
using UserspaceDr.Node.Tunnel;

namespace UserspaceDr.Cli.Commands;

/// <summary>
/// `udr node setup|teardown|check`: prepares a real server for direct routing (ARP hidden, VIPs on lo), undoes exactly
/// that, and checks it. Every change is planned first, printed, recorded in the state file, and rolled back on failure.
/// `udr node tunnel`: the real server's IP-in-IP endpoint for TUN services, in the foreground until SIGINT/SIGTERM.
/// </summary>
internal static class NodeCommand
{
    public static Command Create() => new("node", "prepare a real server for udr (ARP hiding, VIPs on lo), undo it, or check it")
    {
        CreateSetup(),
        CreateTeardown(),
        CreateCheck(),
        CreateTunnel(),
    };

    private static Option<string[]> VipOption() => new("--vip")
    {
        Description = "a virtual IP address (IPv4 or IPv6) this real server serves (repeat for several)",
        Required = true,
        Arity = ArgumentArity.OneOrMore,
    };

    private static Option<string> ModeOption()
    {
        var mode = new Option<string>("--mode") { Description = "dr (direct routing, default) or tun (IP-in-IP)", DefaultValueFactory = _ => "dr" };
        mode.AcceptOnlyFromAmong("dr", "tun");
        return mode;
    }

    private static Option<string> StateFileOption() => new("--state-file")
    {
        Description = "where setup records the earlier values that teardown restores",
        DefaultValueFactory = _ => NodeState.DefaultPath,
    };

    private static Command CreateSetup()
    {
        Option<string[]> vips = VipOption();
        Option<string> mode = ModeOption();
        var interfaceName = new Option<string>("--interface") { Description = "the interface facing the balancer (default: the default route's, or the only one besides lo)" };
        var persist = new Option<bool>("--persist") { Description = "also write the sysctls to SYSCTL-DIR/90-udr-node.conf, and show how to keep the VIPs on lo across reboots" };
        var sysctlDirectory = new Option<string>("--sysctl-dir") { Description = "where --persist writes its file", DefaultValueFactory = _ => NodeSetupRequest.DefaultSysctlDirectory };
        var dryRun = new Option<bool>("--dry-run") { Description = "print each change it would make, and change nothing" };
        Option<string> stateFile = StateFileOption();
        var command = new Command("setup", "hide ARP for the VIPs and put them on lo (DR and TUN), remembering every earlier value")
        {
            vips, mode, interfaceName, persist, sysctlDirectory, dryRun, stateFile,
        };
        command.SetAction(parse => Guard(() =>
        {
            var request = new NodeSetupRequest(NodeAddresses.ParseVips(parse.GetRequiredValue(vips)))
            {
                Mode = ParseMode(parse.GetValue(mode)),
                InterfaceName = parse.GetValue(interfaceName),
                Persist = parse.GetValue(persist),
                SysctlDirectory = parse.GetRequiredValue(sysctlDirectory),
            };
            new NodeController(new LinuxHostSystem(), Console.Out).Setup(request, parse.GetRequiredValue(stateFile), parse.GetValue(dryRun));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateTeardown()
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "print each change it would make, and change nothing" };
        Option<string> stateFile = StateFileOption();
        var command = new Command("teardown", "restore every setting setup changed and remove every address it added") { dryRun, stateFile };
        command.SetAction(parse => Guard(() =>
        {
            new NodeController(new LinuxHostSystem(), Console.Out).Teardown(parse.GetRequiredValue(stateFile), parse.GetValue(dryRun));
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command CreateCheck()
    {
        Option<string[]> vips = VipOption();
        Option<string> mode = ModeOption();
        var interfaceName = new Option<string>("--interface") { Description = "check only this interface's ARP settings (default: every ARP-speaking interface)" };
        var command = new Command("check", "report pass/fail with the fix for each condition; exit 0 only when the node is right")
        {
            vips, mode, interfaceName,
        };
        command.SetAction(parse => Guard(() =>
        {
            IReadOnlyList<CheckResult> results = NodeCheck.Run(NodeAddresses.ParseVips(parse.GetRequiredValue(vips)),
                ParseMode(parse.GetValue(mode)), parse.GetValue(interfaceName), new LinuxHostSystem());
            Console.Out.Write(CheckReport.Format(results));
            int code = NodeCheck.ExitCode(results);
            Console.Out.WriteLine(code == 0 ? "the node is ready" : "the node is NOT ready");
            return code == 0 ? ExitCodes.Success : ExitCodes.Failure;
        }));
        return command;
    }

    private static Command CreateTunnel()
    {
        Option<string[]> vips = VipOption();
        var mode = new Option<string>("--mode")
        {
            Description = "auto (default: kernel when the ipip module is there, else user), kernel (tunl0) or user (raw socket + TUN device)",
            DefaultValueFactory = _ => "auto",
        };
        mode.AcceptOnlyFromAmong("auto", "kernel", "user");
        var device = new Option<string>("--device")
        {
            Description = $"kernel: the ipip device (default {TunnelOptions.KernelDefaultDevice}); user: the TUN device to create (default {TunnelOptions.UserDefaultDevice})",
        };
        var statsInterval = new Option<int>("--stats-interval")
        {
            Description = "seconds between counter lines of the user-space endpoint, printed only when they changed (0: only at exit)",
            DefaultValueFactory = _ => 60,
        };
        var tunnelType = new Option<string>("--tun-type")
        {
            Description = "what the balancer's --tun-type wraps packets in: ipip (default), gue (with --tun-port) or gre; gue and gre use the user-space endpoint",
            DefaultValueFactory = _ => "ipip",
        };
        tunnelType.AcceptOnlyFromAmong("ipip", "gue", "gre");
        var tunnelPort = new Option<int>("--tun-port") { Description = "gue: the UDP port it arrives on (the balancer's --tun-port)" };
        var queues = new Option<int>("--queues")
        {
            Description = $"user-space endpoint: a multi-queue TUN device with a thread per queue, each taking its share of the flows (1 to {TunnelQueueFilter.MaxQueues}; default 1)",
            DefaultValueFactory = _ => 1,
        };
        var busyPoll = new Option<int>("--busy-poll-usecs")
        {
            Description = "user-space endpoint: for this long after its last packets a queue spins on its sockets instead of sleeping, so the " +
                "next packet is taken without a wake-up (faster round trips and connection rates for CPU while packets trickle; 0 to 1000, default 0)",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("tunnel", "receive IP-in-IP, GUE or GRE from the balancer (TUN services) and hand the inner packets to this host's stack; runs until SIGINT/SIGTERM")
        {
            vips, mode, device, statsInterval, tunnelType, tunnelPort, queues, busyPoll,
        };
        command.SetAction(parse => Guard(() =>
        {
            int seconds = parse.GetValue(statsInterval);
            if (seconds < 0)
            {
                throw new NodeException(string.Create(CultureInfo.InvariantCulture, $"--stats-interval: {seconds} is negative"));
            }
            int port = parse.GetValue(tunnelPort);
            if (port is < 0 or > 65535)
            {
                throw new NodeException(string.Create(CultureInfo.InvariantCulture, $"--tun-port: {port} is not a port (1-65535)"));
            }
            var options = new TunnelOptions(NodeAddresses.ParseVips(parse.GetRequiredValue(vips)))
            {
                Mode = parse.GetValue(mode) switch { "kernel" => TunnelMode.Kernel, "user" => TunnelMode.User, _ => TunnelMode.Auto },
                Device = parse.GetValue(device),
                StatsInterval = TimeSpan.FromSeconds(seconds),
                Type = parse.GetValue(tunnelType) switch { "gue" => TunnelType.Gue, "gre" => TunnelType.Gre, _ => TunnelType.Ipip },
                GuePort = (ushort)port,
                Queues = parse.GetValue(queues),
                BusyPollMicroseconds = parse.GetValue(busyPoll),
            };
            using var stop = new CancellationTokenSource();
            using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            new TunnelController(new LinuxHostSystem(), Console.Out).Run(options, stop.Token);
            return ExitCodes.Success;

            void Stop(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }
        }));
        return command;
    }

    private static NodeMode ParseMode(string? mode) => mode == "tun" ? NodeMode.Tunnel : NodeMode.DirectRouting;

    /// <summary>A refusal or a rolled-back failure of the node module is operator-facing: one line, exit code 2.</summary>
    private static int Guard(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (HostException e)
        {
            throw new UsageException(e.Message, e);
        }
    }
}
