using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Mesh.Contracts.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// The tokens of --token-file, read again whenever the file changes (the lab adds node tokens while the control plane
/// runs). A file that stops parsing keeps the tokens read before, with a warning. Tokens are held by their SHA-256, so
/// a lookup's timing says nothing about a token's text.
/// </summary>
public sealed class StaticTokens(string? path, ILogger<StaticTokens> log)
{
    private readonly Lock _lock = new();
    private (DateTime Written, long Length) _stamp;
    private Dictionary<string, StaticToken> _byHash = new(StringComparer.Ordinal);

    /// <summary>Reads the file once at start: a file that is missing or malformed stops the start, naming the problem.</summary>
    public void Load()
    {
        if (path is null) return;
        if (!File.Exists(path)) throw new ArgumentException($"--token-file: {path} does not exist");
        lock (_lock) Read(throwOnError: true);
    }

    public StaticToken? Find(string token)
    {
        if (path is null) return null;
        lock (_lock)
        {
            var info = new FileInfo(path);
            if (info.Exists && (info.LastWriteTimeUtc, info.Length) != _stamp) Read(throwOnError: false);
            return _byHash.GetValueOrDefault(Hash(token));
        }
    }

    private void Read(bool throwOnError)
    {
        var info = new FileInfo(path!);
        try
        {
            var tokens = StaticTokenFile.Parse(File.ReadAllText(path!), path!);
            _byHash = tokens.ToDictionary(t => Hash(t.Token), StringComparer.Ordinal);
            _stamp = (info.LastWriteTimeUtc, info.Length);
            log.LogInformation("token file {Path}: {Count} token(s)", path, tokens.Count);
        }
        catch (Exception e) when (!throwOnError && e is FormatException or IOException)
        {
            // The stamp is left as it was: the next request reads the file again (a writer may be midway).
            log.LogWarning("token file {Path} not reloaded, keeping the tokens read before: {Problem}", path, e.Message);
        }
        catch (FormatException e) { throw new ArgumentException($"--token-file: {e.Message}", e); }
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>
/// <c>Authorization: Bearer TOKEN</c> against the static token file: the user is the line's user, the roles its groups.
/// No header is no result (the authorization layer then answers 401); a token the file lacks fails.
/// </summary>
public sealed class StaticTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, StaticTokens tokens)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "token";
    public const string NameClaim = "name";
    public const string GroupsClaim = "groups";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (BearerOf(Request) is not { } token) return Task.FromResult(AuthenticateResult.NoResult());
        if (tokens.Find(token) is not { } found) return Task.FromResult(AuthenticateResult.Fail("the bearer token is not in the token file"));
        var identity = new ClaimsIdentity(
            [new Claim(NameClaim, found.User), new Claim("uid", found.Uid), .. found.Groups.Select(g => new Claim(GroupsClaim, g))],
            SchemeName, NameClaim, GroupsClaim);
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName)));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Bearer realm=\"mesh\"";
        return Task.CompletedTask;
    }

    /// <summary>The token of an <c>Authorization: Bearer</c> header, or null.</summary>
    public static string? BearerOf(HttpRequest request) =>
        request.Headers.Authorization.FirstOrDefault() is { } header && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            && header[7..].Trim() is { Length: > 0 } token ? token : null;
}
