using System.Net;
using Mesh.Contracts.Agent;
using Mesh.Contracts.Api;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Contracts.Policies;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests.ControlPlane;

/// <summary>The control plane as a real process on its own database: the API, its refusals, its durability.</summary>
public sealed class ControlPlaneApiTests : IAsyncLifetime
{
    private ControlPlaneProcess _cp = null!;

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

    public async ValueTask InitializeAsync()
    {
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
    }

    private static EndpointRegistration Pod(string name, string app, string node = "node-1", int host = 5) =>
        new("default", name, node, $"10.201.1.{host}", $"lxc{name}"[..Math.Min(15, 3 + name.Length)], new Dictionary<string, string> { ["app"] = app });

    [Fact]
    public async Task Malformed_policy_is_refused_with_400_naming_the_field_and_nothing_is_stored()
    {
        var before = (await _cp.Client.StatusAsync()).Version;
        var bad = AllowFrontend.Replace("port: \"80\"", "port: \"80/tcp\"");

        var error = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("default", "allow-frontend", bad));

        Assert.Equal(HttpStatusCode.BadRequest, error.Status);
        var errors = error.Problem!["errors"]!.AsObject();
        Assert.Contains("spec.ingress[0].toPorts[0].ports[0].port", errors.Select(e => e.Key));
        Assert.Null(await _cp.Client.GetPolicyAsync("default", "allow-frontend"));
        Assert.Equal(before, (await _cp.Client.StatusAsync()).Version);
    }

    [Fact]
    public async Task Policy_name_in_the_document_must_match_the_path()
    {
        var error = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("default", "other-name", AllowFrontend));
        Assert.Equal(HttpStatusCode.BadRequest, error.Status);
        Assert.Contains("metadata.name", error.Problem!["errors"]!.AsObject().Select(e => e.Key));
    }

    [Fact]
    public async Task Applied_policy_is_read_back_with_its_principal_and_version_and_reapplying_changes_nothing()
    {
        var applied = await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend);
        var again = await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend);
        var view = await _cp.Client.GetPolicyAsync("default", "allow-frontend");

        Assert.True(applied.Changed);
        Assert.False(again.Changed);
        Assert.Equal(applied.Version, view!.Version);
        Assert.Equal(applied.Hash, view.Hash);
        Assert.False(string.IsNullOrEmpty(view.AppliedBy));
        Assert.Single(await _cp.Client.ListPoliciesAsync());
    }

    [Fact]
    public async Task A_clusterwide_policy_lives_outside_every_namespace_and_is_refused_on_a_namespaced_path()
    {
        const string clusterwide = """
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: { name: deny-other }
            spec:
              endpointSelector: { matchLabels: { app: backend } }
              ingressDeny:
                - fromEndpoints: [ { matchLabels: { app: other } } ]
            """;

        var misplaced = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.ApplyPolicyAsync("default", "deny-other", clusterwide));
        var applied = await _cp.Client.ApplyPolicyAsync(null, "deny-other", clusterwide);

        Assert.Equal(HttpStatusCode.BadRequest, misplaced.Status);
        Assert.Contains("kind", misplaced.Problem!["errors"]!.AsObject().Select(e => e.Key));
        Assert.Null(await _cp.Client.GetPolicyAsync("default", "deny-other"));
        Assert.Equal(applied.Version, (await _cp.Client.GetPolicyAsync(null, "deny-other"))!.Version);
        Assert.NotNull(await _cp.Client.DeletePolicyAsync(null, "deny-other"));
    }

    [Fact]
    public async Task Same_label_set_gets_one_identity_and_a_different_set_another()
    {
        var a = await _cp.Client.RegisterEndpointAsync(Pod("web-1", "web", host: 5));
        var b = await _cp.Client.RegisterEndpointAsync(Pod("web-2", "web", host: 6));
        var c = await _cp.Client.RegisterEndpointAsync(Pod("db-1", "db", host: 7));

        Assert.Equal(a.Identity, b.Identity);
        Assert.NotEqual(a.Identity, c.Identity);
        Assert.True(a.Identity >= 256);
        Assert.Equal(2, (await _cp.Client.ListIdentitiesAsync()).Count);
    }

    [Fact]
    public async Task Invalid_endpoint_is_refused_naming_every_bad_field()
    {
        var error = await Assert.ThrowsAsync<MeshApiException>(() => _cp.Client.RegisterEndpointAsync(
            Pod("web-1", "web") with { Ip = "10.1.2", Interface = "an-interface-name-too-long" }));

        Assert.Equal(HttpStatusCode.BadRequest, error.Status);
        var fields = error.Problem!["errors"]!.AsObject().Select(e => e.Key).ToList();
        Assert.Contains("ip", fields);
        Assert.Contains("interface", fields);
        Assert.Empty(await _cp.Client.ListEndpointsAsync());
    }

    [Fact]
    public async Task Restarting_the_control_plane_after_kill_9_loses_no_policy_endpoint_or_identity()
    {
        await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend);
        var web = await _cp.Client.RegisterEndpointAsync(Pod("web-1", "web"));
        var before = await _cp.Client.StatusAsync();

        _cp.Kill();
        await _cp.StartAsync();

        var after = await _cp.Client.StatusAsync();
        Assert.Equal(before.Version, after.Version);
        Assert.NotNull(await _cp.Client.GetPolicyAsync("default", "allow-frontend"));
        Assert.Equal(web.Identity, Assert.Single(await _cp.Client.ListEndpointsAsync()).Identity);
        Assert.Equal(web.Identity, Assert.Single(await _cp.Client.ListIdentitiesAsync()).Identity);
        // The identity of a known label set survives too: registering the same labels reuses it.
        Assert.Equal(web.Identity, (await _cp.Client.RegisterEndpointAsync(Pod("web-2", "web", host: 9))).Identity);
    }

    [Fact]
    public async Task An_agent_watching_its_node_gets_the_compiled_policy_and_its_ack_shows_in_node_status()
    {
        var frontend = await _cp.Client.RegisterEndpointAsync(Pod("frontend", "frontend", host: 5));
        var backend = await _cp.Client.RegisterEndpointAsync(Pod("backend", "backend", host: 6));
        using var channel = TestTokens.Channel(_cp.Grpc);
        var grpc = new AgentSync.AgentSyncClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        // A whole snapshot first; the policy applied after it arrives as a delta, which must rebuild content whose
        // hash the control plane announced.
        var held = new Mesh.NodeAgent.Sync.HeldSnapshot();
        using var call = grpc.Sync(cancellationToken: cts.Token);
        await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-1" } }, cts.Token);
        await using var updates = call.ResponseStream.ReadAllAsync().GetAsyncEnumerator(cts.Token);
        Assert.True(await updates.MoveNextAsync());
        Assert.Equal(SnapshotUpdate.UpdateOneofCase.Snapshot, updates.Current.UpdateCase);
        Assert.True(held.Apply(updates.Current.Snapshot), "the first snapshot does not hash as announced");
        var applied = await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend);
        var deltas = 0;
        while (held.Version < (ulong)applied.Version && await updates.MoveNextAsync())
        {
            Assert.Equal(SnapshotUpdate.UpdateOneofCase.Delta, updates.Current.UpdateCase);
            Assert.True(held.Apply(updates.Current.Delta), $"v{updates.Current.Delta.Version} does not hash as announced");
            deltas++;
        }
        Assert.True(deltas > 0);
        var snapshot = held.ToSnapshot();

        Assert.NotNull(snapshot);
        Assert.Equal((ulong)applied.Version, snapshot.Version);
        var backendPolicy = Assert.Single(snapshot.Policies, p => p.Identity == backend.Identity);
        Assert.True(backendPolicy.IngressEnforced);
        Assert.False(backendPolicy.EgressEnforced);
        var entry = Assert.Single(backendPolicy.Entries);
        Assert.Equal(frontend.Identity, entry.PeerIdentity);
        Assert.Equal(6u, entry.Protocol);
        Assert.Equal(80u, entry.Port);
        Assert.Equal(Verdict.Allow, entry.Verdict);
        Assert.Contains("allow-frontend", snapshot.Rules[(int)entry.RuleIndex]);

        await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Node = "node-1", Version = snapshot.Version, Outcome = AckOutcome.Applied } }, cts.Token);
        var node = Assert.Single(await _cp.Client.ListNodesAsync());
        for (var wait = 0; node.AckedVersion < applied.Version && wait < 100; wait++)
        {
            // The ack travels on the call, not as a request of its own: nothing answers it, so poll until it shows.
            await Task.Delay(50, cts.Token);
            node = Assert.Single(await _cp.Client.ListNodesAsync());
        }
        Assert.Equal(applied.Version, node.AckedVersion);
        Assert.Equal(applied.Version, node.ProducedVersion);
    }

    [Fact]
    public async Task A_sync_call_must_start_with_a_watch_and_may_only_ack_its_own_node()
    {
        using var channel = TestTokens.Channel(_cp.Grpc);
        var grpc = new AgentSync.AgentSyncClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        using (var call = grpc.Sync(cancellationToken: cts.Token))
        {
            await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Node = "node-1", Version = 1 } }, cts.Token);
            var refused = await Assert.ThrowsAsync<RpcException>(async () => { await foreach (var _ in call.ResponseStream.ReadAllAsync()) { } });
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            Assert.StartsWith("watch:", refused.Status.Detail, StringComparison.Ordinal);
        }

        using (var call = grpc.Sync(cancellationToken: cts.Token))
        {
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-1" } }, cts.Token);
            await call.RequestStream.WriteAsync(new SyncRequest { Ack = new AckRequest { Node = "node-2", Version = 1 } }, cts.Token);
            var refused = await Assert.ThrowsAsync<RpcException>(async () => { await foreach (var _ in call.ResponseStream.ReadAllAsync()) { } });
            Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
            Assert.Contains("ack.node: \"node-2\" is not the node this call watches", refused.Status.Detail, StringComparison.Ordinal);
        }
        // Nothing was acknowledged for either node.
        Assert.All(await _cp.Client.ListNodesAsync(), n => Assert.Equal(0, n.AckedVersion));
    }

    [Fact]
    public async Task A_sync_call_ends_when_its_agent_half_closes_or_leaves_without_waiting_for_a_new_version()
    {
        await _cp.Client.RegisterEndpointAsync(Pod("web", "web"));   // a version for the calls' first snapshot
        using var channel = TestTokens.Channel(_cp.Grpc);
        var grpc = new AgentSync.AgentSyncClient(channel);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));

        // Half-closed: the server ends the call with OK, so the responses end, while no version is being published.
        using (var call = grpc.Sync(cancellationToken: cts.Token))
        {
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-1" } }, cts.Token);
            await using var updates = call.ResponseStream.ReadAllAsync().GetAsyncEnumerator(cts.Token);
            Assert.True(await updates.MoveNextAsync());
            await call.RequestStream.CompleteAsync();
            Assert.False(await updates.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(5), cts.Token), "the call went on after the agent half-closed");
        }

        // Gone without a word (the stream reset, as when its process dies): the node shows disconnected.
        using (var call = grpc.Sync(cancellationToken: cts.Token))
        {
            await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = "node-1" } }, cts.Token);
            await using var updates = call.ResponseStream.ReadAllAsync().GetAsyncEnumerator(cts.Token);
            Assert.True(await updates.MoveNextAsync());
            Assert.True(Assert.Single(await _cp.Client.ListNodesAsync()).Connected);
        }
        var node = Assert.Single(await _cp.Client.ListNodesAsync());
        for (var wait = 0; node.Connected && wait < 100; wait++)
        {
            await Task.Delay(50, cts.Token);
            node = Assert.Single(await _cp.Client.ListNodesAsync());
        }
        Assert.False(node.Connected, "the control plane still holds the call of an agent that left");
    }

    [Fact]
    public async Task A_network_policy_and_a_cilium_policy_of_one_name_are_two_policies_each_read_compiled_and_deleted_by_kind()
    {
        var frontend = await _cp.Client.RegisterEndpointAsync(Pod("frontend", "frontend", host: 5));
        var backend = await _cp.Client.RegisterEndpointAsync(Pod("backend", "backend", host: 6));
        const string kubernetes = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: allow-frontend, namespace: default }
            spec:
              podSelector: { matchLabels: { app: backend } }
              ingress:
                - from: [ { podSelector: { matchLabels: { app: frontend } } } ]
                  ports: [ { port: 8080 } ]
            """;

        var cilium = await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", AllowFrontend);
        var network = await _cp.Client.ApplyPolicyAsync("default", "allow-frontend", kubernetes);

        Assert.True(cilium.Changed && network.Changed);
        Assert.Equal(("CiliumNetworkPolicy", "NetworkPolicy"), (cilium.Kind, network.Kind));
        Assert.Equal(cilium.Hash, (await _cp.Client.GetPolicyAsync("default", "allow-frontend"))!.Hash);
        var read = (await _cp.Client.GetPolicyAsync("default", "allow-frontend", PolicyKind.KubernetesNetworkPolicy))!;
        Assert.Equal((network.Hash, "NetworkPolicy", "KubernetesNetworkPolicy"), (read.Hash, read.Kind, read.Document["kind"]!.GetValue<string>()));
        Assert.Equal(["default/allow-frontend CiliumNetworkPolicy", "default/allow-frontend NetworkPolicy"],
            (await _cp.Client.ListPoliciesAsync()).Select(p => $"{p.Namespace}/{p.Name} {p.Kind}"));

        // Both compile, each entry naming the rule of its own policy.
        var both = await SnapshotOfAsync("node-1");
        Assert.Equal(["default/allow-frontend ingress[0]", "NetworkPolicy default/allow-frontend ingress[0]"], both.Rules);
        Assert.Equal(["80 default/allow-frontend ingress[0]", "8080 NetworkPolicy default/allow-frontend ingress[0]"], Entries(both, backend.Identity, frontend.Identity));

        // A kind that is not one of the two is refused, naming the field, and deletes nothing.
        using var http = TestTokens.Http(_cp.Api);
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Delete })
        {
            using var refused = await http.SendAsync(new HttpRequestMessage(method, "v1/policies/default/allow-frontend?kind=CiliumClusterwideNetworkPolicy"));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            var problem = System.Text.Json.Nodes.JsonNode.Parse(await refused.Content.ReadAsStringAsync())!;
            Assert.Contains("NetworkPolicy (or netpol)", problem["errors"]!["kind"]![0]!.GetValue<string>());
        }
        using (var lowercase = await http.GetAsync("v1/policies/default/allow-frontend?kind=netpol"))
            Assert.Equal(HttpStatusCode.OK, lowercase.StatusCode);

        var deleted = await _cp.Client.DeletePolicyAsync("default", "allow-frontend", PolicyKind.KubernetesNetworkPolicy);

        Assert.NotNull(deleted);
        Assert.Null(await _cp.Client.GetPolicyAsync("default", "allow-frontend", PolicyKind.KubernetesNetworkPolicy));
        Assert.Null(await _cp.Client.DeletePolicyAsync("default", "allow-frontend", PolicyKind.KubernetesNetworkPolicy));
        Assert.Equal(cilium.Hash, Assert.Single(await _cp.Client.ListPoliciesAsync()).Hash);
        var ciliumOnly = await SnapshotOfAsync("node-1");
        Assert.Equal(["default/allow-frontend ingress[0]"], ciliumOnly.Rules);
        Assert.Equal(["80 default/allow-frontend ingress[0]"], Entries(ciliumOnly, backend.Identity, frontend.Identity));
    }

    /// <summary>The snapshot a newly watching agent of <paramref name="node"/> gets, checked to hash as announced.</summary>
    private async Task<NodeSnapshot> SnapshotOfAsync(string node)
    {
        using var channel = TestTokens.Channel(_cp.Grpc);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var call = new AgentSync.AgentSyncClient(channel).Sync(cancellationToken: cts.Token);
        await call.RequestStream.WriteAsync(new SyncRequest { Watch = new WatchRequest { Node = node } }, cts.Token);
        await using var updates = call.ResponseStream.ReadAllAsync().GetAsyncEnumerator(cts.Token);
        Assert.True(await updates.MoveNextAsync());
        var held = new Mesh.NodeAgent.Sync.HeldSnapshot();
        Assert.True(held.Apply(updates.Current.Snapshot), "the snapshot does not hash as announced");
        return updates.Current.Snapshot;
    }

    /// <summary>"port rule" of each entry of an identity's policy for a peer.</summary>
    private static IEnumerable<string> Entries(NodeSnapshot snapshot, uint identity, uint peer) =>
        Assert.Single(snapshot.Policies, p => p.Identity == identity).Entries.Where(e => e.PeerIdentity == peer)
            .OrderBy(e => e.Port).Select(e => $"{e.Port} {snapshot.Rules[(int)e.RuleIndex]}");
}
