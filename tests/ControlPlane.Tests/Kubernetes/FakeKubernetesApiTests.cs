using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Mesh.Testing.Kubernetes;

namespace Mesh.ControlPlane.Tests.Kubernetes;

/// <summary>
/// The fake Kubernetes API server against the official client, as the controller will use it: if these pass, the
/// controller's tests exercise the same wire protocol a real kube-apiserver speaks.
/// </summary>
public sealed class FakeKubernetesApiTests : IAsyncLifetime
{
    private static readonly TimeSpan Bookmarks = TimeSpan.FromMilliseconds(100);
    private readonly string _ns = "fake-api-" + Guid.NewGuid().ToString("N")[..8];
    private FakeKubernetesApi _api = null!;
    private k8s.Kubernetes _client = null!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public async ValueTask InitializeAsync()
    {
        _api = await FakeKubernetesApi.StartAsync(new FakeKubernetesApiOptions(Bookmarks));
        _client = new k8s.Kubernetes(_api.ClientConfiguration);
        _api.Apply($"{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{_ns}\"}}}}");
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        await _api.DisposeAsync();
    }

    private JsonObject ApplyPod(string name, string labels = "app: web", string node = "node-a") => _api.Apply($$"""
        apiVersion: v1
        kind: Pod
        metadata:
          name: {{name}}
          namespace: {{_ns}}
          labels: {{{labels}}}
        spec:
          nodeName: {{node}}
          containers:
          - name: main
            image: busybox
            ports:
            - containerPort: 8080
        """);

