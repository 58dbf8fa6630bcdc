namespace UserspaceDr.Node;

/// <summary>
/// A request the node module refuses (bad address, unknown interface, not root, …) or a change it could not make.
/// Whoever catches it reports <see cref="Exception.Message"/> as one clear line; nothing is left half-applied.
/// </summary>
public class NodeException : Exception
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
