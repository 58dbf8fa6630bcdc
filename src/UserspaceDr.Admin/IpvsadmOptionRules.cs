using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// ipvsadm's command/option legality table (commands_v_options in ipvsadm.c) and the names its messages use.
/// Each row is one command (in <see cref="IpvsadmCommandKind"/> order), each column one option bit
/// (in <see cref="IpvsadmOptions"/> order): '+' required, 'x' illegal, '1' at most one of the '1's, ' ' optional.
/// </summary>
internal static class IpvsadmOptionRules
{
    public const int OptionCount = 34;

    /// <summary>The option names ipvsadm prints (optnames[]), indexed by option bit.</summary>
    public static readonly ImmutableArray<string> OptionNames =
    [
        "numeric", "connection", "service-address", "scheduler", "persistent", "netmask", "real-server",
        "forwarding-method", "weight", "u-threshold", "l-threshold", "mcast-interface", "timeout", "daemon",
        "stats", "rate", "thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe", "sched-flags",
        "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen", "tun-info", "tun-type", "tun-port", "tun-nocsum",
        "tun-csum", "tun-remcsum",
    ];

    /// <summary>The command names ipvsadm prints (cmdnames[]), indexed by <see cref="IpvsadmCommandKind"/>.</summary>
    public static readonly ImmutableArray<string> CommandNames =
    [
        "add-service", "edit-service", "delete-service", "flush", "list", "add-server", "delete-server",
        "edit-server", "set", "start-daemon", "stop-daemon", "restore", "save", "zero",
    ];

    // Columns:                                     0         1         2         3
    //                                              0123456789012345678901234567890123
    private static readonly ImmutableArray<string> Table =
    [
        /* add-service    */ "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
        /* edit-service   */ "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
        /* delete-service */ "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* flush          */ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* list           */ " 11xxxxxxxxx11       xxxxxxx xxxxx",
        /* add-server     */ "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
        /* delete-server  */ "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* edit-server    */ "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
        /* set            */ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* start-daemon   */ "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
        /* stop-daemon    */ "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
        /* restore        */ "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* save           */ " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        /* zero           */ "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ];

    public static string OptionName(IpvsadmOptions option) => OptionNames[System.Numerics.BitOperations.Log2((ulong)option)];

    public static string CommandName(IpvsadmCommandKind command) => CommandNames[(int)command];

    /// <summary>
    /// generic_opt_check: walks the options in bit order and reports the first missing required option,
    /// illegal option or second exclusive option, with ipvsadm's wording. Null when the combination is legal.
    /// </summary>
    public static string? Check(IpvsadmCommandKind command, IpvsadmOptions options)
    {
        string row = Table[(int)command];
        string commandName = CommandName(command);
        int firstExclusive = -1;
        for (int bit = 0; bit < OptionCount; bit++)
        {
            bool present = ((long)options & (1L << bit)) != 0;
            char rule = row[bit];
            if (!present)
            {
                if (rule == '+')
                {
                    return $"You need to supply the '{OptionNames[bit]}' option for the '{commandName}' command";
                }
                continue;
            }
            if (rule == 'x')
            {
                return $"Illegal '{OptionNames[bit]}' option with the '{commandName}' command";
            }
            if (rule == '1')
            {
                if (firstExclusive < 0)
                {
                    firstExclusive = bit;
                    continue;
                }
                return $"The option '{OptionNames[bit]}' conflicts with the '{OptionNames[firstExclusive]}' option in the '{commandName}' command";
            }
        }
        return null;
    }

    /// <summary>
    /// tunnel_opt_check (tunnel_types_v_options): per tunnel type, --tun-port and the three checksum options.
    /// </summary>
    public static string? CheckTunnel(TunnelType type, IpvsadmOptions options)
    {
        ReadOnlySpan<IpvsadmOptions> columns =
        [
            IpvsadmOptions.TunnelPort, IpvsadmOptions.TunnelNoChecksum, IpvsadmOptions.TunnelChecksum,
            IpvsadmOptions.TunnelRemoteChecksum,
        ];
        string row = type switch
        {
            TunnelType.Ipip => "xxxx",
            TunnelType.Gue => "+111",
            _ => "x11x",
        };
        string typeName = TunnelTypeName(type);
        IpvsadmOptions firstExclusive = IpvsadmOptions.None;
        for (int i = 0; i < columns.Length; i++)
        {
            IpvsadmOptions option = columns[i];
            bool present = (options & option) != 0;
            if (!present)
            {
                if (row[i] == '+')
                {
                    return $"You need to supply the '{OptionName(option)}' option for the '{typeName}' tunnel type";
                }
                continue;
            }
            if (row[i] == 'x')
            {
                return $"Illegal '{OptionName(option)}' option with the '{typeName}' tunnel type";
            }
            if (row[i] == '1')
            {
                if (firstExclusive == IpvsadmOptions.None)
                {
                    firstExclusive = option;
                    continue;
                }
                return $"The option '{OptionName(option)}' conflicts with the '{OptionName(firstExclusive)}' option in the '{typeName}' tunnel type";
            }
        }
        return null;
    }

    public static string TunnelTypeName(TunnelType type) => type switch
    {
        TunnelType.Ipip => "ipip",
        TunnelType.Gue => "gue",
        _ => "gre",
    };
}
