using Mesh.Contracts.Security;

namespace Mesh.Bench;

/// <summary>
/// The bench's control planes authenticate as every control plane does: one static token file per bench process with an
/// administrator's token, which the API clients and the simulated agents (told through MESH_TOKEN) send.
/// </summary>
internal static class BenchTokens
{
    private static readonly Lazy<(string File, string Admin)> Written = new(() =>
    {
        var admin = Environment.GetEnvironmentVariable("MESH_TOKEN") is { Length: > 0 } given ? given : StaticTokenFile.NewToken();
        var directory = Directory.CreateTempSubdirectory("mesh-bench-tokens-").FullName;
        var path = Path.Combine(directory, "tokens.csv");
        System.IO.File.WriteAllText(path, StaticTokenFile.Line(admin, "bench", "1", ["mesh:admin"]));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(directory, recursive: true); } catch (IOException) { } };
        return (path, admin);
    });

    public static string File => Written.Value.File;

    public static string Admin => Written.Value.Admin;

    public static HttpMessageHandler Handler(HttpMessageHandler inner) => new BearerToken(() => Admin, inner);
}
