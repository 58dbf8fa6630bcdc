using System.Collections.Immutable;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Core.Scheduling;

/// <summary>
/// wrr (ip_vs_wrr.c): passes over the list with a falling required weight cw = mw, mw - di, ..., 1, choosing in each
/// pass, in list order, every server that is not overloaded and has weight &gt;= cw. di is the gcd of the positive
/// weights and mw = max weight - (di - 1), so the last pass asks for weight &gt;= 1. Weights 4,3,2 give AABABCABC.
/// </summary>
/// <remarks>
/// The kernel's mark (current position, cw) lives in one long swapped with
/// <see cref="Interlocked.CompareExchange(ref long, long, long)"/>; a pick is a pure function of the mark, so a worker
/// that loses the race recomputes from the winner's mark and concurrent picks serialize exactly. di and mw are fixed
/// per instance: a new one is built on every add/delete/edit and, as ip_vs_wrr_dest_changed does, starts at the head
/// and carries cw over (cw = mw when it exceeds mw or is 0; rounded to a multiple of di plus 1 when di &gt; 1). A new
/// service replays that hook once per server in the order they were added, as `ipvsadm -A` then `-a`... leaves it.
/// </remarks>
public sealed class WeightedRoundRobinScheduler : Scheduler
{
    /// <summary>The list head, where mark->cl points before the first pick.</summary>
    private const int Head = -1;

    /// <summary>"No stop dest yet" in the scan (the kernel's stop = NULL).</summary>
    private const int NoStop = -2;

    /// <summary>di: the gcd of the positive weights, 1 if none.</summary>
    private readonly int _weightStep;

    /// <summary>mw: the largest weight less (di - 1); 0 when every weight is 0.</summary>
    private readonly int _maxWeight;

    /// <summary>cw in the high 32 bits, the current position (index or <see cref="Head"/>) in the low 32.</summary>
    private long _mark;

    public WeightedRoundRobinScheduler(ImmutableArray<RealServer> destinations, SchedulerFlags flags, WeightedRoundRobinScheduler? previous = null)
        : base(destinations, flags)
    {
        int[] weights = new int[destinations.Length];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = destinations[i].Weight;
        }
        (_weightStep, _maxWeight) = StepAndMax(weights);
        int currentWeight;
        if (previous is not null)
        {
            currentWeight = CurrentWeightAfterChange(CurrentWeightOf(Interlocked.Read(ref previous._mark)), _weightStep, _maxWeight);
        }
        else
        {
            // ip_vs_wrr_init_svc on the empty service (cw = mw = 0), then one dest_changed per server, oldest first
            // (the kernel list is newest first, so the servers present after k adds are the last k of the list).
            currentWeight = 0;
            for (int added = 1; added <= weights.Length; added++)
            {
                (int step, int max) = StepAndMax(weights.AsSpan(weights.Length - added));
                currentWeight = CurrentWeightAfterChange(currentWeight, step, max);
            }
        }
        _mark = Pack(Head, currentWeight);
    }

    /// <summary>di (gcd of the positive weights, 1 if none) and mw (max weight - (di - 1)).</summary>
    private static (int Step, int Max) StepAndMax(ReadOnlySpan<int> weights)
    {
        int divisor = WeightMath.GreatestCommonDivisorOfPositive(weights);
        int step = divisor > 0 ? divisor : 1;
        return (step, WeightMath.MaxOrZero(weights) - (step - 1));
    }

    /// <summary>ip_vs_wrr_dest_changed's rule for cw.</summary>
    private static int CurrentWeightAfterChange(int currentWeight, int step, int max) =>
        currentWeight > max || currentWeight == 0 ? max
        : step > 1 ? (currentWeight / step * step) + 1
        : currentWeight;

    public override RealServer? Pick(in SchedulingKey key)
    {
        // ip_vs_wrr_schedule: mw == 0 means no server has a positive weight.
        if (_maxWeight == 0)
        {
            return null;
        }
        while (true)
        {
            long mark = Interlocked.Read(ref _mark);
            int found = Scan(mark, out long nextMark);
            if (Interlocked.CompareExchange(ref _mark, nextMark, mark) == mark)
            {
                return found == Head ? null : Destinations[found];
            }
        }
    }

    /// <summary>One ip_vs_wrr_schedule call: the index chosen (or <see cref="Head"/> for none) and the mark after it.
    /// A failed scan also moves the mark, as the kernel's err_over path does.</summary>
    private int Scan(long mark, out long nextMark)
    {
        ImmutableArray<RealServer> destinations = Destinations;
        int last = PositionOf(mark);
        int currentWeight = CurrentWeightOf(mark);
        int position = last;
        int stop = NoStop;
        bool lastPass = false;
        bool restarted = false;
        while (true)
        {
            for (position++; position < destinations.Length; position++)
            {
                RealServer destination = destinations[position];
                // cw >= 1 always, so weight >= cw also rules out quiesced (weight 0) servers.
                if (!destination.Overloaded && destination.Weight >= currentWeight)
                {
                    nextMark = Pack(position, currentWeight);
                    return position;
                }
                if (position == stop)
                {
                    nextMark = Pack(position, currentWeight);
                    return Head;
                }
            }
            position = Head;
            currentWeight -= _weightStep;
            if (currentWeight <= 0)
            {
                currentWeight = _maxWeight;
                // Stop when the pass for weight >= 1 has covered every server: either it ran in this call after
                // starting from a higher cw, or this call started at the head.
                if (lastPass || last == Head)
                {
                    nextMark = Pack(Head, currentWeight);
                    return Head;
                }
                restarted = true;
            }
            lastPass = currentWeight <= _weightStep;
            if (lastPass && restarted && last != Head)
            {
                // The weight >= 1 pass so far only covered the servers after 'last'; cover the rest up to 'last'.
                stop = last;
            }
        }
    }

    private static long Pack(int position, int currentWeight) => ((long)currentWeight << 32) | (uint)position;

    private static int PositionOf(long mark) => (int)mark;

    private static int CurrentWeightOf(long mark) => (int)(mark >> 32);
}
