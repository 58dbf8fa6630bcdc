namespace UserspaceDr.Core.Forwarding;

/// <summary>
/// Per-server path MTUs learned from frag-needed about udr's own outer packets (ip_vs_in_icmp calls
/// ipv4_update_pmtu; without an ipip handler the balancer's kernel never learns them). One per engine (worker): the
/// error is steered to the worker of the client it is about, so each worker learns from the first error its own
/// clients draw. Touched only when tunnel servers are in use and, on the per-frame path, only while it holds entries.
/// </summary>
internal sealed class PathMtuCache
{
    /// <summary>
    /// How long a reported path MTU holds: the kernel's ip_rt_mtu_expires (10 minutes), after which the route's own
    /// MTU is tried again.
    /// </summary>
    public const long LifetimeMs = 10 * 60 * 1000;

    /// <summary>At most this many servers' learned MTUs are kept; beyond it they are all forgotten (and relearned).</summary>
    public const int MaxEntries = 4096;

    private readonly record struct LearnedPathMtu(int Mtu, long ExpiresAtMs);

    private readonly Dictionary<uint, LearnedPathMtu> _learned = [];

    /// <summary>
    /// The path MTU to <paramref name="server"/>: <paramref name="routeMtu"/> lowered by what a router on the way
    /// reported, until that expires.
    /// </summary>
    public int Lookup(uint server, int routeMtu, long nowMs)
    {
        if (_learned.Count > 0 && _learned.TryGetValue(server, out LearnedPathMtu learned))
        {
            if (learned.ExpiresAtMs > nowMs)
            {
                return Math.Min(routeMtu, learned.Mtu);
            }
            _learned.Remove(server);
        }
        return routeMtu;
    }

    /// <summary>Remembers a reported MTU for <paramref name="server"/> for <see cref="LifetimeMs"/>.</summary>
    public void Learn(uint server, int mtu, long nowMs)
    {
        if (_learned.Count >= MaxEntries)
        {
            _learned.Clear();
        }
        _learned[server] = new LearnedPathMtu(mtu, nowMs + LifetimeMs);
    }
}
