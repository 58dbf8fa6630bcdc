namespace UserspaceDr.Linux.Host;

/// <summary>
/// A host tool or file did not do what was asked (`ip`, `nft`, `ethtool` failed, their output was unreadable, a sysctl
/// could not be written). Its message is one line an operator can act on; the CLI prints it and exits 2.
/// </summary>
public class HostException : Exception
{
    public HostException(string message) : base(message)
    {
    }

    public HostException(string message, Exception inner) : base(message, inner)
    {
    }

    public HostException()
    {
    }
}
