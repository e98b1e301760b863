using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Mesh.Contracts.Api;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Compilation;

/// <summary>The entry budget at the API of a real control plane on its own database.</summary>
public sealed class EntryBudgetApiTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
    }

    [Fact]
    public async Task A_policy_over_the_default_budget_is_refused_with_409_naming_identity_count_and_policy_and_nothing_is_applied()
    {
        var db = await _cp.Client.RegisterEndpointAsync(new EndpointRegistration("shop", "db-1", "node-1", "10.201.7.5", "lxcdb1",
            new Dictionary<string, string> { ["app"] = "db" }));
        // 200 CIDRs (200 node-local identities) x ports 1-65534 of any protocol (30 prefixes x 3 protocols) = 18,000 entries.
        var cidrs = string.Join(", ", Enumerable.Range(0, 200).Select(i => $"10.210.{i / 250}.{i % 250}/32"));
        var huge = $$"""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: huge, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingress:
                - fromCIDR: [ {{cidrs}} ]
                  toPorts: [ { ports: [ { port: "1", endPort: 65534, protocol: ANY } ] } ]
            """;
        var before = (await _cp.Client.StatusAsync()).Version;

        var error = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("shop", "huge", huge));

        Assert.Equal(HttpStatusCode.Conflict, error.Status);
        Assert.Equal(db.Identity, error.Problem!["identity"]!.GetValue<uint>());
        Assert.Equal(18000, error.Problem["entries"]!.GetValue<int>());
        Assert.Equal(16384, error.Problem["budget"]!.GetValue<int>());
        Assert.Contains("shop/huge ingress[0]", error.Message);
        Assert.Contains("cidr 10.210.0.0/32", error.Message);
        Assert.Null(await _cp.Client.GetPolicyAsync("shop", "huge"));
        Assert.Equal(before, (await _cp.Client.StatusAsync()).Version);

        using var http = TestTokens.Http(_cp.Api);
        var pressure = await http.GetFromJsonAsync<JsonArray>("v1/identities/pressure");
        var row = Assert.Single(pressure!);
        Assert.Equal(db.Identity, row!["identity"]!.GetValue<uint>());
        Assert.Equal(0, row["entries"]!.GetValue<int>());
    }
}
