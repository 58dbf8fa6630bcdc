namespace UserspaceDr.ControlPlane.Keepalived;

/// <summary>Where a keyword was read: a file and a 1-based line, as every message about it names them.</summary>
public readonly record struct ConfigPlace(string File, int Line)
{
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>
/// One statement of keepalived.conf: a keyword, its arguments on the same line, and the block that follows it in
/// braces (null when it has none). The file is read into these first (<see cref="ConfigReader"/>), with includes
/// already spliced in, and only then interpreted (<see cref="KeepalivedParser"/>).
/// </summary>
public sealed record ConfigNode(string Keyword, IReadOnlyList<string> Arguments, IReadOnlyList<ConfigNode>? Block, ConfigPlace Place);

/// <summary>A problem with the configuration at a place in it; nothing of such a configuration is applied.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(ConfigPlace place, string message)
        : base(place.Line > 0 ? $"{place}: {message}" : message)
    {
        Place = place;
    }

    public ConfigException()
    {
    }

    public ConfigException(string message)
        : base(message)
    {
    }

    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ConfigPlace Place { get; }
}

/// <summary>Something udr read and will not act on (a keyword it does not implement), at its place.</summary>
public readonly record struct ConfigWarning(ConfigPlace Place, string Message)
{
    public override string ToString() => $"{Place}: {Message}";
}
