using System.Collections.Immutable;

namespace UserspaceDr.Admin;

/// <summary>What an option expects after it, as popt's POPT_ARG_NONE / POPT_ARG_STRING / POPT_ARGFLAG_OPTIONAL.</summary>
internal enum OptionArgument
{
    None,
    Required,
    /// <summary>Taken from the same token or the next one, unless the next one starts with '-' (-p [timeout]).</summary>
    Optional,
}

/// <summary>Every entry of ipvsadm's popt option table.</summary>
internal enum OptionId
{
    AddService, EditService, DeleteService, Clear, List, Zero, AddServer, EditServer, DeleteServer, Set, Help,
    Version, Restore, Save, StartDaemon, StopDaemon,
    TcpService, UdpService, SctpService, FwmarkService, Scheduler, Persistent, Netmask, RealServer, Masquerading,
    Ipip, Gatewaying, Weight, UpperThreshold, LowerThreshold, Numeric, Connection, McastInterface, SyncId,
    Timeout, Daemon, Stats, Rate, Thresholds, PersistentConnections, NoSort, Sort, Exact, Ipv6, OnePacket,
    PersistenceEngine, SchedulerFlags, McastGroup, McastPort, McastTtl, SyncMaxLength, TunnelInfo, TunnelType,
    TunnelPort, TunnelNoChecksum, TunnelChecksum, TunnelRemoteChecksum,
}

internal sealed record OptionSpec(string LongName, char ShortName, OptionArgument Argument, OptionId Id);

/// <summary>The popt errors ipvsadm can meet, with poptStrerror's wording.</summary>
internal enum PoptError
{
    None,
    /// <summary>POPT_ERROR_BADOPT.</summary>
    UnknownOption,
    /// <summary>POPT_ERROR_NOARG.</summary>
    MissingArgument,
    /// <summary>POPT_ERROR_UNWANTEDARG.</summary>
    UnwantedArgument,
}

/// <summary>
/// A small reimplementation of the parts of popt that ipvsadm's behaviour depends on: short-option clusters
/// ("-Ln", "-At addr", "-w5"), long options with "=value", optional arguments that never swallow a following
/// "-option", "--" ending option processing, and non-option words collected as leftovers in order.
/// </summary>
internal sealed class PoptScanner
{
    public static readonly ImmutableArray<OptionSpec> Options =
    [
        new("add-service", 'A', OptionArgument.None, OptionId.AddService),
        new("edit-service", 'E', OptionArgument.None, OptionId.EditService),
        new("delete-service", 'D', OptionArgument.None, OptionId.DeleteService),
        new("clear", 'C', OptionArgument.None, OptionId.Clear),
        new("list", 'L', OptionArgument.None, OptionId.List),
        new("list", 'l', OptionArgument.None, OptionId.List),
        new("zero", 'Z', OptionArgument.None, OptionId.Zero),
        new("add-server", 'a', OptionArgument.None, OptionId.AddServer),
        new("edit-server", 'e', OptionArgument.None, OptionId.EditServer),
        new("delete-server", 'd', OptionArgument.None, OptionId.DeleteServer),
        new("set", '\0', OptionArgument.None, OptionId.Set),
        new("help", 'h', OptionArgument.None, OptionId.Help),
        new("version", 'v', OptionArgument.None, OptionId.Version),
        new("restore", 'R', OptionArgument.None, OptionId.Restore),
        new("save", 'S', OptionArgument.None, OptionId.Save),
        new("start-daemon", '\0', OptionArgument.Required, OptionId.StartDaemon),
        new("stop-daemon", '\0', OptionArgument.Required, OptionId.StopDaemon),
        new("tcp-service", 't', OptionArgument.Required, OptionId.TcpService),
        new("udp-service", 'u', OptionArgument.Required, OptionId.UdpService),
        new("sctp-service", '\0', OptionArgument.Required, OptionId.SctpService),
        new("fwmark-service", 'f', OptionArgument.Required, OptionId.FwmarkService),
        new("scheduler", 's', OptionArgument.Required, OptionId.Scheduler),
        new("persistent", 'p', OptionArgument.Optional, OptionId.Persistent),
        new("netmask", 'M', OptionArgument.Required, OptionId.Netmask),
        new("real-server", 'r', OptionArgument.Required, OptionId.RealServer),
        new("masquerading", 'm', OptionArgument.None, OptionId.Masquerading),
        new("ipip", 'i', OptionArgument.None, OptionId.Ipip),
        new("gatewaying", 'g', OptionArgument.None, OptionId.Gatewaying),
        new("weight", 'w', OptionArgument.Required, OptionId.Weight),
        new("u-threshold", 'x', OptionArgument.Required, OptionId.UpperThreshold),
        new("l-threshold", 'y', OptionArgument.Required, OptionId.LowerThreshold),
        new("numeric", 'n', OptionArgument.None, OptionId.Numeric),
        new("connection", 'c', OptionArgument.None, OptionId.Connection),
        new("mcast-interface", '\0', OptionArgument.Required, OptionId.McastInterface),
        new("syncid", '\0', OptionArgument.Required, OptionId.SyncId),
        new("timeout", '\0', OptionArgument.None, OptionId.Timeout),
        new("daemon", '\0', OptionArgument.None, OptionId.Daemon),
        new("stats", '\0', OptionArgument.None, OptionId.Stats),
        new("rate", '\0', OptionArgument.None, OptionId.Rate),
        new("thresholds", '\0', OptionArgument.None, OptionId.Thresholds),
        new("persistent-conn", '\0', OptionArgument.None, OptionId.PersistentConnections),
        new("nosort", '\0', OptionArgument.None, OptionId.NoSort),
        new("sort", '\0', OptionArgument.None, OptionId.Sort),
        new("exact", 'X', OptionArgument.None, OptionId.Exact),
        new("ipv6", '6', OptionArgument.None, OptionId.Ipv6),
        new("ops", 'o', OptionArgument.None, OptionId.OnePacket),
        new("pe", '\0', OptionArgument.Required, OptionId.PersistenceEngine),
        new("sched-flags", 'b', OptionArgument.Required, OptionId.SchedulerFlags),
        new("mcast-group", '\0', OptionArgument.Required, OptionId.McastGroup),
        new("mcast-port", '\0', OptionArgument.Required, OptionId.McastPort),
        new("mcast-ttl", '\0', OptionArgument.Required, OptionId.McastTtl),
        new("sync-maxlen", '\0', OptionArgument.Required, OptionId.SyncMaxLength),
        new("tun-info", '\0', OptionArgument.None, OptionId.TunnelInfo),
        new("tun-type", '\0', OptionArgument.Required, OptionId.TunnelType),
        new("tun-port", '\0', OptionArgument.Required, OptionId.TunnelPort),
        new("tun-nocsum", '\0', OptionArgument.None, OptionId.TunnelNoChecksum),
        new("tun-csum", '\0', OptionArgument.None, OptionId.TunnelChecksum),
        new("tun-remcsum", '\0', OptionArgument.None, OptionId.TunnelRemoteChecksum),
    ];

