using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node;

/// <summary>
/// A request the node module refuses (bad address, unknown interface, not root, …) or a change it could not make.
/// A <see cref="HostException"/>: whoever catches that reports <see cref="Exception.Message"/> as one clear line; nothing is left half-applied.
/// </summary>
public class NodeException : HostException
{
    public NodeException(string message) : base(message)
    {
    }

    public NodeException(string message, Exception inner) : base(message, inner)
    {
    }

    public NodeException()
    {
    }
}
