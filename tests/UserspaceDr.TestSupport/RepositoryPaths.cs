namespace UserspaceDr.Tests.TestSupport;

/// <summary>Where things are in the checkout the tests run from, wherever that checkout is.</summary>
internal static class RepositoryPaths
{
    /// <summary>The first directory above the test binaries that holds UserspaceDr.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string Sources => Path.Combine(Root, "src");

    public static string Pcaps => Path.Combine(Root, "pcaps");

    public static string LabScript => Path.Combine(Root, "tools", "lab.sh");

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory != null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "UserspaceDr.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException($"no UserspaceDr.sln above {AppContext.BaseDirectory}");
    }
}
