using UserspaceDr.Core.Packets;
using UserspaceDr.Linux.Host;
using UserspaceDr.Node.Plans;

namespace UserspaceDr.Node;

/// <summary>
/// `udr node setup` and `udr node teardown`: plan, print, record, apply, and on any failure roll back. Refusals and
/// failures are thrown as <see cref="NodeException"/> (the CLI turns them into one line and exit code 2) only after
/// everything has been put back as it was.
/// </summary>
public sealed class NodeController(IHostSystem host, TextWriter output)
{
    public void Setup(NodeSetupRequest request, string statePath, bool dryRun)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(statePath);
        if (!dryRun && !host.IsRoot)
        {
            throw new NodeException("udr node setup changes kernel settings and addresses: run it as root (or look first with --dry-run)");
        }
        string? stateText = host.ReadFile(statePath);
        NodeState state = stateText == null ? new NodeState() : NodeState.FromJson(stateText, statePath);
        NodeSetupPlan plan = NodePlanner.PlanSetup(request, host);
        string mode = request.Mode == NodeMode.Tunnel ? "tun" : "dr";

        output.WriteLine($"udr node setup ({mode}) for {string.Join(", ", request.Vips)}; " +
                         $"interface facing the balancer: {plan.Interface.Name} ({plan.InterfaceReason})");
        if (plan.Changes.Count == 0)
        {
            output.WriteLine("nothing to change: this node is already set up that way");
            WriteNotes(plan.Notes);
            return;
        }
        if (dryRun)
        {
            output.WriteLine($"dry run: would make {plan.Changes.Count} change(s), in this order:");
            foreach (NodeChange change in plan.Changes)
            {
                output.WriteLine("  " + change.Describe());
            }
            WriteNotes(plan.Notes);
            output.WriteLine("dry run: nothing was changed");
            return;
        }

        // The record goes first: if this process dies half-way, teardown still knows the earlier values.
        NodeState merged = state.Merge(plan.Changes, mode, plan.Interface.Name, request.Vips);
        string stateDirectory = Path.GetDirectoryName(Path.GetFullPath(statePath)) ?? "/";
        if (!host.DirectoryExists(stateDirectory))
        {
            host.CreateDirectory(stateDirectory);
        }
        host.WriteFile(statePath, merged.ToJson());
        output.WriteLine($"applying {plan.Changes.Count} change(s) (earlier values recorded in {statePath}):");
        try
        {
            PlanExecutor.Apply(plan.Changes, host, change => output.WriteLine("  " + change.Describe()));
        }
        catch (PlanFailedException)
        {
            RestoreStateFile(statePath, stateText);
            throw;
        }
        WriteNotes(plan.Notes);
        output.WriteLine($"done; undo with: udr node teardown{StateFileOption(statePath)}");
    }

    public void Teardown(string statePath, bool dryRun)
    {
        ArgumentNullException.ThrowIfNull(statePath);
        if (!dryRun && !host.IsRoot)
        {
            throw new NodeException("udr node teardown changes kernel settings and addresses: run it as root (or look first with --dry-run)");
        }
        string? stateText = host.ReadFile(statePath);
        if (stateText == null)
        {
            output.WriteLine($"nothing to tear down: no state file at {statePath} (setup was not run, or the host rebooted since)");
            return;
        }
        NodeState state = NodeState.FromJson(stateText, statePath);
        var notes = new List<string>();
        IReadOnlyList<NodeChange> changes = NodePlanner.PlanTeardown(state, host, notes);
        if (dryRun)
        {
            output.WriteLine($"dry run: would make {changes.Count} change(s), in this order:");
            foreach (NodeChange change in changes)
            {
                output.WriteLine("  " + change.Describe());
            }
            WriteNotes(notes);
            output.WriteLine("dry run: nothing was changed");
            return;
        }
        output.WriteLine($"restoring what {statePath} recorded: {changes.Count} change(s):");
        PlanExecutor.Apply(changes, host, change => output.WriteLine("  " + change.Describe()));
        host.DeleteFile(statePath);
        WriteNotes(notes);
        output.WriteLine("done: every recorded setting is back and every added address is gone");
    }

    private void RestoreStateFile(string statePath, string? previous)
    {
        try
        {
            if (previous == null)
            {
                host.DeleteFile(statePath);
            }
            else
            {
                host.WriteFile(statePath, previous);
            }
        }
        catch (HostException e)
        {
            output.WriteLine($"warning: could not restore {statePath}: {e.Message}");
        }
    }

    private void WriteNotes(IEnumerable<string> notes)
    {
        foreach (string note in notes)
        {
            output.WriteLine("note: " + note);
        }
    }

    private static string StateFileOption(string statePath) =>
        statePath == NodeState.DefaultPath ? string.Empty : $" --state-file {statePath}";
}
