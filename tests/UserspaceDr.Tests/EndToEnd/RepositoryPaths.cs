using UserspaceDr.Tests.Lab;

namespace UserspaceDr.Tests.EndToEnd;

/// <summary>Where things are in the repository the tests run from.</summary>
internal static class RepositoryPaths
{
    public static string Root => LabNetwork.RepositoryRoot;

    /// <summary>The published daemon (./build.sh build, or the end-to-end fixture's own publish).</summary>
    public static string Udr => Path.Combine(Root, "artifacts", "udr", "udr");
}
