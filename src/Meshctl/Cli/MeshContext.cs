using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mesh.Meshctl.Cli;

/// <summary>
/// Where meshctl finds its control plane and its credentials, as kubectl finds them in a kubeconfig: a small JSON file
/// (<c>$MESH_CONFIG</c>, else <c>~/.config/mesh/config</c>) that <c>./dev up</c> writes:
/// <c>{"server": "https://127.0.0.1:7080", "token": "…", "tokenFile": "…/tokens.csv", "certificateAuthority": "…/ca.crt"}</c>.
/// The token is only ever sent to the server the file names; <c>MESH_TOKEN</c> overrides it for any server.
/// <c>tokenFile</c> is the control plane's own token file, to which the lab adds a token for each of its nodes' agents.
/// <c>certificateAuthority</c> is the CA whose certificate the server must present (kubeconfig's certificate-authority).
/// </summary>
public sealed record MeshContext(
    [property: JsonPropertyName("server")] string? Server,
    [property: JsonPropertyName("token")] string? Token,
    [property: JsonPropertyName("tokenFile")] string? TokenFile,
    [property: JsonPropertyName("certificateAuthority")] string? CertificateAuthority = null)
{
    public const string DefaultServer = "https://127.0.0.1:7080";

    public static string Path => NonEmpty(Environment.GetEnvironmentVariable("MESH_CONFIG"))
        ?? System.IO.Path.Combine(NonEmpty(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME"))
            ?? System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config"), "mesh", "config");

    /// <summary>The context file, or an empty context when there is none.</summary>
    /// <exception cref="FormatException">the file is not the JSON above</exception>
    public static MeshContext Load()
    {
        var path = Path;
        if (!File.Exists(path)) return new(null, null, null);
        try { return JsonSerializer.Deserialize<MeshContext>(File.ReadAllText(path)) ?? new(null, null, null); }
        catch (JsonException e) { throw new FormatException($"{path}: not a meshctl context file ({e.Message})"); }
    }

    /// <summary>The token for <paramref name="server"/>: $MESH_TOKEN, else this context's when the context names that server.</summary>
    public string? TokenFor(string server) =>
        NonEmpty(Environment.GetEnvironmentVariable("MESH_TOKEN")) ?? (SameServer(server) ? Token : null);

    /// <summary>The control plane's token file for <paramref name="server"/>: $MESH_TOKEN_FILE, else this context's for its server.</summary>
    public string? TokenFileFor(string server) =>
        NonEmpty(Environment.GetEnvironmentVariable("MESH_TOKEN_FILE")) ?? (SameServer(server) ? TokenFile : null);

    /// <summary>The CA to believe for <paramref name="server"/>: $MESH_CA_FILE, else this context's for its server.</summary>
    public string? CaFileFor(string server) =>
        NonEmpty(Environment.GetEnvironmentVariable("MESH_CA_FILE")) ?? (SameServer(server) ? CertificateAuthority : null);

    private bool SameServer(string server) => Server is not null && string.Equals(Server.TrimEnd('/'), server.TrimEnd('/'), StringComparison.OrdinalIgnoreCase);

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value;
}
