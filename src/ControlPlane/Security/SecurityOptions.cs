namespace Mesh.ControlPlane.Security;

/// <summary>
/// Who may call the control plane: a static token file (--token-file) and/or JWT bearer tokens from an issuer whose keys
/// are configured (--jwt-key-file) or discovered (--oidc-authority). With neither, every API call is refused.
/// </summary>
public sealed record SecurityOptions
{
    /// <summary>Kubernetes' static token file format (<see cref="Mesh.Contracts.Security.StaticTokenFile"/>); re-read when it changes.</summary>
    public string? TokenFile { get; init; }
    /// <summary>Accepted <c>iss</c> values (--jwt-issuer, comma-separated). Default: the OIDC authority's.</summary>
    public IReadOnlyList<string> JwtIssuers { get; init; } = [];
    /// <summary>The <c>aud</c> a token must carry (--jwt-audience); required with JWT, so a token minted for another service is refused.</summary>
    public string? JwtAudience { get; init; }
    /// <summary>PEM public keys (RSA or EC, several allowed) that sign the tokens (--jwt-key-file).</summary>
    public string? JwtKeyFile { get; init; }
    /// <summary>An OIDC provider whose discovery document gives the issuer and keys (--oidc-authority).</summary>
    public string? OidcAuthority { get; init; }
    /// <summary>The claim naming the user (--jwt-username-claim). Default <c>sub</c>.</summary>
    public string JwtUsernameClaim { get; init; } = "sub";
    /// <summary>The claim listing the groups, i.e. Mesh's roles (--jwt-groups-claim). Default <c>groups</c>.</summary>
    public string JwtGroupsClaim { get; init; } = "groups";

    /// <summary>
    /// A call without credentials acts as the administrator <see cref="AnonymousUser"/> (--insecure-allow-anonymous, with
    /// --plaintext only): for measuring what authentication costs, and for throwaway labs; never for a reachable network.
    /// </summary>
    public bool AllowAnonymous { get; init; }

    public const string AnonymousUser = "system:anonymous";

    public bool JwtEnabled => JwtKeyFile is not null || OidcAuthority is not null;

    public static SecurityOptions From(IConfiguration config)
    {
        string? Get(string option, string variable) => (config[option] ?? config[variable]) is { Length: > 0 } v ? v : null;
        var o = new SecurityOptions
        {
            TokenFile = Get("token-file", "MESH_TOKEN_FILE"),
            JwtIssuers = Get("jwt-issuer", "MESH_JWT_ISSUER")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [],
            JwtAudience = Get("jwt-audience", "MESH_JWT_AUDIENCE"),
            JwtKeyFile = Get("jwt-key-file", "MESH_JWT_KEY_FILE"),
            OidcAuthority = Get("oidc-authority", "MESH_OIDC_AUTHORITY"),
            JwtUsernameClaim = Get("jwt-username-claim", "MESH_JWT_USERNAME_CLAIM") ?? "sub",
            JwtGroupsClaim = Get("jwt-groups-claim", "MESH_JWT_GROUPS_CLAIM") ?? "groups",
        };
        if (o.JwtEnabled && o.JwtAudience is null)
            throw new ArgumentException("--jwt-audience is required with --jwt-key-file or --oidc-authority: without it a token minted for any service would be accepted");
        if (o.JwtKeyFile is not null && o.OidcAuthority is null && o.JwtIssuers.Count == 0)
            throw new ArgumentException("--jwt-issuer is required with --jwt-key-file (the iss a token must carry)");
        if (!o.JwtEnabled && (o.JwtIssuers.Count > 0 || o.JwtAudience is not null))
            throw new ArgumentException("--jwt-issuer and --jwt-audience need --jwt-key-file or --oidc-authority (the keys that sign the tokens)");
        return o;
    }
}
