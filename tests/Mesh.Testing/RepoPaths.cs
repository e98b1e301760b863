namespace Mesh.Testing;

/// <summary>Where the repository and the built binaries are, found from the running test assembly.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    /// <summary>Release or Debug: whichever the tests themselves were built in.</summary>
    public static string Configuration { get; } =
        AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";

    public static string Binary(string project, string dll) =>
        Path.Combine(Root, "src", project, "bin", Configuration, "net10.0", dll);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no Mesh.sln above {AppContext.BaseDirectory}");
    }
}