    private JsonObject ApplyCiliumPolicy(string name, int port) => _api.Apply($$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: {{name}}
          namespace: {{_ns}}
        spec:
          endpointSelector:
            matchLabels: {app: web}
          ingress:
          - toPorts:
            - ports:
              - port: "{{port}}"
                protocol: TCP
        """);

    private static string Rv(JsonObject obj) => (string)obj["metadata"]!["resourceVersion"]!;

    [Fact]
    public async Task Lists_pods_namespaces_and_cilium_policies_with_label_and_field_selectors()
    {
        ApplyPod("web-1", "app: web, tier: front, env: prod");
        ApplyPod("web-2", "app: web, tier: db, env: prod", node: "node-b");
        ApplyPod("api-1", "app: api, env: staging");
        ApplyCiliumPolicy("allow-web", 8080);

        var pods = await _client.CoreV1.ListNamespacedPodAsync(_ns, cancellationToken: Ct);
        Assert.Equal(["api-1", "web-1", "web-2"], pods.Items.Select(p => p.Metadata.Name));
        Assert.Equal(_api.ResourceVersion.ToString(), pods.Metadata.ResourceVersion);
        Assert.Equal(8080, pods.Items[1].Spec.Containers[0].Ports[0].ContainerPort);
        Assert.Equal("Pending", pods.Items[0].Status.Phase);

        var selected = await _client.CoreV1.ListNamespacedPodAsync(_ns, labelSelector: "tier!=db,env in (prod, staging),app", cancellationToken: Ct);
        Assert.Equal(["api-1", "web-1"], selected.Items.Select(p => p.Metadata.Name));
        var onNodeB = await _client.CoreV1.ListPodForAllNamespacesAsync(fieldSelector: "spec.nodeName=node-b", cancellationToken: Ct);
        Assert.Equal(["web-2"], onNodeB.Items.Select(p => p.Metadata.Name));

        var namespaces = await _client.CoreV1.ListNamespaceAsync(cancellationToken: Ct);
        Assert.Contains(namespaces.Items, n => n.Metadata.Name == _ns && n.Metadata.Labels["kubernetes.io/metadata.name"] == _ns);
        Assert.Contains(namespaces.Items, n => n.Metadata.Name == "default");

        var policies = await _client.CustomObjects.ListNamespacedCustomObjectAsync<JsonElement>("cilium.io", "v2", _ns, "ciliumnetworkpolicies", cancellationToken: Ct);
        var policy = Assert.Single(policies.GetProperty("items").EnumerateArray());
        Assert.Equal("CiliumNetworkPolicyList", policies.GetProperty("kind").GetString());
        Assert.Equal("allow-web", policy.GetProperty("metadata").GetProperty("name").GetString());
        Assert.Equal("8080", policy.GetProperty("spec").GetProperty("ingress")[0].GetProperty("toPorts")[0].GetProperty("ports")[0].GetProperty("port").GetString());
        Assert.Equal(1, policy.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task A_watch_sees_added_modified_deleted_in_order_and_then_a_bookmark_at_the_newest_version()
    {
        var list = await _client.CoreV1.ListNamespacedPodAsync(_ns, cancellationToken: Ct);
        var events = _client.CoreV1.WatchListNamespacedPodAsync(_ns, resourceVersion: list.ResourceVersion(), allowWatchBookmarks: true, cancellationToken: Ct);
        await using var watch = events.GetAsyncEnumerator(Ct);
        await _api.WaitForWatchAsync("pods", Ct);

        ApplyPod("web-1");
        _api.SetPodIp(_ns, "web-1", "10.200.0.7");
        Assert.True(_api.Delete("v1", "Pod", _ns, "web-1"));
        var deletedAt = _api.ResourceVersion;

        var seen = new List<(WatchEventType Type, V1Pod Pod)>();
        while (await watch.MoveNextAsync())
        {
            seen.Add(watch.Current);
            if (watch.Current.Item1 == WatchEventType.Bookmark && long.Parse(watch.Current.Item2.ResourceVersion()) == deletedAt) break;
        }
        var changes = seen.Where(e => e.Type != WatchEventType.Bookmark).ToList();
        Assert.Equal([WatchEventType.Added, WatchEventType.Modified, WatchEventType.Deleted], changes.Select(e => e.Type));
        Assert.All(changes, e => Assert.Equal("web-1", e.Pod.Metadata.Name));
        Assert.Equal("10.200.0.7", changes[1].Pod.Status.PodIP);
        Assert.Equal("Running", changes[1].Pod.Status.Phase);
        Assert.Equal(deletedAt.ToString(), changes[2].Pod.ResourceVersion());
        var versions = seen.Select(e => long.Parse(e.Pod.ResourceVersion())).ToList();
        Assert.Equal(versions.Order(), versions);
    }

    [Fact]
    public async Task A_watch_from_no_version_first_lists_what_exists_as_added()
    {
        ApplyPod("web-1");
        ApplyPod("web-2");
        await using var watch = _client.CoreV1.WatchListNamespacedPodAsync(_ns, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "web-1"), (watch.Current.Item1, watch.Current.Item2.Metadata.Name));
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "web-2"), (watch.Current.Item1, watch.Current.Item2.Metadata.Name));
        ApplyPod("web-3");
        Assert.True(await watch.MoveNextAsync());
        Assert.Equal((WatchEventType.Added, "web-3"), (watch.Current.Item1, watch.Current.Item2.Metadata.Name));
    }

    [Fact]
    public async Task A_watch_across_namespaces_with_a_label_selector_sees_objects_enter_and_leave_the_selection()
    {
        var start = _api.ResourceVersion.ToString();
        await using var watch = _client.CoreV1.WatchListPodForAllNamespacesAsync(labelSelector: "app=web", resourceVersion: start, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        ApplyPod("api-1", "app: api");
        ApplyPod("api-1", "app: web");
        ApplyPod("api-1", "app: web, version: two");
        ApplyPod("api-1", "app: api");
        ApplyPod("web-1", "app: web");

        var seen = new List<(WatchEventType, string, string)>();
        while (seen.Count < 4 && await watch.MoveNextAsync())
            seen.Add((watch.Current.Item1, watch.Current.Item2.Metadata.Name, watch.Current.Item2.Metadata.Labels["app"]));
        Assert.Equal([
            (WatchEventType.Added, "api-1", "web"),
            (WatchEventType.Modified, "api-1", "web"),
            (WatchEventType.Deleted, "api-1", "api"),
            (WatchEventType.Added, "web-1", "web"),
        ], seen);
    }

    [Fact]
    public async Task On_the_wire_a_watch_is_chunked_json_lines_with_kinds_and_built_in_list_items_have_none()
    {
        ApplyPod("web-1");
        ApplyCiliumPolicy("allow-web", 8080);
        using var http = new HttpClient { BaseAddress = _api.Address };
        http.DefaultRequestHeaders.Authorization = new("Bearer", _api.Token);

        var pods = JsonNode.Parse(await http.GetStringAsync($"/api/v1/namespaces/{_ns}/pods", Ct))!;
        Assert.Equal(("PodList", "v1"), ((string?)pods["kind"], (string?)pods["apiVersion"]));
        Assert.Null(pods["items"]![0]!["kind"]);
        var policies = JsonNode.Parse(await http.GetStringAsync($"/apis/cilium.io/v2/namespaces/{_ns}/ciliumnetworkpolicies", Ct))!;
        Assert.Equal("CiliumNetworkPolicy", (string?)policies["items"]![0]!["kind"]);

        using var response = await http.GetAsync($"/api/v1/namespaces/{_ns}/pods?watch=1&timeoutSeconds=1", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.TransferEncodingChunked);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var lines = (await response.Content.ReadAsStringAsync(Ct)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var added = JsonNode.Parse(Assert.Single(lines))!;
        Assert.Equal(("ADDED", "Pod", "v1", "web-1"), ((string?)added["type"], (string?)added["object"]!["kind"], (string?)added["object"]!["apiVersion"], (string?)added["object"]!["metadata"]!["name"]));
    }

    [Fact]
    public async Task Events_are_created_and_patched_in_the_core_group()
    {
        var created = await _client.CoreV1.CreateNamespacedEventAsync(new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = "allow-web." },
            InvolvedObject = new V1ObjectReference { ApiVersion = "networking.k8s.io/v1", Kind = "NetworkPolicy", Name = "allow-web", NamespaceProperty = _ns },
            Reason = "PolicyRejected", Message = "first", Type = "Warning", Count = 1,
        }, _ns, cancellationToken: Ct);
        Assert.StartsWith("allow-web.", created.Metadata.Name);

        var patched = await _client.CoreV1.PatchNamespacedEventAsync(new V1Patch("""{"count":2,"message":"again"}""", V1Patch.PatchType.StrategicMergePatch), created.Metadata.Name, _ns, cancellationToken: Ct);
        Assert.Equal((2, "again", "PolicyRejected"), (patched.Count, patched.Message, patched.Reason));
        var listed = await _client.CoreV1.ListNamespacedEventAsync(_ns, fieldSelector: "involvedObject.name=allow-web", cancellationToken: Ct);
        Assert.Equal(created.Metadata.Name, Assert.Single(listed.Items).Metadata.Name);
    }

    [Fact]
    public async Task A_watch_sees_every_one_of_many_concurrent_writes_once_in_version_order()
    {
        await using var watch = _client.CoreV1.WatchListNamespacedPodAsync(_ns, resourceVersion: _api.ResourceVersion.ToString(), cancellationToken: Ct).GetAsyncEnumerator(Ct);
        await _api.WaitForWatchAsync("pods", Ct);
        const int Writers = 8, PodsEach = 25;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < PodsEach; i++) ApplyPod($"web-{w}-{i}");
        }, Ct)));

        var seen = new List<(string Name, long Version)>();
        while (seen.Count < Writers * PodsEach && await watch.MoveNextAsync())
            seen.Add((watch.Current.Item2.Metadata.Name, long.Parse(watch.Current.Item2.ResourceVersion())));
        Assert.Equal(Writers * PodsEach, seen.Select(e => e.Name).Distinct().Count());
        Assert.Equal(seen.Select(e => e.Version).Order(), seen.Select(e => e.Version));
        Assert.Equal(_api.ResourceVersion, seen[^1].Version);
    }

    [Fact]
    public async Task A_watch_resumed_from_a_version_gets_exactly_the_events_it_missed()
    {
        var a = ApplyPod("web-a");
        ApplyPod("web-b");
        ApplyPod("web-a", "app: web, version: two");
        _api.Delete("v1", "Pod", _ns, "web-b");
        _api.Apply($"{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{_ns}-other\"}}}}");
        var newest = _api.ResourceVersion;

        await using var watch = _client.CoreV1.WatchListNamespacedPodAsync(_ns, resourceVersion: Rv(a), allowWatchBookmarks: true, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        var missed = new List<(WatchEventType, string)>();
        while (await watch.MoveNextAsync() && watch.Current.Item1 != WatchEventType.Bookmark)
            missed.Add((watch.Current.Item1, watch.Current.Item2.Metadata.Name));
        Assert.Equal([(WatchEventType.Added, "web-b"), (WatchEventType.Modified, "web-a"), (WatchEventType.Deleted, "web-b")], missed);
        Assert.Equal(newest.ToString(), watch.Current.Item2.ResourceVersion());
    }

    [Fact]
    public async Task After_compaction_a_watch_from_an_old_version_reports_410_expired_through_on_error_and_ends()
    {
        var old = ApplyPod("web-1");
        ApplyPod("web-2");
        _api.CompactHistory();

        var errors = new List<Exception>();
        var events = new List<WatchEventType>();
        await foreach (var (type, _) in _client.CoreV1.WatchListNamespacedPodAsync(_ns, resourceVersion: Rv(old), onError: errors.Add, cancellationToken: Ct))
            events.Add(type);

        Assert.Empty(events);
        var expired = Assert.IsType<KubernetesException>(Assert.Single(errors));
        Assert.Equal(410, expired.Status.Code);
        Assert.Equal("Expired", expired.Status.Reason);
        Assert.Equal($"too old resource version: {Rv(old)} ({_api.ResourceVersion})", expired.Status.Message);
    }

    [Fact]
    public async Task After_compaction_a_list_continued_from_an_old_page_is_410_expired()
    {
        for (var i = 0; i < 3; i++) ApplyPod($"web-{i}");
        var first = await _client.CoreV1.ListNamespacedPodAsync(_ns, limit: 2, cancellationToken: Ct);
        ApplyPod("web-9");
        _api.CompactHistory();

        var gone = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ListNamespacedPodAsync(_ns, limit: 2, continueParameter: first.Continue(), cancellationToken: Ct));
        Assert.Equal(HttpStatusCode.Gone, gone.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(gone.Response.Content);
        Assert.Equal(("Expired", 410), (status.Reason, status.Code));
    }

    [Fact]
    public async Task Pages_with_limit_and_continue_are_one_consistent_snapshot()
    {
        for (var i = 1; i <= 5; i++) ApplyPod($"web-{i}");
        var first = await _client.CoreV1.ListNamespacedPodAsync(_ns, limit: 2, cancellationToken: Ct);
        Assert.Equal(["web-1", "web-2"], first.Items.Select(p => p.Metadata.Name));
        Assert.Equal(3, first.Metadata.RemainingItemCount);

        _api.Delete("v1", "Pod", _ns, "web-4");
        ApplyPod("web-0");
        var second = await _client.CoreV1.ListNamespacedPodAsync(_ns, limit: 2, continueParameter: first.Continue(), cancellationToken: Ct);
        var third = await _client.CoreV1.ListNamespacedPodAsync(_ns, limit: 2, continueParameter: second.Continue(), cancellationToken: Ct);

        Assert.Equal(["web-3", "web-4"], second.Items.Select(p => p.Metadata.Name));
        Assert.Equal(["web-5"], third.Items.Select(p => p.Metadata.Name));
        Assert.Null(third.Continue());
        Assert.Equal(first.ResourceVersion(), third.ResourceVersion());
    }

    [Fact]
    public async Task Dropping_watches_ends_the_clients_watch_and_a_new_watch_can_be_awaited()
    {
        ApplyPod("web-1");
        await using var watch = _client.CoreV1.WatchListNamespacedPodAsync(_ns, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        Assert.True(await watch.MoveNextAsync());
        await _api.WaitForWatchAsync("pods", Ct);

        _api.DropWatches();
        var waitForNext = _api.WaitForWatchAsync("pods", Ct);
        Assert.False(waitForNext.IsCompleted);
        await Assert.ThrowsAnyAsync<IOException>(async () => await watch.MoveNextAsync());

        await using var again = _client.CoreV1.WatchListNamespacedPodAsync(_ns, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        await waitForNext;
        Assert.True(await again.MoveNextAsync());
    }

    [Fact]
    public async Task A_watch_with_timeout_seconds_ends_cleanly()
    {
        ApplyPod("web-1");
        var types = new List<WatchEventType>();
        await foreach (var (type, _) in _client.CoreV1.WatchListNamespacedPodAsync(_ns, timeoutSeconds: 1, cancellationToken: Ct))
            types.Add(type);
        Assert.Equal([WatchEventType.Added], types);
    }

    /// <summary>
    /// The client reads a watch's first line before the call returns, so a watch that ends before its first event
    /// (timeoutSeconds on a quiet resource, or a server going away) fails with an exception rather than ending empty.
    /// </summary>
    [Fact]
    public async Task A_watch_that_times_out_before_its_first_event_fails_in_the_client()
    {
        var quiet = _client.CoreV1.WatchListNamespacedPodAsync(_ns, resourceVersion: _api.ResourceVersion.ToString(), timeoutSeconds: 1, cancellationToken: Ct);
        var failed = await Assert.ThrowsAsync<HttpRequestException>(async () => { await foreach (var _ in quiet) { } });
        Assert.IsType<EndOfStreamException>(failed.InnerException);
    }

    [Fact]
    public async Task A_node_keeps_the_status_it_registers_with_and_status_writes_leave_its_spec_alone()
    {
        var registered = _api.Apply("""
            apiVersion: v1
            kind: Node
            metadata: {name: node-a, labels: {kubernetes.io/hostname: node-a}}
            spec: {podCIDR: 10.244.1.0/24}
            status:
              addresses:
              - {type: InternalIP, address: 172.18.0.2}
            """);
        Assert.Equal("172.18.0.2", (string?)registered["status"]!["addresses"]![0]!["address"]);

        _api.SetStatus("v1", "Node", null, "node-a", new JsonObject { ["addresses"] = new JsonArray(new JsonObject { ["type"] = "InternalIP", ["address"] = "172.18.0.3" }) });
        _api.Apply("""{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-a"},"spec":{"podCIDR":"10.244.1.0/24"}}""");

        var node = await _client.CoreV1.ReadNodeAsync("node-a", cancellationToken: Ct);
        Assert.Equal("172.18.0.3", Assert.Single(node.Status.Addresses).Address);
        Assert.Equal("10.244.1.0/24", node.Spec.PodCIDR);
        Assert.Null(node.Metadata.Labels);
    }

