using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using UserspaceDr.Core.Packets;
using UserspaceDr.Core.Services;

namespace UserspaceDr.Admin;

/// <summary>
/// Rules files in ipvsadm's -R / -S format: one ipvsadm invocation per line. <see cref="Load"/> builds a rule set
/// from nothing, all or nothing; <see cref="Save"/> prints what "ipvsadm -S -n" prints for it.
/// </summary>
public static class RulesFile
{
    /// <summary>
    /// Reads <paramref name="text"/> the way "ipvsadm -R" reads stdin (config_stream.c): words split at spaces,
    /// tabs and carriage returns, any word "ipvsadm" dropped, lines without words skipped; and, as the code
    /// means to but does not quite do, '#' starts a comment to the end of the line. Each line is parsed and
    /// applied to the result of the lines before it, starting from an empty rule set. Unlike ipvsadm, which
    /// keeps what earlier lines did, the first failing line fails the whole load: "line N: message".
    /// </summary>
    public static IpvsadmResult<RuleSetSpec> Load(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        RuleSetSpec rules = RuleSetSpec.Empty;
        foreach ((int lineNumber, string[] words) in Lines(text))
        {
            IpvsadmResult<IpvsadmCommand> parsed = IpvsadmParser.Parse(words);
            IpvsadmResult<RuleSetSpec> applied = parsed.IsSuccess
                ? RuleSetEditor.Apply(rules, parsed.Value)
                : IpvsadmResult.Failure<RuleSetSpec>(parsed.Error);
            if (!applied.IsSuccess)
            {
                return IpvsadmResult.Failure<RuleSetSpec>(applied.Error with
                {
                    Message = string.Create(CultureInfo.InvariantCulture, $"line {lineNumber}: {applied.Error.Message}"),
                });
            }
            rules = applied.Value;
        }
        return IpvsadmResult.Success(rules);
    }

    /// <summary>
    /// "ipvsadm -S -n": services sorted by protocol, address, port; each followed by its real servers sorted by
    /// address, port (ipvsadm's default order, ties and quirks included, see <see cref="IpvsadmOrder"/>);
    /// one line per entry, each ending in "\n". Thresholds are not saved, as in ipvsadm.
    /// </summary>
    public static string Save(RuleSetSpec rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        return IpvsadmPrinter.ListAll(IpvsState.FromRules(rules), IpvsadmFormat.Rule | IpvsadmFormat.Numeric);
    }

    /// <summary>
    /// The words of each line of <paramref name="text"/> as "ipvsadm -R" reads them (see <see cref="Load"/>), with
    /// 1-based line numbers; lines without words are left out.
    /// </summary>
    internal static IEnumerable<(int LineNumber, string[] Words)> Lines(string text)
    {
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int comment = line.IndexOf('#', StringComparison.Ordinal);
            if (comment >= 0)
            {
                line = line[..comment];
            }
            string[] words = [.. line.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries)
                .Where(word => word != "ipvsadm")];
            if (words.Length > 0)
            {
                yield return (i + 1, words);
            }
        }
    }
}

/// <summary>
/// ipvsadm's default listing order: libipvs's ipvs_cmp_services / ipvs_cmp_dests under glibc's qsort, which is
/// a stable top-down merge sort. The comparators subtract 32-bit addresses and keep the result as an int, so
/// two addresses 2^31 or more apart compare the "wrong" way round (an address below 70.18.0.0 sorts after 198.18.0.1); kept,
/// because the point is to print what ipvsadm prints.
/// </summary>
internal static class IpvsadmOrder
{
    public static int CompareServices(VirtualServiceSpec a, VirtualServiceSpec b)
    {
        // The fwmark first (address/port services have 0), subtracted as the other fields are.
        int result = unchecked((int)(a.FirewallMark - b.FirewallMark));
        if (result == 0)
        {
            result = (int)a.Address.Family - (int)b.Address.Family;
        }
        if (result == 0)
        {
            result = (int)a.Protocol - (int)b.Protocol;
        }
        if (result == 0)
        {
            result = CompareAddresses(a.Address, b.Address);
        }
        return result != 0 ? result : a.Port - b.Port;
    }

    public static int CompareRealServers(RealServerSpec a, RealServerSpec b)
    {
        int result = CompareAddresses(a.Address, b.Address);
        return result != 0 ? result : a.Port - b.Port;
    }

    /// <summary>
    /// The address step of both comparators: IPv6 word by word, IPv4 as one word, each a host-order subtraction kept as
    /// an int. The first address's family decides, and an IPv4 address is word 0 of the union nf_inet_addr (the rest 0),
    /// which is what a mixed-family tunnel server is compared by.
    /// </summary>
    private static int CompareAddresses(InetAddress a, InetAddress b)
    {
        if (a.IsIPv4)
        {
            return unchecked((int)(a.IPv4 - UnionWord(b, 0)));
        }
        for (int i = 0; i < 4; i++)
        {
            int result = unchecked((int)(a.Word(i) - UnionWord(b, i)));
            if (result != 0)
            {
                return result;
            }
        }
        return 0;
    }

    private static uint UnionWord(InetAddress address, int index) =>
        address.IsIPv6 ? address.Word(index) : index == 0 ? address.IPv4 : 0;

    /// <summary>glibc msort: split n into n/2 and the rest, sort both, merge taking from the left on ties.</summary>
    public static T[] Sort<T>(ImmutableArray<T> items, Comparison<T> compare)
    {
        T[] sorted = [.. items];
        if (sorted.Length > 1)
        {
            MergeSort(sorted, new T[sorted.Length], 0, sorted.Length, compare);
        }
        return sorted;
    }

    private static void MergeSort<T>(T[] items, T[] scratch, int start, int count, Comparison<T> compare)
    {
        if (count <= 1)
        {
            return;
        }
        int leftCount = count / 2;
        int rightCount = count - leftCount;
        MergeSort(items, scratch, start, leftCount, compare);
        MergeSort(items, scratch, start + leftCount, rightCount, compare);
        int left = start;
        int right = start + leftCount;
        int leftEnd = right;
        int rightEnd = start + count;
        int output = 0;
        while (left < leftEnd && right < rightEnd)
        {
            scratch[output++] = compare(items[left], items[right]) <= 0 ? items[left++] : items[right++];
        }
        while (left < leftEnd)
        {
            scratch[output++] = items[left++];
        }
        // Whatever is left of the right half is already in place.
        Array.Copy(scratch, 0, items, start, output);
    }
}
