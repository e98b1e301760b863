using System.Net;
using System.Text.Json.Nodes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Testing;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.ControlPlane.Tests.Policies;

/// <summary>
/// A ClusterNetworkPolicy and a CiliumClusterwideNetworkPolicy of one name are two cluster-wide policies, as a
/// NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two namespaced ones: a real control plane
/// stores, reads, lists and deletes each by its kind over REST and gRPC, shows a ClusterNetworkPolicy's tier and
/// priority, and refuses one asked for under a namespace.
/// </summary>
public sealed class ClusterNetworkPolicyApiTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;
    private GrpcChannel _channel = null!;



    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
        _channel = TestTokens.Channel(_cp.Grpc);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _cp.DisposeAsync();
    }

    private Rpc.Policies.PoliciesClient PolicyApi => new(_channel);

    private static string Listed(PolicyView p) => $"{p.Kind} {p.Namespace}/{p.Name} {p.Tier ?? "-"}/{p.Priority?.ToString() ?? "-"}";

    [Fact]
    public async Task Both_kinds_of_one_name_are_two_policies_each_read_promoted_rolled_back_and_deleted_by_kind_over_rest()
    {
        var cilium = await _cp.Client.ApplyPolicyAsync(null, "deny-db", ClusterwideDocuments.CiliumDenyDb, Ct);
        var tiered = await _cp.Client.ApplyPolicyAsync(null, "deny-db", ClusterwideDocuments.DenyDb, Ct);

        Assert.Equal(("CiliumClusterwideNetworkPolicy", "", true), (cilium.Kind, cilium.Namespace, cilium.Changed));
        Assert.Equal(("ClusterNetworkPolicy", "", true), (tiered.Kind, tiered.Namespace, tiered.Changed));
        var read = (await _cp.Client.GetPolicyAsync(null, "deny-db", PolicyKind.ClusterNetworkPolicy, Ct))!;
        Assert.Equal((tiered.Hash, "ClusterNetworkPolicy", "Admin", 10), (read.Hash, read.Kind, read.Tier, read.Priority));
        var byDefault = (await _cp.Client.GetPolicyAsync(null, "deny-db", ct: Ct))!;
        Assert.Equal((cilium.Hash, "CiliumClusterwideNetworkPolicy", null, null), (byDefault.Hash, byDefault.Kind, byDefault.Tier, byDefault.Priority));
        Assert.Equal(["CiliumClusterwideNetworkPolicy /deny-db -/-", "ClusterNetworkPolicy /deny-db Admin/10"],
            (await _cp.Client.ListPoliciesAsync(Ct)).Select(Listed).Order(StringComparer.Ordinal));

        // Any case, as kubectl takes kinds; the JSON names the tier and priority, and null for the other kind.
        using var http = TestTokens.Http(_cp.Api);
        using (var lowercase = await http.GetAsync("v1/clusterwide-policies/deny-db?kind=clusternetworkpolicy", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, lowercase.StatusCode);
            var json = JsonNode.Parse(await lowercase.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal(("Admin", 10), (json["tier"]!.GetValue<string>(), json["priority"]!.GetValue<int>()));
        }
        using (var ccnp = await http.GetAsync("v1/clusterwide-policies/deny-db?kind=ccnp", Ct))
        {
            var json = JsonNode.Parse(await ccnp.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal(("CiliumClusterwideNetworkPolicy", null, null), (json["kind"]!.GetValue<string>(), json["tier"], json["priority"]));
        }

        var promoted = (await _cp.Client.PromotePolicyAsync(null, "deny-db", PolicyKind.ClusterNetworkPolicy, Ct))!;
        Assert.Equal(("ClusterNetworkPolicy", false, tiered.Version), (promoted.Kind, promoted.Changed, promoted.Version));   // enforced already

        // Rolled back to before it was applied, the ClusterNetworkPolicy goes and its Cilium namesake stays.
        var rollback = await _cp.Client.RollbackPoliciesAsync(
            new RollbackRequest($"{cilium.Version}", "", "deny-db", "ClusterNetworkPolicy", DryRun: true), Ct);
        var change = Assert.Single(rollback.Plan);
        Assert.Equal((RollbackChange.Delete, "ClusterNetworkPolicy", "", "deny-db"), (change.Action, change.Kind, change.Namespace, change.Name));
        Assert.Empty((await _cp.Client.RollbackPoliciesAsync(
            new RollbackRequest($"{cilium.Version}", "", "deny-db", "CiliumClusterwideNetworkPolicy", DryRun: true), Ct)).Plan);

        Assert.NotNull(await _cp.Client.DeletePolicyAsync(null, "deny-db", PolicyKind.ClusterNetworkPolicy, Ct));
        Assert.Null(await _cp.Client.GetPolicyAsync(null, "deny-db", PolicyKind.ClusterNetworkPolicy, Ct));
        Assert.Null(await _cp.Client.DeletePolicyAsync(null, "deny-db", PolicyKind.ClusterNetworkPolicy, Ct));
        Assert.Equal(cilium.Hash, Assert.Single(await _cp.Client.ListPoliciesAsync(Ct)).Hash);
    }

    [Fact]
    public async Task One_put_under_a_namespace_or_asked_for_by_a_kind_of_the_other_scope_is_refused_naming_kind_and_nothing_changes()
    {
        var misplaced = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("db", "deny-db", ClusterwideDocuments.DenyDb, Ct));

        Assert.Equal(HttpStatusCode.BadRequest, misplaced.Status);
        Assert.Equal(["a ClusterNetworkPolicy has no namespace: PUT it to /v1/clusterwide-policies/deny-db"],
            misplaced.Problem!["errors"]!["kind"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Empty(await _cp.Client.ListPoliciesAsync(Ct));

        await _cp.Client.ApplyPolicyAsync(null, "deny-db", ClusterwideDocuments.DenyDb, Ct);
        using var http = TestTokens.Http(_cp.Api);
        foreach (var (method, path) in new[]
        {
            (HttpMethod.Get, "v1/clusterwide-policies/deny-db?kind=NetworkPolicy"),
            (HttpMethod.Delete, "v1/clusterwide-policies/deny-db?kind=cnp"),
            (HttpMethod.Post, "v1/clusterwide-policies/deny-db/promote?kind=AdminNetworkPolicy"),
        })
        {
            using var refused = await http.SendAsync(new HttpRequestMessage(method, path), Ct);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = JsonNode.Parse(await refused.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal(["kind"], problem["errors"]!.AsObject().Select(e => e.Key));
            Assert.Contains("is not a kind of cluster-wide policy: use " + PolicyKinds.ClusterwideChoices, problem["errors"]!["kind"]![0]!.GetValue<string>());
        }
        using (var namespaced = await http.GetAsync("v1/policies/db/deny-db?kind=ClusterNetworkPolicy", Ct))
        {
            Assert.Equal(HttpStatusCode.BadRequest, namespaced.StatusCode);
            Assert.Contains("cluster-wide policies are at /v1/clusterwide-policies/{name}", await namespaced.Content.ReadAsStringAsync(Ct));
        }
        var rollback = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.RollbackPoliciesAsync(
            new RollbackRequest("0", "", "deny-db", "NetworkPolicy", DryRun: true), Ct));
        Assert.Contains("kind", rollback.Problem!["errors"]!.AsObject().Select(e => e.Key));
        Assert.Equal("ClusterNetworkPolicy", Assert.Single(await _cp.Client.ListPoliciesAsync(Ct)).Kind);
    }

    [Fact]
    public async Task Over_grpc_a_policy_ref_names_it_by_its_kind_with_an_empty_namespace_and_the_policy_has_its_tier_and_priority()
    {
        var tiered = await PolicyApi.ApplyPolicyAsync(new() { Name = "deny-db", Document = ClusterwideDocuments.DenyDb }, cancellationToken: Ct);
        await PolicyApi.ApplyPolicyAsync(new() { Name = "deny-db", Document = ClusterwideDocuments.CiliumDenyDb }, cancellationToken: Ct);

        Assert.Equal(("ClusterNetworkPolicy", ""), (tiered.Kind, tiered.Namespace));
        var read = await PolicyApi.GetPolicyAsync(new() { Name = "deny-db", Kind = "ClusterNetworkPolicy" }, cancellationToken: Ct);
        Assert.Equal(("ClusterNetworkPolicy", tiered.Hash, "Admin", true, 10), (read.Kind, read.Hash, read.Tier, read.HasPriority, read.Priority));
        var cilium = await PolicyApi.GetPolicyAsync(new() { Name = "deny-db", Kind = "ccnp" }, cancellationToken: Ct);
        Assert.Equal(("CiliumClusterwideNetworkPolicy", "", false), (cilium.Kind, cilium.Tier, cilium.HasPriority));
        Assert.Equal(2, (await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies.Count);

        var misplaced = Violation(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.ApplyPolicyAsync(new() { Namespace = "db", Name = "deny-db", Document = ClusterwideDocuments.DenyDb }, cancellationToken: Ct)));
        Assert.Equal(("namespace", "a ClusterNetworkPolicy has no namespace: leave namespace empty"), (misplaced.Field, misplaced.Description));
        var namespaced = Violation(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.GetPolicyAsync(new() { Namespace = "db", Name = "deny-db", Kind = "ClusterNetworkPolicy" }, cancellationToken: Ct)));
        Assert.Equal(("namespace", "a ClusterNetworkPolicy has no namespace: leave namespace empty"), (namespaced.Field, namespaced.Description));
        var unknown = Violation(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.DeletePolicyAsync(new() { Name = "deny-db", Kind = "AdminNetworkPolicy" }, cancellationToken: Ct)));
        Assert.Equal("kind", unknown.Field);
        Assert.Contains(PolicyKinds.Choices, unknown.Description);

        await PolicyApi.DeletePolicyAsync(new() { Name = "deny-db", Kind = "ClusterNetworkPolicy" }, cancellationToken: Ct);
        var gone = await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.GetPolicyAsync(new() { Name = "deny-db", Kind = "ClusterNetworkPolicy" }, cancellationToken: Ct));
        Assert.Equal((StatusCode.NotFound, "no ClusterNetworkPolicy \"deny-db\""), (gone.StatusCode, gone.Status.Detail));
        Assert.Equal("CiliumClusterwideNetworkPolicy", Assert.Single((await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies).Kind);
    }

    /// <summary>The one field a refusal's google.rpc.BadRequest names, and why.</summary>
    private static BadRequest.Types.FieldViolation Violation(RpcException error)
    {
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var request = error.GetRpcStatus()?.GetDetail<BadRequest>() ?? throw new Xunit.Sdk.XunitException($"no BadRequest in {error.Status}");
        return Assert.Single(request.FieldViolations);
    }
}
