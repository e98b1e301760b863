using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Api;
using Mesh.Contracts.Management;
using Mesh.EndToEnd.Tests.ControlPlane;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.Security;

/// <summary>
/// Who may call a real control plane, over both APIs and both ports: nobody without a token but the probes, each role
/// only its permissions, every denial answered with the permission it lacks and recorded, and the principal on every
/// event the token's user whatever headers say.
/// </summary>
public sealed class AuthorizationTests(SharedControlPlane shared) : IClassFixture<SharedControlPlane>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private ControlPlaneProcess Cp => shared.Process;

    private static string Policy(string ns, string name) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: {{name}}, namespace: {{ns}} }
        spec:
          endpointSelector: { matchLabels: { app: backend } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: frontend } } ]
        """;

    private const string Clusterwide = """
        apiVersion: cilium.io/v2
        kind: CiliumClusterwideNetworkPolicy
        metadata: { name: everywhere }
        spec:
          endpointSelector: { matchLabels: { app: backend } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: frontend } } ]
        """;

    private static StringContent Yaml(string text) => new(text, Encoding.UTF8, "application/yaml");

    [Fact]
    public async Task A_request_without_a_valid_token_is_401_with_WWW_Authenticate_and_only_the_probes_are_anonymous()
    {
        using var anonymous = new HttpClient { BaseAddress = Cp.Api };
        using (var read = await anonymous.GetAsync("v1/policies", Ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, read.StatusCode);
            Assert.Contains("Bearer", read.Headers.WwwAuthenticate.ToString());
        }
        using (var write = await anonymous.PutAsync("v1/policies/default/anon", Yaml(Policy("default", "anon")), Ct))
            Assert.Equal(HttpStatusCode.Unauthorized, write.StatusCode);
        using var forged = TestTokens.Http(Cp.Api, "not-a-token-of-the-file");
        using (var bad = await forged.GetAsync("v1/status", Ct)) Assert.Equal(HttpStatusCode.Unauthorized, bad.StatusCode);
        using (var health = await anonymous.GetAsync("healthz", Ct)) Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using (var ready = await anonymous.GetAsync("readyz", Ct)) Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Null(await Cp.Client.GetPolicyAsync("default", "anon", ct: Ct));
    }

    [Fact]
    public async Task An_anonymous_gRPC_call_is_UNAUTHENTICATED_on_the_management_API_and_the_agent_protocol()
    {
        using var channel = GrpcChannel.ForAddress(Cp.Grpc);
        var list = await Assert.ThrowsAsync<RpcException>(async () => await new Policies.PoliciesClient(channel).ListPoliciesAsync(new(), cancellationToken: Ct));
        Assert.Equal(StatusCode.Unauthenticated, list.StatusCode);

        using var sync = new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: Ct);
        // The refusal may come back before the watch is written: the write then fails as Cancelled, and the
        // call's own status is what the read reports.
        try { await sync.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-anon" } }, Ct); }
        catch (RpcException) { }
        var watch = await Assert.ThrowsAsync<RpcException>(async () => await sync.ResponseStream.MoveNext(Ct));
        Assert.Equal(StatusCode.Unauthenticated, watch.StatusCode);
    }

    [Fact]
    public async Task A_viewer_write_is_403_naming_the_permission_and_the_denial_is_listed_for_an_admin()
    {
        using var viewer = TestTokens.Http(Cp.Api, TestTokens.Viewer);
        using (var read = await viewer.GetAsync("v1/policies", Ct)) Assert.Equal(HttpStatusCode.OK, read.StatusCode);

        using var write = await viewer.PutAsync("v1/policies/default/by-viewer", Yaml(Policy("default", "by-viewer")), Ct);
        Assert.Equal(HttpStatusCode.Forbidden, write.StatusCode);
        var problem = (await write.Content.ReadFromJsonAsync<JsonObject>(Ct))!;
        Assert.Equal("policies.write", (string?)problem["permission"]);
        Assert.Contains("policies.write", (string?)problem["title"]);

        using var channel = TestTokens.Channel(Cp.Grpc, TestTokens.Viewer);
        var overGrpc = await Assert.ThrowsAsync<RpcException>(async () => await new Policies.PoliciesClient(channel).ApplyPolicyAsync(
            new() { Namespace = "default", Name = "by-viewer", Document = Policy("default", "by-viewer") }, cancellationToken: Ct));
        Assert.Equal(StatusCode.PermissionDenied, overGrpc.StatusCode);
        Assert.Contains("policies.write", overGrpc.Status.Detail);

        // Denials are an administrator's to read, not a viewer's.
        using (var peek = await viewer.GetAsync("v1/audit/denials", Ct)) Assert.Equal(HttpStatusCode.Forbidden, peek.StatusCode);
        using var admin = TestTokens.Http(Cp.Api);
        var denials = (await admin.GetFromJsonAsync<JsonArray>("v1/audit/denials?limit=1000", Ct))!;
        var mine = denials.Select(d => d!.AsObject()).Where(d => (string?)d["principal"] == TestTokens.ViewerUser).ToList();
        Assert.Contains(mine, d => (string?)d["permission"] == "policies.write" && (string?)d["target"] == "PUT /v1/policies/default/by-viewer");
        Assert.Contains(mine, d => (string?)d["permission"] == "policies.write" && ((string?)d["target"])!.Contains("ApplyPolicy", StringComparison.Ordinal));
        Assert.Null(await Cp.Client.GetPolicyAsync("default", "by-viewer", ct: Ct));
    }

    [Fact]
    public async Task A_namespace_limited_editor_writes_its_namespace_only_never_another_nor_a_clusterwide_policy()
    {
        using var editor = TestTokens.Http(Cp.Api, TestTokens.ShopEditor);
        using (var own = await editor.PutAsync("v1/policies/shop/web", Yaml(Policy("shop", "web")), Ct))
            Assert.Equal(HttpStatusCode.OK, own.StatusCode);
        using (var other = await editor.PutAsync("v1/policies/default/web", Yaml(Policy("default", "web")), Ct))
        {
            Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
            Assert.Contains("namespace \\\"default\\\"", await other.Content.ReadAsStringAsync(Ct));
        }
        using (var everywhere = await editor.PutAsync("v1/clusterwide-policies/everywhere", Yaml(Clusterwide), Ct))
            Assert.Equal(HttpStatusCode.Forbidden, everywhere.StatusCode);
        using (var delete = await editor.DeleteAsync("v1/policies/default/anything", Ct))
            Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);

        using var channel = TestTokens.Channel(Cp.Grpc, TestTokens.ShopEditor);
        var overGrpc = await Assert.ThrowsAsync<RpcException>(async () => await new Policies.PoliciesClient(channel).ApplyPolicyAsync(
            new() { Namespace = "default", Name = "web", Document = Policy("default", "web") }, cancellationToken: Ct));
        Assert.Equal(StatusCode.PermissionDenied, overGrpc.StatusCode);
        Assert.Null(await Cp.Client.GetPolicyAsync("default", "web", ct: Ct));
        Assert.Equal(TestTokens.ShopEditorUser, (await Cp.Client.GetPolicyAsync("shop", "web", ct: Ct))!.AppliedBy);
    }

    [Fact]
    public async Task An_endpoint_registrar_registers_endpoints_but_writes_no_policy()
    {
        var registered = await MeshApiClient.Create(Cp.Api, TestTokens.Registrar).RegisterEndpointAsync(
            new Mesh.Contracts.Api.EndpointRegistration("cni", "pod-1", "node-1", "10.77.0.11", "veth-pod-1", new Dictionary<string, string> { ["app"] = "web" }), Ct);
        Assert.True(registered.Identity > 0);
        using var registrar = TestTokens.Http(Cp.Api, TestTokens.Registrar);
        using var policy = await registrar.PutAsync("v1/policies/cni/web", Yaml(Policy("cni", "web")), Ct);
        Assert.Equal(HttpStatusCode.Forbidden, policy.StatusCode);
        Assert.Contains("policies.write", await policy.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task The_principal_on_events_is_the_tokens_user_whatever_X_Mesh_Principal_says()
    {
        using var admin = TestTokens.Http(Cp.Api);
        using var request = new HttpRequestMessage(HttpMethod.Put, "v1/policies/default/forged")
        {
            Content = Yaml(Policy("default", "forged")),
            Headers = { { "X-Mesh-Principal", "mallory" }, { "X-Correlation-Id", "not a valid id; DROP TABLE" } },
        };
        using var applied = await admin.SendAsync(request, Ct);
        Assert.Equal(HttpStatusCode.OK, applied.StatusCode);

        Assert.Equal(TestTokens.AdminUser, (await Cp.Client.GetPolicyAsync("default", "forged", ct: Ct))!.AppliedBy);
        using var channel = TestTokens.Channel(Cp.Grpc);
        var history = new History.HistoryClient(channel);
        await WaitUntilAsync(async () => (await history.ListAuditAsync(new() { Stream = "policy-default/forged" }, cancellationToken: Ct)).Entries.Count > 0);
        var entry = Assert.Single((await history.ListAuditAsync(new() { Stream = "policy-default/forged" }, cancellationToken: Ct)).Entries);
        Assert.Equal(TestTokens.AdminUser, entry.Principal);
        Assert.NotEqual("not a valid id; DROP TABLE", entry.CorrelationId);
        Assert.Empty((await history.ListAuditAsync(new() { Principal = "mallory" }, cancellationToken: Ct)).Entries);
    }

    [Fact]
    public async Task The_agent_port_serves_no_REST_route()
    {
        using var http2 = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        http2.DefaultRequestHeaders.Authorization = new("Bearer", TestTokens.Admin);
        foreach (var path in new[] { "v1/status", "v1/policies", "healthz", "openapi/v1.json" })
        {
            using var response = await http2.GetAsync(new Uri(Cp.Grpc, path), Ct);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"GET {path} on the agent port: {(int)response.StatusCode}");
        }
        // Even with a Host header naming the API port: the socket decides, not the client.
        using var spoofed = new HttpRequestMessage(HttpMethod.Get, new Uri(Cp.Grpc, "v1/status")) { Headers = { Host = $"127.0.0.1:{Cp.ApiPort}" } };
        using (var answer = await http2.SendAsync(spoofed, Ct))
            Assert.True(answer.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"spoofed Host: {(int)answer.StatusCode}");
        using var api = TestTokens.Http(Cp.Api);
        using (var status = await api.GetAsync("v1/status", Ct)) Assert.Equal(HttpStatusCode.OK, status.StatusCode);
    }

    private static Task WaitUntilAsync(Func<Task<bool>> condition) => Poll.UntilAsync(condition, "the audit projection caught up", every: TimeSpan.FromMilliseconds(100));
}
