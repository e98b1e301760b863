namespace Mesh.ControlPlane.Tests.Grpc;

/// <summary>Files of the work tree, found from the test binaries by walking up to the directory holding Mesh.sln.</summary>
internal static class RepositoryPaths
{
    public static string Root { get; } = FindRoot();

    public static string AgentProtoFolder => Path.Combine(Root, "src", "Contracts", "Agent");

    public static string GrpcJsClient => Path.Combine(Root, "tests", "ControlPlane.Tests", "Grpc", "grpcjs");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException($"no Mesh.sln above {AppContext.BaseDirectory}");
    }
}
