using System.Net;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Tests.EventStore;
using Mesh.ControlPlane.Tests.Projections;
using Mesh.Testing;

namespace Mesh.ControlPlane.Tests.Policies;

/// <summary>
/// A NetworkPolicy stored before NetworkPolicies and CiliumNetworkPolicies of one name were kept apart lives in the
/// stream its CiliumNetworkPolicy namesake uses now. A real control plane on such a log still reads it, deletes it by
/// its kind, and does not let the namesake silently take its place.
/// </summary>
public sealed class LegacyNetworkPolicyApiTests : IAsyncLifetime
{
    private EventStoreDatabase _db = null!;
    private ControlPlaneProcess _cp = null!;

    private const string Cilium = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress: [ { toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ] } ]
        """;

    public async ValueTask InitializeAsync()
    {
        _db = await EventStoreDatabase.CreateAsync();
        await DomainEvents.AppendAsync(_db.Store, "policy-shop/web", DomainEvents.NetworkPolicyApplied("shop", "web", "web", 81));
        _cp = new ControlPlaneProcess(_db.ConnectionString);
        await _cp.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        await _db.DisposeAsync();
    }

    [Fact]
    public async Task It_is_read_and_deleted_by_its_kind_and_its_cilium_namesake_waits_until_it_is_gone()
    {
        var stored = await _cp.Client.GetPolicyAsync("shop", "web", PolicyKind.KubernetesNetworkPolicy);
        Assert.Equal("NetworkPolicy", stored?.Kind);
        Assert.Null(await _cp.Client.GetPolicyAsync("shop", "web"));
        Assert.Null(await _cp.Client.DeletePolicyAsync("shop", "web"));   // there is no CiliumNetworkPolicy shop/web to delete

        var refused = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("shop", "web", Cilium));
        Assert.Equal(HttpStatusCode.Conflict, refused.Status);
        Assert.Contains("meshctl policy delete --kind NetworkPolicy shop/web", refused.Message);

        Assert.NotNull(await _cp.Client.DeletePolicyAsync("shop", "web", PolicyKind.KubernetesNetworkPolicy));
        Assert.Empty(await _cp.Client.ListPoliciesAsync());
        Assert.True((await _cp.Client.ApplyPolicyAsync("shop", "web", Cilium)).Changed);
        Assert.Equal("CiliumNetworkPolicy", Assert.Single(await _cp.Client.ListPoliciesAsync()).Kind);
    }
}
