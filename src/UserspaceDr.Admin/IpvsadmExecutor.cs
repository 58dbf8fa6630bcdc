using System.Globalization;
using System.Net;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>What an ipvsadm invocation ends with: its exit status and what it wrote to stdout and stderr.</summary>
public sealed record IpvsadmOutcome(int ExitCode, string Stdout, string Stderr)
{
    public static IpvsadmOutcome Output(string stdout) => new(0, stdout, "");

    public static IpvsadmOutcome Failure(IpvsadmError error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return new(error.ExitCode, "", error.Message + "\n");
    }
}

/// <summary>
/// The running balancer as the ipvsadm commands see it (the kernel's part). <see cref="Publish"/> is all or
/// nothing: it either applies the whole rule set or throws and leaves everything as it was.
/// </summary>
public interface IIpvsBackend
{
    RuleSetSpec Rules { get; }

    /// <summary>Applies a validated rule set to the running data plane as one change.</summary>
    void Publish(RuleSetSpec rules);

    IpvsTimeouts Timeouts { get; }

    /// <summary>--set: each 0 keeps the current value.</summary>
    void SetTimeouts(IpvsTimeouts timeouts);

    /// <summary>Services, servers, connection counts, counters and rates, as of now.</summary>
    IpvsState State();

    /// <summary>-Z: counters and rates of every service, or of <paramref name="service"/> and its servers, from 0.</summary>
    void Zero(VirtualServiceSpec? service);

    /// <summary>Every connection entry and persistence template (may throw <see cref="TimeoutException"/>).</summary>
    IReadOnlyList<IpvsConnection> Connections();

    /// <summary>--start-daemon: null when it runs; otherwise why not (the message ipvsadm prints).</summary>
    string? StartDaemon(SyncDaemonSettings settings) => "udr has no connection sync daemon here";

    /// <summary>--stop-daemon: null when it was stopped; otherwise why not.</summary>
    string? StopDaemon(SyncDaemonRole role) => RuleSetEditor.NoDaemon;

    /// <summary>The sync daemons running, master first, with every setting as the kernel reports it.</summary>
    IReadOnlyList<SyncDaemonStatus> Daemons() => [];
}

/// <summary>A running sync daemon as `ipvsadm -L --daemon` prints it (list_daemon), defaults filled in.</summary>
public sealed record SyncDaemonStatus(SyncDaemonRole Role, string Interface, int SyncId, int MaxLength, IPAddress Group, int Port, int Ttl)
{
    /// <summary>"backup sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)".</summary>
    public string Line => string.Create(CultureInfo.InvariantCulture,
        $"{(Role == SyncDaemonRole.Master ? "master" : "backup")} sync daemon (mcast={Interface}, syncid={SyncId}, maxlen={MaxLength}, group={Group}, port={Port}, ttl={Ttl})\n");
}

/// <summary>
/// Runs ipvsadm command lines against a <see cref="IIpvsBackend"/> and answers with what ipvsadm 1.31 would print
/// and exit with. One command at a time: every call holds one lock, so changes are serialised and a listing never
/// sees half of one. Rule changes are validated first (<see cref="RuleSetEditor"/>) and then published whole;
/// -R applies all its lines as one change or none of them.
/// </summary>
public sealed class IpvsadmExecutor
{
    private readonly IIpvsBackend _backend;
    private readonly Func<IIpvsadmNames> _names;
    private readonly Lock _gate = new();

    /// <param name="backend">The running balancer.</param>
    /// <param name="names">Name lookups for listings without -n (made per request); numeric when null.</param>
    public IpvsadmExecutor(IIpvsBackend backend, Func<IIpvsadmNames>? names = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
        _names = names ?? (() => NumericNames.Instance);
    }

