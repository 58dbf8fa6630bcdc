namespace UserspaceDr.Core.Scheduling;

/// <summary>Weight arithmetic the table-building schedulers (wrr, mh) share; run at construction, never per pick.</summary>
internal static class WeightMath
{
    /// <summary>Greatest common divisor of the positive weights, 0 when there are none (ip_vs_wrr_gcd_weight,
    /// ip_vs_mh_gcd_weight; the callers decide what 0 means).</summary>
    public static int GreatestCommonDivisorOfPositive(ReadOnlySpan<int> weights)
    {
        int divisor = 0;
        foreach (int weight in weights)
        {
            if (weight > 0)
            {
                divisor = divisor > 0 ? GreatestCommonDivisor(weight, divisor) : weight;
            }
        }
        return divisor;
    }

    /// <summary>The largest weight, or 0 when all are 0 or there are none (ip_vs_wrr_max_weight, ip_vs_mh_shift_weight
    /// start their running maximum at 0).</summary>
    public static int MaxOrZero(ReadOnlySpan<int> weights)
    {
        int max = 0;
        foreach (int weight in weights)
        {
            if (weight > max)
            {
                max = weight;
            }
        }
        return max;
    }

    private static int GreatestCommonDivisor(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }
        return a;
    }
}