    [Fact]
    public async Task Custom_policies_are_listed_and_watched_across_namespaces_and_cluster_scoped_status_is_patched()
    {
        ApplyCiliumPolicy("allow-web", 8080);
        var all = await _client.CustomObjects.ListClusterCustomObjectAsync<JsonElement>("cilium.io", "v2", "ciliumnetworkpolicies", cancellationToken: Ct);
        var listed = Assert.Single(all.GetProperty("items").EnumerateArray());
        Assert.Equal(_ns, listed.GetProperty("metadata").GetProperty("namespace").GetString());
        var version = all.GetProperty("metadata").GetProperty("resourceVersion").GetString();

        await using var watch = _client.CustomObjects.WatchListClusterCustomObjectAsync("cilium.io", "v2", "ciliumclusterwidenetworkpolicies",
            allowWatchBookmarks: true, resourceVersion: version, cancellationToken: Ct).GetAsyncEnumerator(Ct);
        await _api.WaitForWatchAsync("ciliumclusterwidenetworkpolicies", Ct);
        _api.Apply("""
            apiVersion: cilium.io/v2
            kind: CiliumClusterwideNetworkPolicy
            metadata: {name: deny-world}
            spec: {endpointSelector: {}, ingressDeny: [{fromEntities: [world]}]}
            """);
        await _client.CustomObjects.PatchClusterCustomObjectStatusAsync(new V1Patch("""{"status":{"conditions":[{"type":"Valid","status":"True"}]}}""", V1Patch.PatchType.MergePatch),
            "cilium.io", "v2", "ciliumclusterwidenetworkpolicies", "deny-world", cancellationToken: Ct);

        var changes = new List<(WatchEventType Type, JsonElement Object)>();
        while (changes.Count < 2 && await watch.MoveNextAsync())
            if (watch.Current.Item1 != WatchEventType.Bookmark) changes.Add((watch.Current.Item1, (JsonElement)watch.Current.Item2));
        Assert.Equal([WatchEventType.Added, WatchEventType.Modified], changes.Select(c => c.Type));
        Assert.Equal("CiliumClusterwideNetworkPolicy", changes[1].Object.GetProperty("kind").GetString());
        Assert.Equal("Valid", changes[1].Object.GetProperty("status").GetProperty("conditions")[0].GetProperty("type").GetString());
        Assert.Equal(1, changes[1].Object.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Patching_a_cilium_policys_status_changes_only_status_and_not_generation()
    {
        ApplyCiliumPolicy("allow-web", 8080);
        var patch = new V1Patch("""{"status":{"conditions":[{"type":"Valid","status":"True"}]},"spec":{"endpointSelector":{}}}""", V1Patch.PatchType.MergePatch);
        var patched = await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(patch, "cilium.io", "v2", _ns, "ciliumnetworkpolicies", "allow-web", fieldManager: "mesh-controller", cancellationToken: Ct);

        Assert.Equal("Valid", patched.GetProperty("status").GetProperty("conditions")[0].GetProperty("type").GetString());
        Assert.Equal("web", patched.GetProperty("spec").GetProperty("endpointSelector").GetProperty("matchLabels").GetProperty("app").GetString());
        Assert.Equal(1, patched.GetProperty("metadata").GetProperty("generation").GetInt64());
        var statusManager = patched.GetProperty("metadata").GetProperty("managedFields").EnumerateArray().Single(m => m.GetProperty("manager").GetString() == "mesh-controller");
        Assert.Equal(("Update", "status"), (statusManager.GetProperty("operation").GetString(), statusManager.GetProperty("subresource").GetString()));

        var respecified = ApplyCiliumPolicy("allow-web", 9090);
        Assert.Equal(2, (long)respecified["metadata"]!["generation"]!);
        Assert.Equal("Valid", (string?)respecified["status"]!["conditions"]![0]!["type"]);

        var mainPatch = new V1Patch("""{"status":{"conditions":[]},"metadata":{"labels":{"seen":"yes"}}}""", V1Patch.PatchType.MergePatch);
        var labelled = await _client.CustomObjects.PatchNamespacedCustomObjectAsync<JsonElement>(mainPatch, "cilium.io", "v2", _ns, "ciliumnetworkpolicies", "allow-web", cancellationToken: Ct);
        Assert.Equal(1, labelled.GetProperty("status").GetProperty("conditions").GetArrayLength());
        Assert.Equal(2, labelled.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Server_side_apply_creates_and_records_an_apply_manager_and_json_patch_edits_in_place()
    {
        var apply = new V1Patch("""{"apiVersion":"policy.networking.k8s.io/v1alpha2","kind":"ClusterNetworkPolicy","metadata":{"name":"deny-all"},"spec":{"tier":"Admin","priority":10}}""", V1Patch.PatchType.ApplyPatch);
        var created = await _client.CustomObjects.PatchClusterCustomObjectAsync<JsonElement>(apply, "policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "deny-all", fieldManager: "mesh-test", cancellationToken: Ct);
        var manager = Assert.Single(created.GetProperty("metadata").GetProperty("managedFields").EnumerateArray());
        Assert.Equal(("mesh-test", "Apply"), (manager.GetProperty("manager").GetString(), manager.GetProperty("operation").GetString()));

        var jsonPatch = new V1Patch("""[{"op":"test","path":"/spec/priority","value":10},{"op":"replace","path":"/spec/priority","value":20}]""", V1Patch.PatchType.JsonPatch);
        var edited = await _client.CustomObjects.PatchClusterCustomObjectAsync<JsonElement>(jsonPatch, "policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "deny-all", cancellationToken: Ct);
        Assert.Equal(20, edited.GetProperty("spec").GetProperty("priority").GetInt32());
        Assert.Equal(2, edited.GetProperty("metadata").GetProperty("generation").GetInt64());
    }

    [Fact]
    public async Task Writes_answer_conflicts_and_missing_objects_with_status_errors()
    {
        var created = await _client.CoreV1.CreateNamespacedPodAsync(new V1Pod
        {
            Metadata = new V1ObjectMeta { Name = "web-1" },
            Spec = new V1PodSpec { Containers = [new V1Container { Name = "main", Image = "busybox" }] },
        }, _ns, cancellationToken: Ct);
        Assert.Equal(1, created.Metadata.Generation);

        var duplicate = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.CreateNamespacedPodAsync(created, _ns, cancellationToken: Ct));
        Assert.Equal(("AlreadyExists", 409), Status(duplicate));

        created.Metadata.Labels = new Dictionary<string, string> { ["app"] = "web" };
        var updated = await _client.CoreV1.ReplaceNamespacedPodAsync(created, "web-1", _ns, cancellationToken: Ct);
        var stale = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReplaceNamespacedPodAsync(created, "web-1", _ns, cancellationToken: Ct));
        Assert.Equal(("Conflict", 409), Status(stale));
        Assert.Equal("web", updated.Metadata.Labels["app"]);

        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => _client.CoreV1.ReadNamespacedPodAsync("nope", _ns, cancellationToken: Ct));
        Assert.Equal(("NotFound", 404), Status(missing));
        var noNamespace = await Assert.ThrowsAsync<HttpOperationException>(() => _client.NetworkingV1.CreateNamespacedNetworkPolicyAsync(
            new V1NetworkPolicy { Metadata = new V1ObjectMeta { Name = "np" }, Spec = new V1NetworkPolicySpec { PodSelector = new V1LabelSelector() } }, "absent", cancellationToken: Ct));
        Assert.Equal(("NotFound", 404), Status(noNamespace));

        var deleted = await _client.CoreV1.DeleteNamespacedPodAsync("web-1", _ns, cancellationToken: Ct);
        Assert.Equal("web-1", deleted.Metadata.Name);
        Assert.Null(_api.Get("v1", "Pod", _ns, "web-1"));
    }

    [Fact]
    public async Task Cluster_scoped_kinds_at_namespaced_paths_and_networkpolicy_status_are_not_found()
    {
        using var http = new HttpClient { BaseAddress = _api.Address };
        http.DefaultRequestHeaders.Authorization = new("Bearer", _api.Token);
        foreach (var path in new[] { $"/api/v1/namespaces/{_ns}/nodes", "/apis/cilium.io/v2/namespaces/default/ciliumclusterwidenetworkpolicies", $"/apis/networking.k8s.io/v1/namespaces/{_ns}/networkpolicies/np/status", "/api/v1/pods/web-1" })
        {
            using var response = await http.GetAsync(path, Ct);
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            var status = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal(("Status", "NotFound"), ((string?)status["kind"], (string?)status["reason"]));
        }
    }

    [Fact]
    public async Task A_request_without_the_token_is_401_unauthorized()
    {
        using var anonymous = new k8s.Kubernetes(new KubernetesClientConfiguration { Host = _api.Address.ToString() });
        var refused = await Assert.ThrowsAsync<HttpOperationException>(() => anonymous.CoreV1.ListNamespacedPodAsync(_ns, cancellationToken: Ct));
        Assert.Equal(("Unauthorized", 401), Status(refused));
    }

    [Fact]
    public async Task Requests_are_recorded_with_their_rbac_verbs()
    {
        ApplyPod("web-1");
        ApplyCiliumPolicy("allow-web", 8080);
        await _client.CoreV1.ListNamespacedPodAsync(_ns, cancellationToken: Ct);
        await _client.CoreV1.ReadNamespacedPodAsync("web-1", _ns, cancellationToken: Ct);
        await using (var watch = _client.CoreV1.WatchListNamespacedPodAsync(_ns, cancellationToken: Ct).GetAsyncEnumerator(Ct))
            Assert.True(await watch.MoveNextAsync());
        await _client.CustomObjects.PatchNamespacedCustomObjectStatusAsync<JsonElement>(
            new V1Patch("""{"status":{"ok":true}}""", V1Patch.PatchType.MergePatch), "cilium.io", "v2", _ns, "ciliumnetworkpolicies", "allow-web", cancellationToken: Ct);
        await _client.CoreV1.ListNodeAsync(cancellationToken: Ct);

        Assert.Equal(
        [
            new ApiRequest("list", "", "pods", null, _ns, null),
            new ApiRequest("get", "", "pods", null, _ns, "web-1"),
            new ApiRequest("watch", "", "pods", null, _ns, null),
            new ApiRequest("patch", "cilium.io", "ciliumnetworkpolicies", "status", _ns, "allow-web"),
            new ApiRequest("list", "", "nodes", null, null, null),
        ], _api.Requests);
    }

    private static (string Reason, int? Code) Status(HttpOperationException e)
    {
        var status = KubernetesJson.Deserialize<V1Status>(e.Response.Content);
        Assert.Equal((int)e.Response.StatusCode, status.Code);
        return (status.Reason, status.Code);
    }
}
