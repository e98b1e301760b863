using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Management;
using Mesh.Testing;
using Api = Mesh.Contracts.Api;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>
/// The gRPC management API of a real control plane on its own database, driven by the generated client: every RPC,
/// its refusals as status codes, and its answers read back over REST (and REST's over gRPC), since both APIs are one
/// application layer.
/// </summary>
public sealed class ManagementGrpcTests : IAsyncLifetime
{
    private const string Node = "node-1";
    private ControlPlaneProcess _cp = null!;
    private GrpcChannel _channel = null!;

    private const string AllowFrontend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-frontend, namespace: default }
        spec:
          endpointSelector: { matchLabels: { app: backend } }
          ingress:
            - fromEndpoints: [ { matchLabels: { app: frontend } } ]
              toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ]
        """;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--node-report-interval=0.2");
        _channel = TestTokens.Channel(_cp.Grpc);
    }

    public async ValueTask DisposeAsync()
    {
        _channel.Dispose();
        await _cp.DisposeAsync();
    }

    private Policies.PoliciesClient PolicyApi => new(_channel);
    private Endpoints.EndpointsClient EndpointApi => new(_channel);
    private Identities.IdentitiesClient IdentityApi => new(_channel);
    private Nodes.NodesClient NodeApi => new(_channel);
    private History.HistoryClient HistoryApi => new(_channel);
    private Audit.AuditClient AuditApi => new(_channel);

    /// <summary>Per-call credentials: the principal on the events is the token's user (alice: the admin, bob: an editor).</summary>
    private static Metadata As(string token) => new() { { "authorization", $"Bearer {token}" } };

    private const string Alice = TestTokens.AdminUser;
    private const string Bob = TestTokens.EditorUser;

    private static EndpointRegistration Pod(string name, string app, int host) => new()
    {
        Namespace = "default", Name = name, Node = Node, Ip = $"10.201.1.{host}", Interface = $"lxc{name}",
        Labels = { ["app"] = app },
    };

    [Fact]
    public async Task A_policy_is_applied_read_listed_and_deleted_and_applying_it_again_changes_nothing()
    {
        var applied = await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = AllowFrontend },
            As(TestTokens.Admin), cancellationToken: Ct);
        var again = await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = AllowFrontend }, cancellationToken: Ct);

        Assert.True(applied.Changed);
        Assert.False(again.Changed);
        Assert.Equal((applied.Version, applied.Hash, "CiliumNetworkPolicy"), (again.Version, again.Hash, applied.Kind));
        var read = await PolicyApi.GetPolicyAsync(new() { Namespace = "default", Name = "allow-frontend" }, cancellationToken: Ct);
        Assert.Equal((applied.Version, applied.Hash, Alice, "CiliumNetworkPolicy"), (read.Version, read.Hash, read.AppliedBy, read.Kind));
        Assert.Contains("allow-frontend", read.DocumentJson);
        Assert.Equal(["default/allow-frontend"], (await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies.Select(p => $"{p.Namespace}/{p.Name}"));

        var deleted = await PolicyApi.DeletePolicyAsync(new() { Namespace = "default", Name = "allow-frontend" }, cancellationToken: Ct);

        Assert.True(deleted.Version > applied.Version);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.GetPolicyAsync(new() { Namespace = "default", Name = "allow-frontend" }, cancellationToken: Ct))).StatusCode);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.DeletePolicyAsync(new() { Namespace = "default", Name = "allow-frontend" }, cancellationToken: Ct))).StatusCode);
        Assert.Empty((await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies);
    }

    [Fact]
    public async Task An_invalid_policy_is_invalid_argument_naming_the_field_and_nothing_is_stored()
    {
        var before = (await NodeApi.GetStatusAsync(new(), cancellationToken: Ct)).Version;
        var bad = AllowFrontend.Replace("port: \"80\"", "port: \"80/tcp\"");

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = bad }, cancellationToken: Ct));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("spec.ingress[0].toPorts[0].ports[0].port", Fields(error));
        Assert.Empty((await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies);
        Assert.Equal(before, (await NodeApi.GetStatusAsync(new(), cancellationToken: Ct)).Version);
        // Where the document belongs is checked too: a cluster-wide kind under a namespace, a name the document contradicts.
        var clusterwide = AllowFrontend.Replace("kind: CiliumNetworkPolicy", "kind: CiliumClusterwideNetworkPolicy").Replace(", namespace: default", "");
        Assert.Equal(["namespace"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = clusterwide }, cancellationToken: Ct))));
        Assert.Equal(["metadata.name"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "other", Document = AllowFrontend }, cancellationToken: Ct))));
        Assert.Equal(["kind"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await PolicyApi.GetPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Kind = "Deployment" }, cancellationToken: Ct))));
    }

    [Fact]
    public async Task A_policy_over_the_entry_budget_is_failed_precondition_naming_the_identity_and_nothing_is_applied()
    {
        await using var small = await ControlPlaneProcess.StartOnNewDatabaseAsync("--entry-budget=2");
        using var channel = TestTokens.Channel(small.Grpc);
        var registered = await new Endpoints.EndpointsClient(channel).RegisterEndpointAsync(Pod("db-1", "db", 5), cancellationToken: Ct);
        const string threePorts = """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: db-ports, namespace: default }
            spec:
              endpointSelector: { matchLabels: { app: db } }
              ingress: [ { toPorts: [ { ports: [ { port: "80", protocol: TCP }, { port: "443", protocol: TCP }, { port: "5432", protocol: TCP } ] } ] } ]
            """;
        var policies = new Policies.PoliciesClient(channel);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await policies.ApplyPolicyAsync(new() { Namespace = "default", Name = "db-ports", Document = threePorts }, cancellationToken: Ct));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("entry budget", error.Status.Detail);
        var violation = Assert.Single(error.GetRpcStatus()!.GetDetail<PreconditionFailure>()!.Violations);
        Assert.Equal($"identity {registered.Identity}", violation.Subject);
        Assert.Empty((await policies.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies);
        Assert.Equal(registered.Version, (await new Nodes.NodesClient(channel).GetStatusAsync(new(), cancellationToken: Ct)).Version);
    }

    [Fact]
    public async Task An_endpoint_is_registered_under_the_identity_of_its_labels_listed_and_deleted_and_a_bad_ip_is_named()
    {
        var shorthand = Pod("web-1", "web", 5);
        shorthand.Ip = "10.1.2";
        var invalid = await Assert.ThrowsAsync<RpcException>(async () => await EndpointApi.RegisterEndpointAsync(shorthand, cancellationToken: Ct));
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Equal(["ip"], Fields(invalid));
        Assert.Empty((await EndpointApi.ListEndpointsAsync(new(), cancellationToken: Ct)).Endpoints);

        var web1 = await EndpointApi.RegisterEndpointAsync(Pod("web-1", "web", 5), cancellationToken: Ct);
        var web2 = await EndpointApi.RegisterEndpointAsync(Pod("web-2", "web", 6), cancellationToken: Ct);

        Assert.Equal(web1.Identity, web2.Identity);
        var listed = (await EndpointApi.ListEndpointsAsync(new(), cancellationToken: Ct)).Endpoints.OrderBy(e => e.Name).ToList();
        Assert.Equal(["web-1 10.201.1.5 pending", "web-2 10.201.1.6 pending"], listed.Select(e => $"{e.Name} {e.Ip} {e.Status}"));
        var identity = Assert.Single((await IdentityApi.ListIdentitiesAsync(new(), cancellationToken: Ct)).Identities);
        Assert.Equal(web1.Identity, identity.Identity_);
        Assert.Contains("k8s:app=web", identity.Labels);
        Assert.Equal(web1.Identity, Assert.Single((await IdentityApi.ListIdentityPressureAsync(new(), cancellationToken: Ct)).Identities).Identity);

        await EndpointApi.DeleteEndpointAsync(new() { Namespace = "default", Name = "web-1" }, cancellationToken: Ct);

        Assert.Equal(["web-2"], (await EndpointApi.ListEndpointsAsync(new(), cancellationToken: Ct)).Endpoints.Select(e => e.Name));
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () =>
            await EndpointApi.DeleteEndpointAsync(new() { Namespace = "default", Name = "web-1" }, cancellationToken: Ct))).StatusCode);
    }

    [Fact]
    public async Task A_node_shows_the_version_it_acked_and_its_history_the_content_hash_it_enforced()
    {
        await EndpointApi.RegisterEndpointAsync(Pod("web", "web", 5), cancellationToken: Ct);
        await using var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, Node, Ct);

        await agent.AckAsync(agent.Version, "hash-first");
        var history = await UntilAsync(() => NodeApi.GetNodeHistoryAsync(new() { Node = Node }, cancellationToken: Ct).ResponseAsync, h => h.Enforced.Count == 1);

        var enforced = Assert.Single(history.Enforced);
        Assert.Equal(((long)agent.Version, "hash-first"), (enforced.Version, enforced.ContentHash));
        var node = Assert.Single((await NodeApi.ListNodesAsync(new(), cancellationToken: Ct)).Nodes);
        Assert.Equal((Node, (long)agent.Version, true, 1), (node.Node_, node.AckedVersion, node.Connected, node.Endpoints));
        Assert.Equal("ready", Assert.Single((await EndpointApi.ListEndpointsAsync(new(), cancellationToken: Ct)).Endpoints).Status);
        var status = await NodeApi.GetStatusAsync(new(), cancellationToken: Ct);
        Assert.Equal((1, 1, 1), (status.Endpoints, status.Identities, status.Nodes));
        Assert.Equal(enforced.Version, Assert.Single((await NodeApi.GetNodeHistoryAsync(new() { Node = Node, At = enforced.Since }, cancellationToken: Ct)).Enforced).Version);
        Assert.Empty((await NodeApi.GetNodeHistoryAsync(new() { Node = Node, Until = enforced.Since }, cancellationToken: Ct)).Enforced);
    }

    [Fact]
    public async Task The_audit_trail_names_who_changed_what_and_the_state_at_a_version_is_what_was_in_force_then()
    {
        var applied = await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = AllowFrontend }, As(TestTokens.Admin), cancellationToken: Ct);
        var deleted = await PolicyApi.DeletePolicyAsync(new() { Namespace = "default", Name = "allow-frontend" }, As(TestTokens.Editor), cancellationToken: Ct);

        // The audit trail is a projection, written after the answer: read until it holds the delete.
        var audit = await UntilAsync(() => HistoryApi.ListAuditAsync(new() { Stream = "policy-default/allow-frontend" }, cancellationToken: Ct).ResponseAsync,
            a => a.Entries.Any(e => e.Position == deleted.Version));
        Assert.Equal([(applied.Version, Alice, "PolicyApplied"), (deleted.Version, Bob, "PolicyDeleted")],
            audit.Entries.Select(e => (e.Position, e.Principal, e.Type)));
        Assert.Equal([deleted.Version], (await HistoryApi.ListAuditAsync(new() { Principal = Bob }, cancellationToken: Ct)).Entries.Select(e => e.Position));
        Assert.Equal([deleted.Version], (await HistoryApi.ListAuditAsync(new() { After = applied.Version, Limit = 1 }, cancellationToken: Ct)).Entries.Select(e => e.Position));
        Assert.Equal(["limit"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await HistoryApi.ListAuditAsync(new() { Limit = 5000 }, cancellationToken: Ct))));

        var then = await HistoryApi.GetStateAtAsync(new() { Version = applied.Version }, cancellationToken: Ct);
        var now = await HistoryApi.GetStateAtAsync(new() { Version = deleted.Version }, cancellationToken: Ct);

        Assert.Equal((applied.Version, deleted.Version), (then.Version, then.Head));
        Assert.Equal((applied.Hash, Alice), (Assert.Single(then.Policies).Hash, then.Policies[0].AppliedBy));
        Assert.Empty(now.Policies);
        // By time: the instant the apply was recorded holds the policy, as the version does.
        var appliedAt = (await HistoryApi.ListAuditAsync(new() { After = applied.Version - 1, Limit = 1 }, cancellationToken: Ct)).Entries.Single().Time;
        var byTime = await HistoryApi.GetStateAtAsync(new() { Time = appliedAt }, cancellationToken: Ct);
        Assert.Equal(applied.Hash, Assert.Single(byTime.Policies).Hash);
        Assert.Equal(["at"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await HistoryApi.GetStateAtAsync(new() { Version = deleted.Version + 1 }, cancellationToken: Ct))));
        Assert.Equal(["at"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await HistoryApi.GetStateAtAsync(new(), cancellationToken: Ct))));
    }

    [Fact]
    public async Task Explain_names_the_deciding_rule_and_who_applied_it_as_rest_does_and_refuses_as_rest_does()
    {
        await EndpointApi.RegisterEndpointAsync(Pod("frontend", "frontend", 7), cancellationToken: Ct);
        await EndpointApi.RegisterEndpointAsync(Pod("backend", "backend", 8), cancellationToken: Ct);
        var applied = await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = AllowFrontend }, As(TestTokens.Editor), cancellationToken: Ct);

        var allowed = await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "default/backend", Port = 80 }, cancellationToken: Ct);
        Assert.Equal(("FORWARDED", "default/allow-frontend ingress[0]"), (allowed.Verdict, allowed.Ingress.Rule));
        var origin = Assert.Single(allowed.Ingress.Origins);
        Assert.Equal((Bob, applied.Version), (origin.Principal, origin.Position));

        var dropped = await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "10.201.1.8", Port = 81, Protocol = "tcp" }, cancellationToken: Ct);
        var overRest = await _cp.Client.ExplainAsync("default/frontend", "10.201.1.8", 81, "TCP", ct: Ct);
        Assert.Equal(("DROPPED", "ingress", "DefaultDenied"), (dropped.Verdict, dropped.DecidedBy, dropped.Ingress.Outcome));
        Assert.Equal((overRest.Verdict, overRest.Version, overRest.Reason), (dropped.Verdict, dropped.Version, dropped.Reason));

        Assert.Equal(["port"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "default/backend" }, cancellationToken: Ct))));
        Assert.Equal(["protocol"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "default/backend", Port = 80, Protocol = "QUIC" }, cancellationToken: Ct))));
        Assert.Equal(["at"], Fields(await Assert.ThrowsAsync<RpcException>(async () =>
            await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "default/backend", Port = 80, At = "yesterday" }, cancellationToken: Ct))));
        var unknown = await Assert.ThrowsAsync<RpcException>(async () =>
            await AuditApi.ExplainAsync(new() { From = "default/frontend", To = "default/nobody", Port = 80 }, cancellationToken: Ct));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.StartsWith("to: no endpoint \"default/nobody\" in the state at version", unknown.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(async () =>
            await AuditApi.ExplainFlowAsync(new() { Uuid = Guid.NewGuid().ToString() }, cancellationToken: Ct))).StatusCode);
    }

    [Fact]
    public async Task What_grpc_writes_rest_reads_and_what_rest_writes_grpc_reads()
    {
        var overGrpc = await PolicyApi.ApplyPolicyAsync(new() { Namespace = "default", Name = "allow-frontend", Document = AllowFrontend }, As(TestTokens.Admin), cancellationToken: Ct);
        var readOverRest = await _cp.Client.GetPolicyAsync("default", "allow-frontend", ct: Ct);
        Assert.Equal((overGrpc.Version, overGrpc.Hash, Alice), (readOverRest!.Version, readOverRest.Hash, readOverRest.AppliedBy));
        // The same document over REST is the same policy: nothing changes.
        Assert.False((await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend, ct: Ct)).Changed);

        var overRest = await _cp.Client.RegisterEndpointAsync(new Api.EndpointRegistration("default", "backend", Node, "10.201.1.9", "lxcbackend",
            new Dictionary<string, string> { ["app"] = "backend" }), Ct);
        var readOverGrpc = Assert.Single((await EndpointApi.ListEndpointsAsync(new(), cancellationToken: Ct)).Endpoints);
        Assert.Equal(("backend", overRest.Identity, overRest.Version), (readOverGrpc.Name, readOverGrpc.Identity, readOverGrpc.Version));
        // The same registration over gRPC is the same endpoint under the same identity.
        var again = await EndpointApi.RegisterEndpointAsync(new() { Namespace = "default", Name = "backend", Node = Node, Ip = "10.201.1.9", Interface = "lxcbackend", Labels = { ["app"] = "backend" } },
            cancellationToken: Ct);
        Assert.Equal(overRest.Identity, again.Identity);

        Assert.NotNull(await _cp.Client.DeletePolicyAsync("default", "allow-frontend", ct: Ct));
        Assert.Empty((await PolicyApi.ListPoliciesAsync(new(), cancellationToken: Ct)).Policies);
        Assert.Equal((await _cp.Client.StatusAsync(Ct)).Version, (await NodeApi.GetStatusAsync(new(), cancellationToken: Ct)).Version);
    }

    /// <summary>The fields a refusal's google.rpc.BadRequest names.</summary>
    private static List<string> Fields(RpcException error)
    {
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var request = error.GetRpcStatus()?.GetDetail<BadRequest>() ?? throw new Xunit.Sdk.XunitException($"no BadRequest in {error.Status}");
        return request.FieldViolations.Select(v => v.Field).Distinct().ToList();
    }

    /// <summary>Asks again until the answer shows what the control plane records after it answered (a node's ack, the audit projection).</summary>
    private async Task<T> UntilAsync<T>(Func<Task<T>> ask, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var answer = await ask();
            if (done(answer)) return answer;
            Assert.True(DateTime.UtcNow < deadline, $"never came: {answer}\n{_cp.Log}");
            await Task.Delay(50, Ct);
        }
    }
}
