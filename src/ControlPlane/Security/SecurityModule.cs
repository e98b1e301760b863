using System.Globalization;
using System.Security.Cryptography;
using Grpc.AspNetCore.Server;
using Marten;
using Mesh.Contracts.Input;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.IdentityModel.Tokens;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// Front door of the control plane's own security: who is calling (a static token or a JWT), what each route and gRPC
/// method needs (<see cref="Permission"/>), what each role grants (<see cref="Roles"/>), how a refusal is answered and
/// recorded (<see cref="DenialResponses"/>), and that the agent port serves the agent protocol only.
/// </summary>
public static class SecurityModule
{
    /// <summary>Picks the scheme of each request: a bearer token shaped like a JWT goes to JwtBearer, any other to the token file.</summary>
    public const string Scheme = "mesh";
    public const string JwtScheme = JwtBearerDefaults.AuthenticationScheme;

    public static IServiceCollection AddMeshSecurity(this IServiceCollection services, SecurityOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton(sp => new StaticTokens(options.TokenFile, sp.GetRequiredService<ILogger<StaticTokens>>()));
        var authentication = services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "token file or JWT", o => o.ForwardDefaultSelector = http =>
                options.JwtEnabled && StaticTokenHandler.BearerOf(http.Request) is { } token && LooksLikeJwt(token) ? JwtScheme : StaticTokenHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, StaticTokenHandler>(StaticTokenHandler.SchemeName, null);
        if (options.JwtEnabled) authentication.AddJwtBearer(JwtScheme, o => ConfigureJwt(o, options));
        services.AddAuthorizationBuilder()
            // A route or method that names no permission is closed to everyone (and the endpoint test fails).
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().AddRequirements(new NamedPermissionRequired()).Build());
        services.AddSingleton<IAuthorizationHandler, PermissionHandler>();
        services.AddSingleton<DenialLog>();
        services.AddSingleton<DenialResponses>();
        services.AddSingleton<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler>(sp => sp.GetRequiredService<DenialResponses>());
        services.AddExceptionHandler<DenialResponses>();
        services.ConfigureMarten(o => o.Schema.For<Denial>());
        return services;
    }

    /// <summary>Only the gRPC services answer on the agent port: 404 for every REST route, before anything else runs.</summary>
    public static IApplicationBuilder UseAgentPortGate(this IApplicationBuilder app, int agentPort) =>
        app.Use(async (http, next) =>
        {
            // By the socket the request came in on, never by its Host header, which the client writes.
            if (http.Connection.LocalPort == agentPort && http.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is null)
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }
            await next(http);
        });

    /// <summary>Every request is authenticated and authorized (after the request gate, whose refusals cost nothing to answer).</summary>
    public static IApplicationBuilder UseMeshSecurity(this IApplicationBuilder app) => app.UseAuthentication().UseAuthorization();

    public static IEndpointRouteBuilder MapSecurityEndpoints(this IEndpointRouteBuilder app)
    {
        // limit is read as text: a typed parameter that fails to bind is an empty 400 that names nothing.
        app.MapGet("/v1/audit/denials", async Task<Results<Ok<IReadOnlyList<Denial>>, ValidationProblem>> (DenialLog denials, string? limit, CancellationToken ct) =>
            {
                var count = 100;
                if (limit is not null && !int.TryParse(limit, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out count))
                    return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["limit"] = [$"{InputLimits.Quote(limit)} is not a number of entries"] },
                        title: "The request is invalid");
                return TypedResults.Ok(await denials.ListAsync(Math.Clamp(count, 1, 1000), ct));
            })
            .RequirePermission(Permission.ClusterAdmin).WithTags("History");
        return app;
    }

    /// <summary>Three base64url segments, the first a JSON header (<c>eyJ</c> is <c>{"</c>): a static token never looks like it.</summary>
    public static bool LooksLikeJwt(string token) =>
        token.StartsWith("eyJ", StringComparison.Ordinal) && token.Count(c => c == '.') == 2;

    private static void ConfigureJwt(JwtBearerOptions o, SecurityOptions options)
    {
        // Claims keep the names the issuer gave them (sub, groups), not the SOAP-era URIs JwtBearer maps them to.
        o.MapInboundClaims = false;
        if (options.OidcAuthority is { } authority)
        {
            o.Authority = authority;
            o.RequireHttpsMetadata = authority.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        }
        o.TokenValidationParameters = new TokenValidationParameters
        {
            ValidateIssuer = true,
            ValidIssuers = options.JwtIssuers.Count > 0 ? options.JwtIssuers : null,
            ValidateAudience = true,
            ValidAudience = options.JwtAudience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            ClockSkew = TimeSpan.FromSeconds(30),
            IssuerSigningKeys = options.JwtKeyFile is { } file ? ReadKeys(file) : null,
            NameClaimType = options.JwtUsernameClaim,
            RoleClaimType = options.JwtGroupsClaim,
        };
    }

    /// <summary>Every PEM public key of <paramref name="path"/> (RSA or EC), so keys can be rotated by listing both.</summary>
    public static IReadOnlyList<SecurityKey> ReadKeys(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--jwt-key-file: {path} does not exist");
        var text = File.ReadAllText(path);
        var keys = new List<SecurityKey>();
        var rest = text.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var pem = rest[fields.Location].ToString();
            var der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            var rsa = RSA.Create();
            try
            {
                rsa.ImportFromPem(pem);
                keys.Add(new RsaSecurityKey(rsa) { KeyId = KeyId(der) });
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException)   // not an RSA key: an EC one
            {
                rsa.Dispose();
                var ec = ECDsa.Create();
                ec.ImportFromPem(pem);
                keys.Add(new ECDsaSecurityKey(ec) { KeyId = KeyId(der) });
            }
            rest = rest[fields.Location.End..];
        }
        return keys.Count > 0 ? keys : throw new ArgumentException($"--jwt-key-file: {path} holds no PEM public key");
    }

    private static string KeyId(byte[] der) => Convert.ToHexStringLower(SHA256.HashData(der))[..16];
}
