using UserspaceDr.ControlPlane.Keepalived;

namespace UserspaceDr.ControlPlane.Health;

/// <summary>
/// One checker's verdict over time, as keepalived keeps it (check_tcp.c tcp_epilog and its siblings): one success
/// brings it up; while up, a failure is retried after <c>delay_before_retry</c> and it goes down only after
/// <c>retry</c> further failures; before its first check has run, the first failure counts at once. After a
/// verdict the next check is <c>delay_loop</c> away, for a healthy and a failed server alike.
/// </summary>
public sealed class CheckerState
{
    private readonly CheckerConfig _config;
    private int _retriesUsed;

    public CheckerState(CheckerConfig config, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        Up = !config.Alpha;
        Since = now;
        LastResult = "not checked yet";
    }

    public bool Up { get; private set; }

    /// <summary>When <see cref="Up"/> last changed (or the checker started).</summary>
    public DateTimeOffset Since { get; private set; }

    public int ConsecutiveFailures { get; private set; }

    /// <summary>How many times <see cref="Up"/> changed (up to down or down to up) since the checker started.</summary>
    public long Transitions { get; private set; }

    public string LastResult { get; private set; }

    /// <summary>The weight a misc_dynamic script gave with its last success; null when none did.</summary>
    public int? Weight { get; private set; }

    public bool HasRun { get; private set; }

    /// <summary>Takes one check's result; returns whether <see cref="Up"/> changed and how long until the next check.</summary>
    public (bool Changed, TimeSpan Next) Record(ProbeResult result, DateTimeOffset now)
    {
        bool wasUp = Up;
        bool hadRun = HasRun;
        HasRun = true;
        LastResult = result.Detail;
        if (result.Success)
        {
            ConsecutiveFailures = 0;
            _retriesUsed = 0;
            Up = true;
            Weight = result.Weight ?? Weight;
            return (Changed(wasUp, now), _config.DelayLoop);
        }
        ConsecutiveFailures++;
        if (wasUp && hadRun && _retriesUsed < _config.Retry)
        {
            _retriesUsed++;
            return (false, _config.DelayBeforeRetry);
        }
        _retriesUsed = 0;
        Up = false;
        return (Changed(wasUp, now), _config.DelayLoop);
    }

    private bool Changed(bool wasUp, DateTimeOffset now)
    {
        if (wasUp == Up)
        {
            return false;
        }
        Since = now;
        Transitions++;
        return true;
    }
}
