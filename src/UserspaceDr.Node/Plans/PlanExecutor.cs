using UserspaceDr.Linux.Host;

namespace UserspaceDr.Node.Plans;

/// <summary>
/// Applies a plan in order; when a change fails, reverts the ones already made, newest first, so that the host is
/// left as it was. A failure is reported as a <see cref="PlanFailedException"/> that says what failed, what was
/// undone, and anything that could not be undone.
/// </summary>
public static class PlanExecutor
{
    public static void Apply(IReadOnlyList<NodeChange> changes, IHostSystem host, Action<NodeChange>? applied = null)
    {
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(host);
        var done = new List<NodeChange>(changes.Count);
        foreach (NodeChange change in changes)
        {
            try
            {
                change.Apply(host);
            }
            catch (HostException failure)
            {
                var undoFailures = new List<string>();
                for (int i = done.Count - 1; i >= 0; i--)
                {
                    try
                    {
                        done[i].Revert(host);
                    }
                    catch (HostException undo)
                    {
                        undoFailures.Add($"{done[i].Describe()}: {undo.Message}");
                    }
                }
                throw new PlanFailedException(change, failure, done, undoFailures);
            }
            done.Add(change);
            applied?.Invoke(change);
        }
    }
}

/// <summary>A plan stopped at <see cref="Failed"/>; <see cref="RolledBack"/> were reverted (minus <see cref="UndoFailures"/>).</summary>
public sealed class PlanFailedException : NodeException
{
    public PlanFailedException(NodeChange failed, HostException cause, IReadOnlyList<NodeChange> rolledBack, IReadOnlyList<string> undoFailures)
        : base(Compose(failed, cause, rolledBack, undoFailures), cause)
    {
        Failed = failed;
        RolledBack = rolledBack;
        UndoFailures = undoFailures;
    }

    public PlanFailedException()
    {
        Failed = null!;
        RolledBack = [];
        UndoFailures = [];
    }

    public PlanFailedException(string message) : base(message)
    {
        Failed = null!;
        RolledBack = [];
        UndoFailures = [];
    }

    public PlanFailedException(string message, Exception inner) : base(message, inner)
    {
        Failed = null!;
        RolledBack = [];
        UndoFailures = [];
    }

    public NodeChange Failed { get; }

    public IReadOnlyList<NodeChange> RolledBack { get; }

    public IReadOnlyList<string> UndoFailures { get; }

    private static string Compose(NodeChange failed, HostException cause, IReadOnlyList<NodeChange> rolledBack, IReadOnlyList<string> undoFailures)
    {
        string text = $"{failed.Describe()} failed: {cause.Message}; ";
        text += rolledBack.Count == 0 ? "nothing had been changed" : $"rolled back {rolledBack.Count} earlier change(s)";
        if (undoFailures.Count > 0)
        {
            text += $"; COULD NOT UNDO: {string.Join("; ", undoFailures)}";
        }
        return text;
    }
}
