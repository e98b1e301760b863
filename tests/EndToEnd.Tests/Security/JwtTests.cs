using System.Net;
using System.Security.Cryptography;
using Mesh.Testing;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// JWT bearer tokens from an issuer whose public key the control plane is given (as an OIDC provider's would be):
/// accepted when signed by that key for this audience and unexpired, the user from <c>sub</c> and the roles from
/// <c>groups</c>; refused with 401 otherwise. The keys are made here; nothing leaves the machine.
/// </summary>
public sealed class JwtTests : IAsyncLifetime
{
    private const string Issuer = "https://issuer.mesh.test";
    private const string Audience = "mesh";
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private readonly RSA _issuerKey = RSA.Create(2048);
    private readonly RSA _otherKey = RSA.Create(2048);
    private readonly string _keyFile = Path.Combine(Path.GetTempPath(), $"mesh-jwt-{Guid.NewGuid():N}.pem");
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync()
    {
        await File.WriteAllTextAsync(_keyFile, _issuerKey.ExportSubjectPublicKeyInfoPem(), Ct);
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync($"--jwt-issuer={Issuer}", $"--jwt-audience={Audience}", $"--jwt-key-file={_keyFile}");
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        File.Delete(_keyFile);
        _issuerKey.Dispose();
        _otherKey.Dispose();
    }

    private static string Jwt(RSA key, string subject = "carol@example.com", string audience = Audience, DateTime? expires = null, string[]? groups = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            IssuedAt = (expires ?? now.AddMinutes(10)).AddMinutes(-20),
            NotBefore = (expires ?? now.AddMinutes(10)).AddMinutes(-20),
            Expires = expires ?? now.AddMinutes(10),
            Claims = new Dictionary<string, object> { ["sub"] = subject, ["groups"] = groups ?? ["mesh:policy-editor"] },
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(key), SecurityAlgorithms.RsaSha256),
        });
    }

    private const string Policy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: by-jwt, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: backend } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: frontend } } ]
        """;

    [Fact]
    public async Task A_JWT_signed_by_the_issuers_key_is_accepted_and_its_sub_is_the_principal()
    {
        using var http = TestTokens.Http(_cp.Api, Jwt(_issuerKey));
        using var applied = await http.PutAsync("v1/policies/default/by-jwt", new StringContent(Policy, System.Text.Encoding.UTF8, "application/yaml"), Ct);
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);
        Assert.Equal("carol@example.com", (await _cp.Client.GetPolicyAsync("default", "by-jwt", ct: Ct))!.AppliedBy);

        using var viewer = TestTokens.Http(_cp.Api, Jwt(_issuerKey, "dave", groups: ["mesh:viewer"]));
        using var denied = await viewer.DeleteAsync("v1/policies/default/by-jwt", Ct);
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        // The static token file still works beside JWT.
        Assert.NotNull(await _cp.Client.GetPolicyAsync("default", "by-jwt", ct: Ct));
    }

    [Fact]
    public async Task A_JWT_of_another_key_an_expired_one_or_one_for_another_audience_is_401()
    {
        foreach (var (what, token) in new[]
                 {
                     ("another key", Jwt(_otherKey)),
                     ("expired", Jwt(_issuerKey, expires: DateTime.UtcNow.AddMinutes(-10))),
                     ("another audience", Jwt(_issuerKey, audience: "someone-else")),
                 })
        {
            using var http = TestTokens.Http(_cp.Api, token);
            using var response = await http.GetAsync("v1/policies", Ct);
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what}: {(int)response.StatusCode}");
            Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
    }
}
