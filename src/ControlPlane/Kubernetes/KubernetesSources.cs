using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using k8s;
using k8s.Models;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>
/// A custom resource as the controller reads it (CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy,
/// ClusterNetworkPolicy): its metadata, and everything else (spec, specs, status) as the API server sent it.
/// </summary>
public sealed class CustomObject : IKubernetesObject<V1ObjectMeta>
{
    [JsonPropertyName("apiVersion")] public string ApiVersion { get; set; } = "";
    [JsonPropertyName("kind")] public string Kind { get; set; } = "";
    [JsonPropertyName("metadata")] public V1ObjectMeta Metadata { get; set; } = new();
    [JsonExtensionData] public Dictionary<string, JsonElement> Fields { get; set; } = [];
}

/// <summary>A page of custom objects, as a list call answers it.</summary>
public sealed class CustomObjectList
{
    [JsonPropertyName("metadata")] public V1ListMeta Metadata { get; set; } = new();
    [JsonPropertyName("items")] public List<CustomObject> Items { get; set; } = [];
}

/// <summary>A custom resource the controller follows: where it is served, and whether its objects live in namespaces.</summary>
public sealed record CustomResource(string Group, string Version, string Plural, string Kind, bool Namespaced)
{
    public string ApiVersion => $"{Group}/{Version}";

    public static readonly CustomResource CiliumNetworkPolicy = new("cilium.io", "v2", "ciliumnetworkpolicies", "CiliumNetworkPolicy", true);
    public static readonly CustomResource CiliumClusterwideNetworkPolicy = new("cilium.io", "v2", "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy", false);
    public static readonly CustomResource ClusterNetworkPolicy = new("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy", false);

    public static readonly IReadOnlyList<CustomResource> Policies = [CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, ClusterNetworkPolicy];
}

/// <summary>The list and watch calls of every kind the controller follows (<see cref="KubernetesAccess"/> names them for RBAC).</summary>
public static class KubernetesSources
{
    private const int PageSize = 500;

    public static ResourceCalls<V1Namespace> Namespaces(IKubernetes k) => new("namespaces",
        async (next, ct) => Page(await k.CoreV1.ListNamespaceAsync(continueParameter: next, limit: PageSize, cancellationToken: ct)),
        (version, onError, ct) => k.CoreV1.WatchListNamespaceAsync(allowWatchBookmarks: true, resourceVersion: version, onError: onError, cancellationToken: ct),
        o => o.Metadata);

    public static ResourceCalls<V1Pod> Pods(IKubernetes k) => new("pods",
        async (next, ct) => Page(await k.CoreV1.ListPodForAllNamespacesAsync(continueParameter: next, limit: PageSize, cancellationToken: ct)),
        (version, onError, ct) => k.CoreV1.WatchListPodForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, onError: onError, cancellationToken: ct),
        o => o.Metadata);

    public static ResourceCalls<V1Node> Nodes(IKubernetes k) => new("nodes",
        async (next, ct) => Page(await k.CoreV1.ListNodeAsync(continueParameter: next, limit: PageSize, cancellationToken: ct)),
        (version, onError, ct) => k.CoreV1.WatchListNodeAsync(allowWatchBookmarks: true, resourceVersion: version, onError: onError, cancellationToken: ct),
        o => o.Metadata);

    public static ResourceCalls<V1NetworkPolicy> NetworkPolicies(IKubernetes k) => new("networkpolicies",
        async (next, ct) => Page(await k.NetworkingV1.ListNetworkPolicyForAllNamespacesAsync(continueParameter: next, limit: PageSize, cancellationToken: ct)),
        (version, onError, ct) => k.NetworkingV1.WatchListNetworkPolicyForAllNamespacesAsync(allowWatchBookmarks: true, resourceVersion: version, onError: onError, cancellationToken: ct),
        o => o.Metadata);

    /// <summary>A custom resource across all namespaces (a cluster-wide list of a namespaced resource lists them all).</summary>
    public static ResourceCalls<CustomObject> Custom(IKubernetes k, CustomResource r) => new(r.Plural,
        async (next, ct) =>
        {
            var list = Read<CustomObjectList>(await k.CustomObjects.ListClusterCustomObjectAsync(r.Group, r.Version, r.Plural,
                continueParameter: next, limit: PageSize, cancellationToken: ct));
            return new ListPage<CustomObject>(list.Items, list.Metadata.ResourceVersion, list.Metadata.ContinueProperty);
        },
        (version, onError, ct) => WatchCustom(k, r, version, onError, ct),
        o => o.Metadata);

    private static async IAsyncEnumerable<(WatchEventType, CustomObject)> WatchCustom(IKubernetes k, CustomResource r, string version,
        Action<Exception> onError, [EnumeratorCancellation] CancellationToken ct)
    {
        await foreach (var (type, item) in k.CustomObjects.WatchListClusterCustomObjectAsync(r.Group, r.Version, r.Plural,
            allowWatchBookmarks: true, resourceVersion: version, onError: onError, cancellationToken: ct))
            yield return (type, Read<CustomObject>(item));
    }

    /// <summary>An untyped answer (the client's JsonElement) as <typeparamref name="T"/>.</summary>
    private static T Read<T>(object answer) =>
        KubernetesJson.Deserialize<T>(answer is JsonElement json ? json.GetRawText() : KubernetesJson.Serialize(answer));

    private static ListPage<T> Page<T>(IItems<T> list) where T : class =>
        list is IMetadata<V1ListMeta> { Metadata: var meta }
            ? new ListPage<T>(list.Items.ToList(), meta.ResourceVersion, meta.ContinueProperty)
            : throw new InvalidOperationException($"{list.GetType().Name} has no list metadata");
}
