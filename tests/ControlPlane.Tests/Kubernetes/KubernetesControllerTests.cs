using System.Text.Json.Nodes;
using k8s;
using Mesh.Contracts.Api;
using Mesh.Contracts.Netns;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Kubernetes;
using Mesh.Testing;
using Mesh.Testing.Kubernetes;

namespace Mesh.ControlPlane.Tests.Kubernetes;

/// <summary>
/// The controller in a real control plane (its own process and database) against an API server that speaks
/// Kubernetes' list/watch wire protocol. No real API server can run on these machines: <see cref="FakeKubernetesApi"/>
/// stands in for it, serving objects as Kubernetes serves them; pointed at a kind cluster's kubeconfig, the same steps
/// would run there.
/// </summary>
public sealed class KubernetesControllerTests : IAsyncLifetime
{
    private FakeKubernetesApi _api = null!;
    private ControlPlaneProcess _cp = null!;
    private string _kubeconfig = "";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _api = await FakeKubernetesApi.StartAsync(new(BookmarkInterval: TimeSpan.FromMilliseconds(100)));
        _kubeconfig = _api.WriteKubeconfig(Path.Combine(Path.GetTempPath(), $"mesh-kubeconfig-{Guid.NewGuid():N}"));
        _cp = await ControlPlaneProcess.StartOnNewDatabaseAsync("--kubernetes", $"--kubeconfig={_kubeconfig}", "--kubernetes-status-interval=0.2");
    }

    public async ValueTask DisposeAsync()
    {
        await _cp.DisposeAsync();
        await _api.DisposeAsync();
        File.Delete(_kubeconfig);
    }

    private Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what, TimeSpan? timeout = null) where T : class =>
        Poll.ForAsync(probe, what, timeout ?? TimeSpan.FromSeconds(20), () => $"control plane log:\n{_cp.Log}");

    private Task<EndpointView> EndpointAsync(string ns, string name, Func<EndpointView, bool>? matching = null) =>
        EventuallyAsync(async () => (await _cp.Client.ListEndpointsAsync(Ct)).FirstOrDefault(e => e.Namespace == ns && e.Name == name && (matching?.Invoke(e) ?? true)),
            $"endpoint {ns}/{name} is as expected");

    private async Task<IReadOnlyList<string>> IdentityLabelsAsync(uint identity) =>
        (await _cp.Client.ListIdentitiesAsync(Ct)).Single(i => i.Identity == identity).Labels;

    private static string Pod(string ns, string name, string labels, string node = "node-1", bool hostNetwork = false) => $$"""
        apiVersion: v1
        kind: Pod
        metadata: { name: {{name}}, namespace: {{ns}}, labels: { {{labels}} } }
        spec:
          nodeName: {{node}}
          hostNetwork: {{(hostNetwork ? "true" : "false")}}
          containers:
            - name: app
              image: app
              ports: [ { name: http, containerPort: 8080 }, { name: dns, containerPort: 53, protocol: UDP } ]
        """;

    private static string Namespace(string name, string labels) => $$"""
        apiVersion: v1
        kind: Namespace
        metadata: { name: {{name}}, labels: { {{labels}} } }
        """;

    [Fact]
    public async Task Pods_become_endpoints_with_their_pod_and_namespace_labels_and_follow_label_changes_until_deleted()
    {
        _api.Apply(Namespace("shop", "team: payments"));
        _api.Apply(Pod("shop", "web-1", "app: web"));
        _api.Apply(Pod("shop", "on-host", "app: agent", hostNetwork: true));
        _api.SetPodIp("shop", "on-host", "10.201.0.9");
        _api.SetPodIp("shop", "web-1", "10.201.1.5");

        var endpoint = await EndpointAsync("shop", "web-1");
        Assert.Equal(("node-1", "10.201.1.5", PodInterface.HostName("shop", "web-1")), (endpoint.Node, endpoint.Ip, endpoint.Interface));
        Assert.Equal([("dns", 53, "UDP"), ("http", 8080, "TCP")], endpoint.Ports!.Select(p => (p.Name, p.Port, p.Protocol)));
        var labels = await IdentityLabelsAsync(endpoint.Identity);
        Assert.Contains("k8s:app=web", labels);
        Assert.Contains("k8s:io.kubernetes.pod.namespace=shop", labels);
        Assert.Contains("k8s:io.cilium.k8s.namespace.labels.team=payments", labels);
        Assert.DoesNotContain(await _cp.Client.ListEndpointsAsync(Ct), e => e.Name == "on-host");

        _api.Apply(Pod("shop", "web-1", "app: web, tier: front"));
        var relabelled = await EndpointAsync("shop", "web-1", e => e.Labels.ContainsKey("tier"));
        Assert.NotEqual(endpoint.Identity, relabelled.Identity);
        Assert.Contains("k8s:tier=front", await IdentityLabelsAsync(relabelled.Identity));

        _api.Apply(Namespace("shop", "team: risk"));
        var moved = await EndpointAsync("shop", "web-1", e => e.NamespaceLabels.GetValueOrDefault("team") == "risk");
        Assert.Contains("k8s:io.cilium.k8s.namespace.labels.team=risk", await IdentityLabelsAsync(moved.Identity));

        Assert.True(_api.Delete("v1", "Pod", "shop", "web-1"));
        await EventuallyAsync(async () => (await _cp.Client.ListEndpointsAsync(Ct)).Any(e => e.Name == "web-1") ? null : "gone", "the endpoint is deleted");
    }

    private const string AllowWeb = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: allow-web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress: [ { fromEndpoints: [ { matchLabels: { app: client } } ], toPorts: [ { ports: [ { port: "8080", protocol: TCP } ] } ] } ]
        """;

    /// <summary>A NetworkPolicy, a CiliumClusterwideNetworkPolicy and a ClusterNetworkPolicy, beside <see cref="AllowWeb"/>.</summary>
    private void ApplyOneOfEachOtherKind()
    {
        _api.Apply("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: { name: deny-all, namespace: shop }
            spec: { podSelector: {}, policyTypes: [Ingress] }
            """);
        _api.Apply("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: { name: lock-db }
            spec: { endpointSelector: { matchLabels: { app: db } }, ingress: [ { fromEndpoints: [ { matchLabels: { app: web } } ] } ] }
            """);
        _api.Apply("""
            apiVersion: policy.networking.k8s.io/v1alpha2
            kind: ClusterNetworkPolicy
            metadata: { name: protect-db }
            spec:
              tier: Admin
              priority: 10
              subject: { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: db } } } }
              ingress: [ { action: Deny, from: [ { pods: { namespaceSelector: {}, podSelector: { matchLabels: { app: web } } } } ] } ]
            """);
    }

    private async Task<JsonArray> ConditionsAsync(string apiVersion, string kind, string? ns, string name, Func<JsonArray, bool> matching) =>
        await EventuallyAsync(() => Task.FromResult(_api.Get(apiVersion, kind, ns, name)?["status"]?["conditions"] is JsonArray c && matching(c) ? c : null),
            $"{kind} {name}'s status conditions are as expected");

    private static string? Condition(JsonArray conditions, string type, string field) =>
        (string?)conditions.OfType<JsonObject>().FirstOrDefault(c => (string?)c["type"] == type)?[field];

    [Fact]
    public async Task Policy_objects_of_every_kind_become_policies_recorded_as_their_manager_with_status_written_back()
    {
        _api.Apply(Namespace("shop", "team: payments"));
        _api.Apply(AllowWeb, manager: "argocd-controller");
        ApplyOneOfEachOtherKind();

        var policies = await EventuallyAsync(async () => await _cp.Client.ListPoliciesAsync(Ct) is { Count: 4 } all ? all : null, "all four policies are applied");
        Assert.Equal(
            [("", "lock-db", "CiliumClusterwideNetworkPolicy"), ("", "protect-db", "ClusterNetworkPolicy"), ("shop", "allow-web", "CiliumNetworkPolicy"), ("shop", "deny-all", "NetworkPolicy")],
            policies.Select(p => (p.Namespace, p.Name, p.Kind)).Order());
        var allowWeb = policies.Single(p => p.Name == "allow-web");
        Assert.Equal("kubernetes:argocd-controller", allowWeb.AppliedBy);
        Assert.Equal("kubernetes:kubectl-client-side-apply", policies.Single(p => p.Name == "deny-all").AppliedBy);

        // Status: accepted in the version Mesh holds it; no node enforces anything yet.
        var conditions = await ConditionsAsync("cilium.io/v2", "CiliumNetworkPolicy", "shop", "allow-web", c => Condition(c, "Valid", "status") == "True");
        Assert.Equal($"applied as Mesh version {allowWeb.Version}", Condition(conditions, "Valid", "message"));
        Assert.Equal("NoNodes", Condition(conditions, "Enforced", "reason"));
        await ConditionsAsync("policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy", null, "protect-db", c => Condition(c, "Valid", "status") == "True");

        // A node that enforces the newest version makes the policy enforced everywhere.
        await using (var agent = await HandMadeAgent.ConnectAsync(_cp.Grpc, "node-1", Ct))
        {
            using var acking = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            var acks = agent.AckEachVersionAsync(acking.Token);
            conditions = await ConditionsAsync("cilium.io/v2", "CiliumNetworkPolicy", "shop", "allow-web", c => Condition(c, "Enforced", "status") == "True");
            Assert.Equal($"version {allowWeb.Version} is enforced on 1 of 1 node", Condition(conditions, "Enforced", "message"));
            acking.Cancel();
            await acks.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        // A NetworkPolicy has no status in the Kubernetes API: its verdict is an Event on it.
        var client = new k8s.Kubernetes(_api.ClientConfiguration);
        var events = await EventuallyAsync(async () =>
            (await client.CoreV1.ListNamespacedEventAsync("shop", cancellationToken: Ct)).Items
                .Where(e => e.InvolvedObject.Name == "deny-all" && e.Reason == "Accepted").ToList() is { Count: > 0 } found ? found : null,
            "the NetworkPolicy has an Accepted event");
        Assert.Equal("NetworkPolicy", events[0].InvolvedObject.Kind);
        Assert.StartsWith("Valid: applied as Mesh version", events[0].Message);

        // An invalid edit is refused with the field named; Mesh keeps enforcing the last valid version.
        _api.Apply(AllowWeb.Replace("port: \"8080\"", "port: \"99999\""), manager: "argocd-controller");
        conditions = await ConditionsAsync("cilium.io/v2", "CiliumNetworkPolicy", "shop", "allow-web", c => Condition(c, "Valid", "status") == "False");
        Assert.Contains("ingress[0].toPorts[0].ports[0].port", Condition(conditions, "Valid", "message"));
        Assert.Contains($"the last valid version, {allowWeb.Version},", Condition(conditions, "Enforced", "message"));
        Assert.Equal(allowWeb.Version, (await _cp.Client.GetPolicyAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, Ct))!.Version);

        // Deleting the object deletes the policy.
        Assert.True(_api.Delete("cilium.io/v2", "CiliumNetworkPolicy", "shop", "allow-web"));
        await EventuallyAsync(async () => await _cp.Client.GetPolicyAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, Ct) is null ? "gone" : null,
            "the policy is deleted with its object");
    }

    [Fact]
    public async Task A_relist_after_410_Gone_loses_nothing_changed_meanwhile_and_adds_nothing_to_the_log_for_what_did_not_change()
    {
        _api.Apply(Namespace("shop", "team: payments"));
        foreach (var name in new[] { "kept", "edited", "deleted" })
        {
            _api.Apply(Pod("shop", name, "app: web"));
            _api.SetPodIp("shop", name, $"10.201.2.{name.Length}");
        }
        _api.Apply(AllowWeb);
        var keptBefore = await EndpointAsync("shop", "kept");
        await EndpointAsync("shop", "edited");
        await EndpointAsync("shop", "deleted");
        var policy = await EventuallyAsync(() => _cp.Client.GetPolicyAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, Ct), "the policy is applied");
        var listsBefore = _api.Requests.Count(r => r is { Verb: "list", Resource: "pods" });

        // The watches break, and while they cannot come back the history they would resume from is compacted away:
        // each one gets 410 Gone and lists again.
        _api.PauseWatches();
        _api.Apply(Pod("shop", "edited", "app: web, tier: front"));
        _api.Delete("v1", "Pod", "shop", "deleted");
        _api.Apply(Pod("shop", "created", "app: web"));
        _api.SetPodIp("shop", "created", "10.201.2.99");
        _api.CompactHistory();
        _api.ResumeWatches();

        await EventuallyAsync(() => Task.FromResult(_api.Requests.Count(r => r is { Verb: "list", Resource: "pods" }) > listsBefore ? "relisted" : null), "the pods are listed again");
        await EndpointAsync("shop", "edited", e => e.Labels.ContainsKey("tier"));
        await EndpointAsync("shop", "created");
        await EventuallyAsync(async () => (await _cp.Client.ListEndpointsAsync(Ct)).Any(e => e.Name == "deleted") ? null : "gone", "the deleted pod's endpoint is gone");

        // Nothing that did not change was written again: the policy has its one version, the kept endpoint its first.
        var history = await _cp.Client.PolicyHistoryAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, ct: Ct);
        Assert.Single(history);
        Assert.Equal(policy.Version, (await _cp.Client.GetPolicyAsync("shop", "allow-web", PolicyKind.CiliumNetworkPolicy, Ct))!.Version);
        Assert.Equal(keptBefore.Version, (await _cp.Client.ListEndpointsAsync(Ct)).Single(e => e.Name == "kept").Version);
    }

    [Fact]
    public async Task The_controller_calls_exactly_what_its_cluster_role_grants()
    {
        _api.Apply(Namespace("shop", "team: payments"));
        _api.Apply(AllowWeb);
        ApplyOneOfEachOtherKind();
        var required = KubernetesAccess.Required.SelectMany(a => a.Verbs.Select(v => (a.Group, a.Resource, Verb: v))).ToHashSet();
        await EventuallyAsync(() => Task.FromResult(required.All(r => Calls().Contains(r)) ? "all" : null), "every granted call was made");
        Assert.Empty(Calls().Except(required));

        HashSet<(string, string, string)> Calls() =>
            _api.Requests.Select(r => (r.Group, r.Subresource is null ? r.Resource : $"{r.Resource}/{r.Subresource}", r.Verb)).ToHashSet();
    }
}
