using System.Globalization;
using System.Text;

namespace UserspaceDr.Linux.Host;

public enum CheckStatus
{
    Pass,
    Warn,
    Fail,
}

/// <summary>One line of a checklist: what was checked, what was found, and how to fix it when it is not a pass.</summary>
public sealed record CheckResult(CheckStatus Status, string Check, string Detail, string? Fix = null)
{
    public static CheckResult Pass(string check, string detail) => new(CheckStatus.Pass, check, detail);

    public static CheckResult Warn(string check, string detail, string? fix = null) => new(CheckStatus.Warn, check, detail, fix);

    public static CheckResult Fail(string check, string detail, string? fix = null) => new(CheckStatus.Fail, check, detail, fix);
}

/// <summary>Prints checklists the same way for `udr node check` and `udr preflight`.</summary>
public static class CheckReport
{
    public static string Format(IReadOnlyList<CheckResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var text = new StringBuilder();
        foreach (CheckResult result in results)
        {
            string tag = result.Status switch
            {
                CheckStatus.Pass => "pass",
                CheckStatus.Warn => "WARN",
                _ => "FAIL",
            };
            text.Append(CultureInfo.InvariantCulture, $"[{tag}] {result.Check}: {result.Detail}\n");
            if (result.Fix != null && result.Status != CheckStatus.Pass)
            {
                text.Append(CultureInfo.InvariantCulture, $"       fix: {result.Fix}\n");
            }
        }
        text.Append(CultureInfo.InvariantCulture,
            $"{Count(results, CheckStatus.Pass)} pass, {Count(results, CheckStatus.Warn)} warn, {Count(results, CheckStatus.Fail)} fail\n");
        return text.ToString();
    }

    /// <summary>Preflight's exit code: 0 all pass, 1 warnings, 2 failures.</summary>
    public static int ExitCode(IReadOnlyList<CheckResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return results.Any(r => r.Status == CheckStatus.Fail) ? 2 : results.Any(r => r.Status == CheckStatus.Warn) ? 1 : 0;
    }

    private static int Count(IReadOnlyList<CheckResult> results, CheckStatus status) => results.Count(r => r.Status == status);
}
