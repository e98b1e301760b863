using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Security;

namespace Mesh.Testing;

/// <summary>
/// One static token file per test process, given to every control plane the tests start (<see cref="ControlPlaneProcess"/>),
/// with a token for each role. Clients use <see cref="Admin"/> unless a test says otherwise; the lab adds its node tokens
/// to the same file, as it does to the one of ./dev up.
/// </summary>
public static class TestTokens
{
    public const string AdminUser = "test-admin";
    public const string ViewerUser = "test-viewer";
    public const string ShopEditorUser = "test-editor-shop";
    public const string RegistrarUser = "test-registrar";
    public const string EditorUser = "test-editor";
    public const string NodeAUser = "node:node-a";

    public static readonly string Admin = StaticTokenFile.NewToken();
    public static readonly string Viewer = StaticTokenFile.NewToken();
    /// <summary>A policy editor limited to namespace <c>shop</c>.</summary>
    public static readonly string ShopEditor = StaticTokenFile.NewToken();
    public static readonly string Registrar = StaticTokenFile.NewToken();
    /// <summary>A policy editor of every namespace.</summary>
    public static readonly string Editor = StaticTokenFile.NewToken();
    /// <summary>The agent of node <c>node-a</c>.</summary>
    public static readonly string NodeA = StaticTokenFile.NewToken();

    private static readonly Lazy<string> Written = new(() =>
    {
        var directory = Directory.CreateTempSubdirectory("mesh-test-tokens-").FullName;
        var path = Path.Combine(directory, "tokens.csv");
        System.IO.File.WriteAllText(path, string.Concat(
            StaticTokenFile.Line(Admin, AdminUser, "1", ["mesh:admin"]),
            StaticTokenFile.Line(Viewer, ViewerUser, "2", ["mesh:viewer"]),
            StaticTokenFile.Line(ShopEditor, ShopEditorUser, "3", ["mesh:policy-editor:shop"]),
            StaticTokenFile.Line(Registrar, RegistrarUser, "4", ["mesh:endpoint-registrar"]),
            StaticTokenFile.Line(Editor, EditorUser, "6", ["mesh:policy-editor"]),
            StaticTokenFile.Line(NodeA, NodeAUser, "5", ["mesh:node:node-a"])));
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(directory, recursive: true); } catch (IOException) { } };
        return path;
    });

    /// <summary>The token file (written on first use).</summary>
    public static string File => Written.Value;

    private static readonly Lazy<string> AdminFile = new(() =>
    {
        var path = Path.Combine(Path.GetDirectoryName(File)!, "admin.token");
        System.IO.File.WriteAllText(path, Admin + "\n");
        return path;
    });

    /// <summary>A file holding the admin's token alone, as an agent's --token-file holds its node's.</summary>
    public static string AdminTokenFile => AdminFile.Value;

    /// <summary>What meshctl needs to reach a test's control plane: its token and the token file the lab adds node tokens to.</summary>
    public static Dictionary<string, string> MeshctlEnvironment(string? token = null) => new()
    {
        ["MESH_TOKEN"] = token ?? Admin,
        ["MESH_TOKEN_FILE"] = File,
        // A developer's own context file must not leak into a test.
        ["MESH_CONFIG"] = Path.Combine(Path.GetDirectoryName(File)!, "no-context"),
    };

    /// <summary>An HttpClient that sends <paramref name="token"/> (default: the admin's). An anonymous test uses a plain HttpClient.</summary>
    public static HttpClient Http(Uri baseAddress, string? token = null, TimeSpan? timeout = null) =>
        new(new BearerToken(() => token ?? Admin, new SocketsHttpHandler())) { BaseAddress = baseAddress, Timeout = timeout ?? TimeSpan.FromSeconds(100) };

    /// <summary>A gRPC channel that sends <paramref name="token"/> (default: the admin's). An anonymous test uses GrpcChannel.ForAddress.</summary>
    public static GrpcChannel Channel(Uri address, string? token = null, int maxReceiveMessageSize = AgentProtocol.MaxMessageSize) =>
        GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new BearerToken(() => token ?? Admin, new SocketsHttpHandler { EnableMultipleHttp2Connections = true }),
            MaxReceiveMessageSize = maxReceiveMessageSize,
        });
}
