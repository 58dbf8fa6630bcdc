using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace UserspaceDr.Linux.Host;

/// <summary>
/// Which CPUs a thread runs on: the kernel's CPU-list syntax (`0-3,8`, as taskset -c, cpuset.cpus and
/// /sys/devices/system/cpu/online write it) and sched_setaffinity for the calling thread. A data-plane worker pinned to
/// one CPU stays beside its caches, and the frames it sends keep one transmit queue (with PACKET_QDISC_BYPASS the
/// kernel picks the queue by the sending CPU), so a flow's frames cannot overtake each other between queues.
/// </summary>
public static class CpuAffinity
{
    /// <summary>CPU numbers from 0 to this − 1: the mask a sched_*affinity call passes (glibc's CPU_SETSIZE is 1024).</summary>
    public const int MaxCpus = 8192;

    /// <summary>
    /// Reads a CPU list (`0-3,8,10-11`) into CPU numbers, in the order written; ranges ascend. Throws
    /// <see cref="FormatException"/> naming what is wrong: an empty list or item, a non-number, a descending range, a CPU
    /// of <see cref="MaxCpus"/> or more, or a CPU given twice.
    /// </summary>
    public static IReadOnlyList<int> ParseList(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var cpus = new List<int>();
        var seen = new HashSet<int>();
        if (text.Trim().Length == 0)
        {
            throw new FormatException("an empty CPU list");
        }
        foreach (string item in text.Split(','))
        {
            string part = item.Trim();
            int dash = part.IndexOf('-', StringComparison.Ordinal);
            int first = Cpu(dash < 0 ? part : part[..dash], part);
            int last = dash < 0 ? first : Cpu(part[(dash + 1)..], part);
            if (last < first)
            {
                throw new FormatException($"\"{part}\": a range runs upwards");
            }
            for (int cpu = first; cpu <= last; cpu++)
            {
                if (!seen.Add(cpu))
                {
                    throw new FormatException($"CPU {cpu} is given twice");
                }
                cpus.Add(cpu);
            }
        }
        return cpus;
    }

    private static int Cpu(string text, string item)
    {
        if (text.Length == 0 || !text.All(char.IsAsciiDigit) ||
            !int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int cpu))
        {
            throw new FormatException($"\"{item}\" is not a CPU number or a range of them (like 2 or 0-3)");
        }
        if (cpu >= MaxCpus)
        {
            throw new FormatException($"CPU {cpu} is past the largest this supports ({MaxCpus - 1})");
        }
        return cpu;
    }

    /// <summary>Writes CPU numbers as a CPU list, runs of consecutive numbers as ranges (`0-3,8`).</summary>
    public static string FormatList(IEnumerable<int> cpus)
    {
        ArgumentNullException.ThrowIfNull(cpus);
        int[] sorted = [.. cpus.Distinct().Order()];
        var text = new StringBuilder();
        for (int i = 0; i < sorted.Length;)
        {
            int end = i;
            while (end + 1 < sorted.Length && sorted[end + 1] == sorted[end] + 1)
            {
                end++;
            }
            text.Append(text.Length > 0 ? "," : "").Append(sorted[i].ToString(CultureInfo.InvariantCulture));
            if (end > i)
            {
                text.Append('-').Append(sorted[end].ToString(CultureInfo.InvariantCulture));
            }
            i = end + 1;
        }
        return text.ToString();
    }

    /// <summary>The CPUs the calling thread may run on now (its affinity, within its cpuset).</summary>
    public static unsafe IReadOnlyList<int> Allowed()
    {
        byte* mask = stackalloc byte[MaxCpus / 8];
        if (Interop.SchedGetAffinity(0, MaxCpus / 8, mask) != 0)
        {
            throw new IOException($"sched_getaffinity: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");
        }
        var cpus = new List<int>();
        for (int cpu = 0; cpu < MaxCpus; cpu++)
        {
            if ((mask[cpu >> 3] & (1 << (cpu & 7))) != 0)
            {
                cpus.Add(cpu);
            }
        }
        return cpus;
    }

    /// <summary>Runs the calling thread on <paramref name="cpu"/> only; returns 0, or the errno of a refusal.</summary>
    public static unsafe int PinCurrentThread(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(cpu, MaxCpus);
        byte* mask = stackalloc byte[MaxCpus / 8];
        new Span<byte>(mask, MaxCpus / 8).Clear();
        mask[cpu >> 3] = (byte)(1 << (cpu & 7));
        return Interop.SchedSetAffinity(0, MaxCpus / 8, mask) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}
