using System.Diagnostics.CodeAnalysis;

namespace UserspaceDr.Admin;

/// <summary>
/// A failure as ipvsadm reports it: the line it prints on stderr and the status it exits with.
/// </summary>
public sealed record IpvsadmError(string Message, int ExitCode)
{
    /// <summary>fail(2, ...): every command-line check in ipvsadm.c.</summary>
    public const int UsageExitCode = 2;

    /// <summary>
    /// ipvsadm returns -1 from main (exit status 255) for popt errors, tryhelp_exit(-1) and every error the
    /// kernel (libipvs) reports for a rule change.
    /// </summary>
    public const int FailureExitCode = 255;

    /// <summary>ipvsadm exits 1 where listing fails (e.g. -L for a service that does not exist).</summary>
    public const int ListFailureExitCode = 1;

    public override string ToString() => Message;
}

/// <summary>Either a value or the <see cref="IpvsadmError"/> that stopped it; made by <see cref="IpvsadmResult"/>.</summary>
public sealed class IpvsadmResult<T>
    where T : class
{
    internal IpvsadmResult(T? value, IpvsadmError? error)
    {
        Value = value;
        Error = error;
    }

    public T? Value { get; }

    public IpvsadmError? Error { get; }

    [MemberNotNullWhen(true, nameof(Value))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsSuccess => Error is null;
}

/// <summary>Factories for <see cref="IpvsadmResult{T}"/>.</summary>
public static class IpvsadmResult
{
    public static IpvsadmResult<T> Success<T>(T value)
        where T : class => new(value, null);

    public static IpvsadmResult<T> Failure<T>(IpvsadmError error)
        where T : class => new(null, error);
}
