using System.Net;
using System.Text.Json;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;
using Mesh.Contracts.Security;
using Mesh.Testing;
using Rpc = Mesh.Contracts.Management;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// `meshctl policy history` and `meshctl get --at` against a control plane served with TLS, as ./dev up runs it: two
/// principals create, change and delete policies; the history says who did what, when, and what each change did, and
/// the state at an earlier version shows the document the policy had then.
/// </summary>
public sealed class PolicyHistoryCommandTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly TestCertificates _tls = new();
    private ControlPlaneProcess _cp = null!;
    private long _created, _changed, _netpol, _other, _deleted;

    private static string AllowWeb(params int[] ports) => $$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: api } }
          ingress:
            - fromEndpoints: [{ matchLabels: { app: web } }]
              toPorts: [{ ports: [{{string.Join(", ", ports.Select(p => $"{{ port: \"{p}\", protocol: TCP }}"))}}] }]
        """;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync(_tls);
        var admin = _cp.Client;
        var editor = MeshApiClient.Create(_cp.Api, TestTokens.Editor, caFile: _tls.CaFile);
        _created = (await admin.ApplyPolicyAsync("shop", "allow-web", AllowWeb(80), Ct)).Version;
        _changed = (await editor.ApplyPolicyAsync("shop", "allow-web", AllowWeb(80, 8080), Ct)).Version;
        _netpol = (await admin.ApplyPolicyAsync("shop", "deny-all", """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: deny-all, namespace: shop }
            spec: { podSelector: {}, policyTypes: [Ingress] }
            """, Ct)).Version;
        _other = (await admin.ApplyPolicyAsync("default", "other", AllowWeb(443).Replace("namespace: shop", "namespace: default").Replace("name: allow-web", "name: other"), Ct)).Version;
        _deleted = (await editor.DeletePolicyAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, Ct))!.Version;
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        _tls.Dispose();
    }

    private Task<CliRun.Result> MeshctlAsync(params string[] args)
    {
        var environment = TestTokens.MeshctlEnvironment(TestTokens.Viewer);
        environment["MESH_SERVER"] = _cp.Api.ToString();
        environment["MESH_CA_FILE"] = _tls.CaFile;
        return CliRun.MeshctlAsync(environment, args);
    }

    private async Task<T> JsonOfAsync<T>(params string[] args)
    {
        var run = await MeshctlAsync([.. args, "-o", "json"]);
        Assert.True(run.ExitCode == 0, run.Output);
        return JsonSerializer.Deserialize<T>(run.Stdout, Json)!;
    }

    [Fact]
    public async Task The_history_of_a_policy_says_who_created_changed_and_deleted_it_and_what_each_change_did()
    {
        var changes = await JsonOfAsync<PolicyChange[]>("policy", "history", "shop/allow-web");
        Assert.Equal([_created, _changed, _deleted], changes.Select(c => c.Version));
        Assert.Equal([TestTokens.AdminUser, TestTokens.EditorUser, TestTokens.EditorUser], changes.Select(c => c.Principal));
        Assert.Equal(["created", "changed", "deleted"], changes.Select(c => c.Change));
        Assert.All(changes, c => Assert.Equal(("CiliumNetworkPolicy", "shop", "allow-web"), (c.Kind, c.Namespace, c.Name)));
        Assert.All(changes, c => Assert.NotEmpty(c.CorrelationId));
        Assert.Equal("ingress[0]: port 8080/TCP added", changes[1].Summary);

        var table = await MeshctlAsync("policy", "history", "shop/allow-web");
        Assert.True(table.ExitCode == 0, table.Output);
        TestContext.Current.TestOutputHelper?.WriteLine(table.Stdout);
        foreach (var text in new[] { "VERSION", "PRINCIPAL", "SUMMARY", $"v{_created}", $"v{_deleted}", TestTokens.AdminUser, TestTokens.EditorUser, "created", "changed", "deleted", "shop/allow-web" })
            Assert.Contains(text, table.Stdout, StringComparison.Ordinal);
        Assert.DoesNotContain(changes[0].CorrelationId, table.Stdout, StringComparison.Ordinal);
        var wide = await MeshctlAsync("policy", "history", "shop/allow-web", "-o", "wide");
        Assert.True(wide.ExitCode == 0, wide.Output);
        Assert.Contains("CORRELATION", wide.Stdout, StringComparison.Ordinal);
        Assert.Contains(changes[0].CorrelationId, wide.Stdout, StringComparison.Ordinal);

        Assert.Equal(new long[] { _netpol }, (await JsonOfAsync<PolicyChange[]>("policy", "history", "--kind", "NetworkPolicy", "shop/deny-all")).Select(c => c.Version));
        Assert.Equal(new long[] { _created, _changed, _netpol, _deleted }, (await JsonOfAsync<PolicyChange[]>("policy", "history", "--namespace", "shop")).Select(c => c.Version));
        Assert.Equal(new long[] { _created, _changed, _netpol, _other, _deleted }, (await JsonOfAsync<PolicyChange[]>("policy", "history", "--all")).Select(c => c.Version));
        var since = changes[1].Time.ToString("O");
        Assert.Equal(new long[] { _changed, _netpol, _other, _deleted }, (await JsonOfAsync<PolicyChange[]>("policy", "history", "--all", "--since", since)).Select(c => c.Version));
        Assert.Empty(await JsonOfAsync<PolicyChange[]>("policy", "history", "--all", "--until", changes[0].Time.ToString("O")));
    }

    [Fact]
    public async Task Get_at_a_version_shows_the_document_a_policy_had_then_and_says_when_it_did_not_exist()
    {
        var then = await JsonOfAsync<PolicyView>("get", "policy", "shop/allow-web", "--at", $"{_created}");
        Assert.Equal((_created, TestTokens.AdminUser), (then.Version, then.AppliedBy));
        Assert.DoesNotContain("8080", then.Document.ToJsonString(), StringComparison.Ordinal);
        var later = await JsonOfAsync<PolicyView>("get", "policy", "shop/allow-web", "--at", $"{_changed}");
        Assert.Contains("8080", later.Document.ToJsonString(), StringComparison.Ordinal);

        var shown = await MeshctlAsync("get", "policy", "shop/allow-web", "--at", $"{_created}");
        Assert.True(shown.ExitCode == 0, shown.Output);
        Assert.Contains($"as of v{_created}", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains("CiliumNetworkPolicy shop/allow-web", shown.Stdout, StringComparison.Ordinal);
        Assert.Contains($"v{_created}  applied by {TestTokens.AdminUser}", shown.Stdout, StringComparison.Ordinal);

        var gone = await MeshctlAsync("get", "policy", "shop/allow-web");
        Assert.Equal(1, gone.ExitCode);
        Assert.Contains($"did not exist at v{_deleted}; it was deleted at v{_deleted}", gone.Output, StringComparison.Ordinal);
        var notYet = await MeshctlAsync("get", "policy", "shop/allow-web", "--at", "0");
        Assert.Equal(1, notYet.ExitCode);
        Assert.Contains($"it was first applied at v{_created}", notYet.Output, StringComparison.Ordinal);

        var state = await JsonOfAsync<HistoricalState>("get", "state", "--at", $"{_netpol}");
        Assert.Equal(["allow-web", "deny-all"], state.Policies.OrderBy(p => p.Version).Select(p => p.Name));
        Assert.Equal(new string[] { "deny-all", "other" }, (await JsonOfAsync<PolicyView[]>("get", "policies")).Select(p => p.Name).Order());
        Assert.Empty(await JsonOfAsync<PolicyView[]>("get", "policies", "--at", "2000-01-01T00:00:00Z"));
    }

    [Fact]
    public async Task The_gRPC_history_answers_as_REST_does_and_refuses_alike()
    {
        using var channel = GrpcChannel.ForAddress(_cp.Grpc, new GrpcChannelOptions
        {
            HttpHandler = new BearerToken(() => TestTokens.Viewer, new SocketsHttpHandler().TrustingCa(_tls.CaFile)),
        });
        var history = new Rpc.History.HistoryClient(channel);
        var rpc = await history.ListPolicyHistoryAsync(new Rpc.ListPolicyHistoryRequest { Namespace = "shop", Name = "allow-web" }, cancellationToken: Ct);
        var rest = await _cp.Client.PolicyHistoryAsync("shop", "allow-web", ct: Ct);
        Assert.Equal(3, rest.Count);
        Assert.Equal(rest.Select(c => (c.Version, c.Time, c.Principal, c.CorrelationId, c.Change, c.Kind, c.Namespace, c.Name, c.Summary)),
            rpc.Changes.Select(c => (c.Version, c.Time.ToDateTimeOffset(), c.Principal, c.CorrelationId, c.Change, c.Kind, c.Namespace, c.Name, c.Summary)));

        var refused = await Assert.ThrowsAsync<RpcException>(() => history.ListPolicyHistoryAsync(new() { Limit = 5000 }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Equal(["limit"], refused.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations.Select(v => v.Field));
        var kind = await Assert.ThrowsAsync<RpcException>(() => history.ListPolicyHistoryAsync(new() { Kind = "Deployment" }, cancellationToken: Ct).ResponseAsync);
        Assert.Equal(["kind"], kind.GetRpcStatus()!.GetDetail<BadRequest>().FieldViolations.Select(v => v.Field));
    }

    [Fact]
    public async Task Bad_input_is_refused_naming_the_field_and_meshctl_exits_non_zero()
    {
        var problem = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.PolicyHistoryAsync(limit: 0, ct: Ct));
        Assert.Equal(HttpStatusCode.BadRequest, problem.Status);
        Assert.Equal(["limit"], problem.Problem!["errors"]!.AsObject().Select(e => e.Key));

        var limit = await MeshctlAsync("policy", "history", "--all", "--limit", "5000");
        Assert.Equal(1, limit.ExitCode);
        Assert.Contains("limit: \"5000\" is not a number of entries from 1 to 1000", limit.Output, StringComparison.Ordinal);
        var since = await MeshctlAsync("policy", "history", "--all", "--since", "yesterday");
        Assert.Equal(1, since.ExitCode);
        Assert.Contains("--since", since.Output, StringComparison.Ordinal);
        var which = await MeshctlAsync("policy", "history");
        Assert.Equal(1, which.ExitCode);
        Assert.Contains("--namespace", which.Output, StringComparison.Ordinal);
        var at = await MeshctlAsync("get", "policies", "--at", "soon");
        Assert.Equal(1, at.ExitCode);
        Assert.Contains("--at", at.Output, StringComparison.Ordinal);
        var beyond = await MeshctlAsync("get", "state", "--at", "999999");
        Assert.Equal(1, beyond.ExitCode);
        Assert.Contains("beyond the end of the log", beyond.Output, StringComparison.Ordinal);
    }
}
