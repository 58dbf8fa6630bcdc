using System.Diagnostics;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// A receive loop's busy polling (--busy-poll-usecs, Linux's net.core.busy_poll for udr's own loops: the balancer's
/// workers, the tunnel endpoint's queues): when a turn finds no frames within the window after the last ones, the loop
/// spins on what it reads (ring status words, or poll() with no timeout) instead of sleeping in poll(), so the next frame of a conversation in progress (the answer to the request it just forwarded, the next
/// segment of a handshake) is taken without a wake-up. On this project's machines a wake-up costs more than the rest
/// of a crossing (bench/README.md), so a request/response crossing the balancer gets faster than the kernel's own path.
/// The price is CPU: the worker spins up to the window after each frame, so a trickle of frames a window apart keeps
/// its core busy. Past the window it sleeps as before, so an idle balancer idles. Off (0) by default, as busy_poll is.
/// </summary>
public sealed class BusyPoll
{
    private readonly long _windowTicks;
    private long _lastFrames;

    /// <param name="microseconds">The window after the last frames (0: off, the worker sleeps at once).</param>
    public BusyPoll(int microseconds)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(microseconds);
        _windowTicks = microseconds * Stopwatch.Frequency / 1_000_000;
    }

    public bool Enabled => _windowTicks > 0;

    /// <summary>Turns that spun and found frames (a wake-up saved).</summary>
    public long Hits { get; private set; }

    /// <summary>Turns that spun to the end of the window and then slept.</summary>
    public long Misses { get; private set; }

    /// <summary>A turn found frames: the window starts again from now.</summary>
    public void FramesSeen()
    {
        if (_windowTicks > 0)
        {
            _lastFrames = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>
    /// A turn found none: spins until <paramref name="hasFrames"/> says some wait (true: take them, no sleep) or the
    /// window after the last frames has passed (false: sleep). False at once when off or past the window.
    /// </summary>
    public bool SpinForFrames<TSource>(TSource source, Func<TSource, bool> hasFrames)
    {
        ArgumentNullException.ThrowIfNull(hasFrames);
        long until = _lastFrames + _windowTicks;
        if (_windowTicks == 0 || Stopwatch.GetTimestamp() >= until)
        {
            return false;
        }
        do
        {
            if (hasFrames(source))
            {
                Hits++;
                return true;
            }
            Thread.SpinWait(1);
        }
        while (Stopwatch.GetTimestamp() < until);
        Misses++;
        return false;
    }
}