    /// <summary>
    /// Runs one invocation. <paramref name="program"/> is what ipvsadm's messages call the program (its argv[0]);
    /// <paramref name="stdin"/> is what -R reads.
    /// </summary>
    public IpvsadmOutcome Execute(string program, IReadOnlyList<string> args, string stdin = "")
    {
        ArgumentNullException.ThrowIfNull(program);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdin);
        IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(args, program);
        if (!parsed.IsSuccess)
        {
            return IpvsadmOutcome.Failure(parsed.Error);
        }
        IpvsadmCommand command = parsed.Value;
        lock (_gate)
        {
            return command.Kind switch
            {
                IpvsadmCommandKind.Help => IpvsadmOutcome.Output(IpvsadmPrinter.Usage(program)),
                IpvsadmCommandKind.Version => IpvsadmOutcome.Output(IpvsadmPrinter.VersionLine),
                IpvsadmCommandKind.List => List(command),
                IpvsadmCommandKind.Save => IpvsadmOutcome.Output(IpvsadmPrinter.ListAll(_backend.State(), IpvsadmPrinter.FormatOf(command), Names(command))),
                IpvsadmCommandKind.Restore => Restore(program, stdin),
                IpvsadmCommandKind.SetTimeouts => SetTimeouts(command),
                IpvsadmCommandKind.Zero => Zero(command),
                IpvsadmCommandKind.StartDaemon => DaemonOutcome(HasMixedFamilyServers(_backend.Rules)
                    ? RuleSetEditor.InvalidOperation // ip_vs_genl_new_daemon: no sync while a server of the other family exists
                    : _backend.StartDaemon(command.Daemon!)),
                IpvsadmCommandKind.StopDaemon => DaemonOutcome(_backend.StopDaemon(command.Daemon!.Role)),
                _ => Change(command),
            };
        }
    }

    private static IpvsadmOutcome DaemonOutcome(string? failure) => failure is null
        ? IpvsadmOutcome.Output("")
        : IpvsadmOutcome.Failure(new IpvsadmError(failure, IpvsadmError.FailureExitCode));

    /// <summary>Replaces the whole rule set (SIGHUP re-reading the rules file), serialised with the commands.</summary>
    public void Replace(RuleSetSpec rules)
    {
        lock (_gate)
        {
            _backend.Publish(rules);
        }
    }

    /// <summary>
    /// Applies a change computed from the live rule set (a health checker's verdict), serialised with the commands;
    /// a change that returns the same rule set publishes nothing. Throws what <see cref="IIpvsBackend.Publish"/> throws.
    /// </summary>
    public void Edit(Func<RuleSetSpec, RuleSetSpec> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_gate)
        {
            RuleSetSpec current = _backend.Rules;
            RuleSetSpec next = change(current);
            if (!ReferenceEquals(next, current))
            {
                _backend.Publish(next);
            }
        }
    }

    private IpvsadmOutcome Change(IpvsadmCommand command)
    {
        if (command.Kind is IpvsadmCommandKind.AddServer or IpvsadmCommandKind.EditServer && command.Service is { } service &&
            command.RealServer is { } server && service.IsIpv6 != server.IsIpv6 && _backend.Daemons().Count > 0)
        {
            // ip_vs_genl_set_cmd: a server of the other family is refused (EINVAL) while a sync daemon runs (sync v1
            // carries one family per entry and the backup could not place it).
            return IpvsadmOutcome.Failure(new IpvsadmError(RuleSetEditor.InvalidOperation, IpvsadmError.FailureExitCode));
        }
        IpvsadmResult<RuleSetSpec> edited = RuleSetEditor.Apply(_backend.Rules, command);
        if (!edited.IsSuccess)
        {
            return IpvsadmOutcome.Failure(edited.Error);
        }
        return Publish(edited.Value) ?? IpvsadmOutcome.Output("");
    }

    /// <summary>Null when published; otherwise why not (nothing was changed).</summary>
    private IpvsadmOutcome? Publish(RuleSetSpec rules)
    {
        try
        {
            _backend.Publish(rules);
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or IOException or System.ComponentModel.Win32Exception)
        {
            return IpvsadmOutcome.Failure(new IpvsadmError($"udr: the change was not applied: {e.Message}", IpvsadmError.FailureExitCode));
        }
    }

    private IpvsadmOutcome List(IpvsadmCommand command)
    {
        IpvsadmFormat format = IpvsadmPrinter.FormatOf(command);
        if (command.Has(IpvsadmOptions.Connection))
        {
            IReadOnlyList<IpvsConnection> connections;
            try
            {
                connections = _backend.Connections();
            }
            catch (TimeoutException e)
            {
                return IpvsadmOutcome.Failure(new IpvsadmError("udr: " + e.Message, IpvsadmError.ListFailureExitCode));
            }
            return IpvsadmOutcome.Output(IpvsadmPrinter.Connections(connections, format, Names(command)));
        }
        if (command.Service is VirtualServiceAddress address)
        {
            VirtualServiceState? service = Find(_backend.State(), address);
            return service is null
                ? IpvsadmOutcome.Failure(new IpvsadmError(RuleSetEditor.NoSuchService, IpvsadmError.ListFailureExitCode))
                : IpvsadmOutcome.Output(IpvsadmPrinter.ListService(service, format, Names(command)));
        }
        if (command.Has(IpvsadmOptions.Timeout))
        {
            return IpvsadmOutcome.Output(IpvsadmPrinter.Timeouts(_backend.Timeouts));
        }
        if (command.Has(IpvsadmOptions.Daemon))
        {
            return IpvsadmOutcome.Output(string.Concat(_backend.Daemons().Select(d => d.Line))); // list_daemon
        }
        return IpvsadmOutcome.Output(IpvsadmPrinter.ListAll(_backend.State(), format, Names(command)));
    }

    private IpvsadmOutcome SetTimeouts(IpvsadmCommand command)
    {
        _backend.SetTimeouts(command.Timeouts!);
        return IpvsadmOutcome.Output("");
    }

    private IpvsadmOutcome Zero(IpvsadmCommand command)
    {
        // RuleSetEditor checks the named service exists ("No such service") and changes nothing else.
        IpvsadmResult<RuleSetSpec> checkedRules = RuleSetEditor.Apply(_backend.Rules, command);
        if (!checkedRules.IsSuccess)
        {
            return IpvsadmOutcome.Failure(checkedRules.Error);
        }
        _backend.Zero(command.Service is VirtualServiceAddress address ? FindSpec(_backend.Rules, address) : null);
        return IpvsadmOutcome.Output("");
    }

    /// <summary>
    /// -R: every line is an ipvsadm invocation. ipvsadm applies lines one by one and carries on past a failing one;
    /// udr validates all of them against the running rules first and publishes the result as one change, so a
    /// failing line changes nothing. Its message is ipvsadm's, followed by a line saying where -R stopped.
    /// --set and -Z lines take effect after the rules.
    /// </summary>
    private IpvsadmOutcome Restore(string program, string stdin)
    {
        RuleSetSpec rules = _backend.Rules;
        var afterwards = new List<IpvsadmCommand>();
        foreach ((int lineNumber, string[] words) in RulesFile.Lines(stdin))
        {
            IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(words, program);
            if (!parsed.IsSuccess)
            {
                return StoppedAt(lineNumber, parsed.Error);
            }
            IpvsadmCommand command = parsed.Value;
            switch (command.Kind)
            {
                case IpvsadmCommandKind.AddService or IpvsadmCommandKind.EditService or IpvsadmCommandKind.DeleteService or
                    IpvsadmCommandKind.Flush or IpvsadmCommandKind.AddServer or IpvsadmCommandKind.EditServer or
                    IpvsadmCommandKind.DeleteServer or IpvsadmCommandKind.Zero:
                    IpvsadmResult<RuleSetSpec> applied = RuleSetEditor.Apply(rules, command);
                    if (!applied.IsSuccess)
                    {
                        return StoppedAt(lineNumber, applied.Error);
                    }
                    rules = applied.Value;
                    if (command.Kind == IpvsadmCommandKind.Zero)
                    {
                        afterwards.Add(command);
                    }
                    break;
                case IpvsadmCommandKind.SetTimeouts:
                    afterwards.Add(command);
                    break;
                default:
                    return StoppedAt(lineNumber, new IpvsadmError(
                        "udr: -R input can only change rules (-A -E -D -C -a -e -d), timeouts (--set) and counters (-Z)",
                        IpvsadmError.UsageExitCode));
            }
        }
        if (!ReferenceEquals(rules, _backend.Rules) && Publish(rules) is IpvsadmOutcome refused)
        {
            return refused;
        }
        foreach (IpvsadmCommand command in afterwards)
        {
            if (command.Kind == IpvsadmCommandKind.SetTimeouts)
            {
                _backend.SetTimeouts(command.Timeouts!);
            }
            else
            {
                _backend.Zero(command.Service is VirtualServiceAddress address ? FindSpec(_backend.Rules, address) : null);
            }
        }
        return IpvsadmOutcome.Output("");
    }

    private static IpvsadmOutcome StoppedAt(int lineNumber, IpvsadmError error) => new(error.ExitCode, "", string.Create(
        CultureInfo.InvariantCulture, $"{error.Message}\nudr: -R stopped at line {lineNumber} of its input; nothing was applied\n"));

    private IIpvsadmNames Names(IpvsadmCommand command) =>
        command.Has(IpvsadmOptions.Numeric) ? NumericNames.Instance : _names();

    private static VirtualServiceState? Find(IpvsState state, VirtualServiceAddress address) =>
        address.ToServiceKey() is { } key ? state.Services.FirstOrDefault(s => s.Spec.SameService(key)) : null;

    private static VirtualServiceSpec? FindSpec(RuleSetSpec rules, VirtualServiceAddress address) =>
        address.ToServiceKey() is { } key ? rules.Services.FirstOrDefault(s => s.SameService(key)) : null;

    /// <summary>True when a service has a (tunnel) server of the other address family.</summary>
    private static bool HasMixedFamilyServers(RuleSetSpec rules) =>
        rules.Services.Any(s => s.RealServers.Any(r => r.Address.Family != s.Address.Family));
}
