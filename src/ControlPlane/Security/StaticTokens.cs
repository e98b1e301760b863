using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Mesh.Contracts.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// The tokens of --token-file, read again when the file changes (the lab adds node tokens while the control plane
/// runs). A lookup takes no lock: it reads the current table, swapped whole on a reload. A token the table lacks makes
/// the lookup look at the file's stamp at once (a token added a moment ago works on its first call); a known token
/// looks at most once per <see cref="RecheckEvery"/>, so a removed token stops working within it. A file that stops
/// parsing keeps the tokens read before, with a warning. Tokens are held by their SHA-256, so a lookup's timing says
/// nothing about a token's text.
/// </summary>
public sealed class StaticTokens(string? path, ILogger<StaticTokens> log)
{
    public static readonly TimeSpan RecheckEvery = TimeSpan.FromSeconds(1);

    private sealed record Table(DateTime Written, long Length, Dictionary<string, StaticToken> ByHash);

    private readonly Lock _reload = new();
    private volatile Table _table = new(default, -1, new(StringComparer.Ordinal));
    private long _nextCheck;   // Environment.TickCount64 before which a known token is taken from the table unchecked

    /// <summary>Reads the file once at start: a file that is missing or malformed stops the start, naming the problem.</summary>
    public void Load()
    {
        if (path is null) return;
        if (!File.Exists(path)) throw new ArgumentException($"--token-file: {path} does not exist");
        lock (_reload) Read(throwOnError: true);
    }

    public StaticToken? Find(string token)
    {
        if (path is null) return null;
        var hash = Hash(token);
        var found = _table.ByHash.GetValueOrDefault(hash);
        var now = Environment.TickCount64;
        if (found is not null && now < Interlocked.Read(ref _nextCheck)) return found;
        Interlocked.Exchange(ref _nextCheck, now + (long)RecheckEvery.TotalMilliseconds);
        var info = new FileInfo(path);
        if (!info.Exists || (info.LastWriteTimeUtc, info.Length) == (_table.Written, _table.Length)) return found;
        lock (_reload) Read(throwOnError: false);
        return _table.ByHash.GetValueOrDefault(hash);
    }

    private void Read(bool throwOnError)
    {
        var info = new FileInfo(path!);
        if ((info.LastWriteTimeUtc, info.Length) == (_table.Written, _table.Length)) return;   // another caller just read it
        try
        {
            var tokens = StaticTokenFile.Parse(File.ReadAllText(path!), path!);
            _table = new(info.LastWriteTimeUtc, info.Length, tokens.ToDictionary(t => Hash(t.Token), StringComparer.Ordinal));
            log.LogInformation("token file {Path}: {Count} token(s)", path, tokens.Count);
        }
        catch (Exception e) when (!throwOnError && e is FormatException or IOException)
        {
            // Read again only once the file changes (a writer midway changes it once more when it is done).
            _table = _table with { Written = info.LastWriteTimeUtc, Length = info.Length };
            log.LogWarning("token file {Path} not reloaded, keeping the tokens read before: {Problem}", path, e.Message);
        }
        catch (FormatException e) { throw new ArgumentException($"--token-file: {e.Message}", e); }
    }

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}

/// <summary>
/// <c>Authorization: Bearer TOKEN</c> against the static token file: the user is the line's user, the roles its groups.
/// No header is no result (the authorization layer then answers 401), unless anonymous calls are allowed; a token the
/// file lacks fails.
/// </summary>
public sealed class StaticTokenHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, StaticTokens tokens,
    SecurityOptions security)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "token";
    public const string NameClaim = "name";
    public const string GroupsClaim = "groups";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (BearerOf(Request) is not { } token)
            return Task.FromResult(security.AllowAnonymous
                ? Success(new StaticToken("", SecurityOptions.AnonymousUser, "", [Roles.Admin]))
                : AuthenticateResult.NoResult());
        return Task.FromResult(tokens.Find(token) is { } found ? Success(found) : AuthenticateResult.Fail("the bearer token is not in the token file"));
    }

    private static AuthenticateResult Success(StaticToken token)
    {
        var identity = new ClaimsIdentity(
            [new Claim(NameClaim, token.User), new Claim("uid", token.Uid), .. token.Groups.Select(g => new Claim(GroupsClaim, g))],
            SchemeName, NameClaim, GroupsClaim);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
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