    private readonly IReadOnlyList<string> _args;
    private readonly Queue<string> _leftovers = new();
    private int _next;
    private string? _clusterRest;
    private bool _onlyLeftovers;

    public PoptScanner(IReadOnlyList<string> args) => _args = args;

    /// <summary>poptBadOption: the last argument word consumed, the way ipvsadm quotes it in its messages.</summary>
    public string BadOption => _next > 0 ? _args[_next - 1] : "";

    /// <summary>
    /// The next option and its argument (null when it has none); false at the end of the words or on an
    /// error, which <paramref name="error"/> then names.
    /// </summary>
    public bool TryNext(out OptionSpec? option, out string? argument, out PoptError error)
    {
        option = null;
        argument = null;
        error = PoptError.None;
        string? longArgument = null;
        if (_clusterRest is null)
        {
            while (true)
            {
                if (_next >= _args.Count)
                {
                    return false;
                }
                string word = _args[_next++];
                if (_onlyLeftovers || word.Length < 2 || word[0] != '-')
                {
                    _leftovers.Enqueue(word);
                    continue;
                }
                if (word == "--")
                {
                    _onlyLeftovers = true;
                    continue;
                }
                if (word[1] == '-')
                {
                    string name = word[2..];
                    int equals = name.IndexOf('=', StringComparison.Ordinal);
                    if (equals >= 0)
                    {
                        longArgument = name[(equals + 1)..];
                        name = name[..equals];
                    }
                    option = FindLong(name);
                    if (option is null)
                    {
                        error = PoptError.UnknownOption;
                        return false;
                    }
                    if (longArgument is not null && option.Argument == OptionArgument.None)
                    {
                        error = PoptError.UnwantedArgument;
                        return false;
                    }
                    break;
                }
                _clusterRest = word[1..];
                break;
            }
        }
        if (option is null)
        {
            string cluster = _clusterRest!;
            _clusterRest = cluster.Length > 1 ? cluster[1..] : null;
            option = FindShort(cluster[0]);
            if (option is null)
            {
                error = PoptError.UnknownOption;
                return false;
            }
        }
        if (option.Argument == OptionArgument.None)
        {
            return true;
        }
        if (longArgument is not null)
        {
            argument = longArgument;
        }
        else if (_clusterRest is not null)
        {
            // "-w5" and "-w=5": the rest of the cluster is the argument.
            argument = _clusterRest[0] == '=' ? _clusterRest[1..] : _clusterRest;
            _clusterRest = null;
        }
        else if (_next >= _args.Count)
        {
            if (option.Argument == OptionArgument.Required)
            {
                error = PoptError.MissingArgument;
                return false;
            }
        }
        else if (option.Argument == OptionArgument.Optional && _args[_next].StartsWith('-'))
        {
            // "-p -s rr": an optional argument never swallows the next option.
        }
        else
        {
            argument = _args[_next++];
        }
        return true;
    }

    /// <summary>poptGetArg: the next non-option word, in the order they appeared (complete once scanning ended).</summary>
    public string? NextLeftover() => _leftovers.TryDequeue(out string? word) ? word : null;

    public static string Describe(PoptError error) => error switch
    {
        PoptError.UnknownOption => "unknown option",
        PoptError.MissingArgument => "missing argument",
        PoptError.UnwantedArgument => "option does not take an argument",
        _ => "",
    };

    private static OptionSpec? FindLong(string name)
    {
        foreach (OptionSpec spec in Options)
        {
            if (spec.LongName == name)
            {
                return spec;
            }
        }
        return null;
    }

    private static OptionSpec? FindShort(char name)
    {
        foreach (OptionSpec spec in Options)
        {
            if (spec.ShortName == name && name != '\0')
            {
                return spec;
            }
        }
        return null;
    }
}
