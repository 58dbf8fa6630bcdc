using System.Collections.Immutable;
using UserspaceDr.Core.Scheduling;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// Applies a parsed rule-changing command (-A -E -D -C -a -e -d, and -Z as a check) to an immutable
/// <see cref="RuleSetSpec"/>, playing the kernel's part: the same checks in the same order, failing with the
/// message libipvs's ipvs_strerror gives and ipvsadm's exit status for a kernel error (255).
/// What udr does not implement (SCTP, persistence engines) parses, and is refused here.
/// </summary>
public static class RuleSetEditor
{
    // ipvs_strerror's wording, per call and errno.
    internal const string ServiceExists = "Service already exists";
    internal const string NoSuchService = "No such service";
    internal const string ServiceNotDefined = "Service not defined";
    internal const string DestinationExists = "Destination already exists";
    internal const string NoSuchDestination = "No such destination";
    internal const string SchedulerNotFound = "Scheduler or persistence engine not found";

    // ipvs_strerror for the sync daemon calls.
    public const string DaemonRunning = "Daemon has already run";
    public const string NoDaemon = "No daemon is running";

    /// <summary>ipvs_strerror for EINVAL (e.g. a sync daemon and a server of the other family at once).</summary>
    public const string InvalidOperation = "Invalid operation.  Possibly wrong module version, address not unicast, ...";

    /// <summary>strerror(ERANGE): the kernel's answer to a lower threshold above the upper one.</summary>
    internal const string OutOfRange = "Numerical result out of range";

    public static IpvsadmResult<RuleSetSpec> Apply(RuleSetSpec rules, IpvsadmCommand command)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(command);
        if (Unsupported(command) is string unsupported)
        {
            return Fail(unsupported);
        }
        return command.Kind switch
        {
            IpvsadmCommandKind.Flush => IpvsadmResult.Success(rules with { Services = [] }), // the mark rules are not ipvsadm's to clear
            IpvsadmCommandKind.AddService => AddService(rules, command),
            IpvsadmCommandKind.EditService => EditService(rules, command),
            IpvsadmCommandKind.DeleteService => DeleteService(rules, command),
            IpvsadmCommandKind.AddServer => AddServer(rules, command),
            IpvsadmCommandKind.EditServer => EditServer(rules, command),
            IpvsadmCommandKind.DeleteServer => DeleteServer(rules, command),
            IpvsadmCommandKind.Zero => Zero(rules, command),
            _ => IpvsadmResult.Failure<RuleSetSpec>(new IpvsadmError(
                $"the '{CommandName(command.Kind)}' command does not change the rule set; udr cannot apply it here",
                IpvsadmError.UsageExitCode)),
        };
    }

    private static IpvsadmResult<RuleSetSpec> AddService(RuleSetSpec rules, IpvsadmCommand command)
    {
        VirtualServiceSpec key = Key(command);
        if (Find(rules, key) >= 0)
        {
            return Fail(ServiceExists);
        }
        if (!SchedulerFactory.IsKnown(command.Scheduler))
        {
            return Fail(SchedulerNotFound);
        }
        VirtualServiceSpec service = key with
        {
            Scheduler = command.Scheduler,
            Flags = command.SchedulerFlags,
            PersistenceTimeout = command.PersistenceTimeout,
            PersistenceNetmask = command.PersistenceNetmask,
            OnePacket = command.OnePacket,
        };
        return IpvsadmResult.Success(rules with { Services = rules.Services.Add(service) });
    }

    /// <summary>
    /// -E replaces every service setting, as ipvsadm sends them all and the kernel takes them all: an -E
    /// without -s goes back to wlc, without -p ends persistence, without -o ends one-packet scheduling.
    /// </summary>
    private static IpvsadmResult<RuleSetSpec> EditService(RuleSetSpec rules, IpvsadmCommand command)
    {
        int index = Find(rules, Key(command));
        if (index < 0)
        {
            return Fail(NoSuchService);
        }
        if (!SchedulerFactory.IsKnown(command.Scheduler))
        {
            return Fail(SchedulerNotFound);
        }
        VirtualServiceSpec edited = rules.Services[index] with
        {
            Scheduler = command.Scheduler,
            Flags = command.SchedulerFlags,
            PersistenceTimeout = command.PersistenceTimeout,
            PersistenceNetmask = command.PersistenceNetmask,
            OnePacket = command.OnePacket,
        };
        return IpvsadmResult.Success(rules with { Services = rules.Services.SetItem(index, edited) });
    }

    private static IpvsadmResult<RuleSetSpec> DeleteService(RuleSetSpec rules, IpvsadmCommand command)
    {
        int index = Find(rules, Key(command));
        return index < 0
            ? Fail(NoSuchService)
            : IpvsadmResult.Success(rules with { Services = rules.Services.RemoveAt(index) });
    }

    private static IpvsadmResult<RuleSetSpec> AddServer(RuleSetSpec rules, IpvsadmCommand command)
    {
        if (!TryFindService(rules, command, out int serviceIndex, out VirtualServiceSpec? service))
        {
            return Fail(ServiceNotDefined);
        }
        if (command.LowerThreshold > command.UpperThreshold)
        {
            return Fail(OutOfRange);
        }
        RealServerSpec server = ToRealServer(command);
        if (FindServer(service, server.Address, server.Port) >= 0)
        {
            return Fail(DestinationExists);
        }
        return Replace(rules, serviceIndex, service with { RealServers = service.RealServers.Add(server) });
    }

    /// <summary>-e, like -E, replaces every setting: weight back to 1, -g and no thresholds unless given.</summary>
    private static IpvsadmResult<RuleSetSpec> EditServer(RuleSetSpec rules, IpvsadmCommand command)
    {
        if (!TryFindService(rules, command, out int serviceIndex, out VirtualServiceSpec? service))
        {
            return Fail(ServiceNotDefined);
        }
        if (command.LowerThreshold > command.UpperThreshold)
        {
            return Fail(OutOfRange);
        }
        RealServerSpec server = ToRealServer(command);
        int index = FindServer(service, server.Address, server.Port);
        if (index < 0)
        {
            return Fail(NoSuchDestination);
        }
        return Replace(rules, serviceIndex, service with { RealServers = service.RealServers.SetItem(index, server) });
    }

    private static IpvsadmResult<RuleSetSpec> DeleteServer(RuleSetSpec rules, IpvsadmCommand command)
    {
        if (!TryFindService(rules, command, out int serviceIndex, out VirtualServiceSpec? service))
        {
            return Fail(ServiceNotDefined);
        }
        RealServerSpec server = ToRealServer(command);
        int index = FindServer(service, server.Address, server.Port);
        if (index < 0)
        {
            return Fail(NoSuchDestination);
        }
        return Replace(rules, serviceIndex, service with { RealServers = service.RealServers.RemoveAt(index) });
    }

    /// <summary>-Z changes counters only, which a rule set does not hold; a named service must still exist.</summary>
    private static IpvsadmResult<RuleSetSpec> Zero(RuleSetSpec rules, IpvsadmCommand command)
    {
        if (command.Service is not null)
        {
            if (Find(rules, Key(command)) < 0)
            {
                return Fail(NoSuchService);
            }
        }
        return IpvsadmResult.Success(rules);
    }

    /// <summary>Why udr cannot apply a command it parsed, or null when it can.</summary>
    private static string? Unsupported(IpvsadmCommand command)
    {
        if (command.Service is VirtualServiceAddress service)
        {
            switch (service.Kind)
            {
                case VirtualServiceKind.Sctp:
                    return "udr does not support SCTP services (--sctp-service); only TCP (-t), UDP (-u) and firewall marks (-f)";
            }
        }
        if (command.PersistenceEngine.Length > 0)
        {
            return $"udr does not support persistence engines (--pe {command.PersistenceEngine})";
        }
        return null;
    }

    private static string CommandName(IpvsadmCommandKind kind) => kind switch
    {
        IpvsadmCommandKind.Help => "help",
        IpvsadmCommandKind.Version => "version",
        _ => IpvsadmOptionRules.CommandName(kind),
    };

    /// <summary>The service a command names (SCTP was refused before this is asked).</summary>
    private static VirtualServiceSpec Key(IpvsadmCommand command) => command.Service!.ToServiceKey()!;

    private static RealServerSpec ToRealServer(IpvsadmCommand command)
    {
        RealServerAddress server = command.RealServer!;
        return new RealServerSpec(InetAddress.FromIPAddress(server.Address), server.Port, command.Method,
            command.Weight, command.UpperThreshold, command.LowerThreshold)
        {
            Tunnel = command.Method == ForwardingMethod.Tunnel ? new TunnelEncapsulation(command.TunnelType, command.TunnelPort, command.TunnelChecksum) : default,
        };
    }

    private static int Find(RuleSetSpec rules, VirtualServiceSpec key)
    {
        for (int i = 0; i < rules.Services.Length; i++)
        {
            if (rules.Services[i].SameService(key))
            {
                return i;
            }
        }
        return -1;
    }

    private static bool TryFindService(RuleSetSpec rules, IpvsadmCommand command, out int index,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out VirtualServiceSpec? service)
    {
        index = Find(rules, Key(command));
        service = index >= 0 ? rules.Services[index] : null;
        return service is not null;
    }

    private static int FindServer(VirtualServiceSpec service, InetAddress address, ushort port)
    {
        ImmutableArray<RealServerSpec> servers = service.RealServers;
        for (int i = 0; i < servers.Length; i++)
        {
            if (servers[i].Address == address && servers[i].Port == port)
            {
                return i;
            }
        }
        return -1;
    }

    private static IpvsadmResult<RuleSetSpec> Replace(RuleSetSpec rules, int index, VirtualServiceSpec service) =>
        IpvsadmResult.Success(rules with { Services = rules.Services.SetItem(index, service) });

    private static IpvsadmResult<RuleSetSpec> Fail(string message) =>
        IpvsadmResult.Failure<RuleSetSpec>(new IpvsadmError(message, IpvsadmError.FailureExitCode));
}
