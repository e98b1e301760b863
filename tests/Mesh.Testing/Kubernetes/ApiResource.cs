namespace Mesh.Testing.Kubernetes;

/// <summary>One resource the fake API server serves, with the traits of its real storage that clients can observe.</summary>
/// <param name="HasStatus">
/// A status subresource: the main resource's updates keep the stored .status, /status changes only .status, and create
/// drops the given .status, except for a Node, which the kubelet registers with its addresses in one create.
/// </param>
/// <param name="HasGeneration">metadata.generation is set and bumped by changes outside metadata and status.</param>
/// <param name="IsCustom">
/// Served from a CustomResourceDefinition: list items keep kind and apiVersion, as the real server stores and returns
/// them unstructured; built-in kinds' list items omit both.
/// </param>
/// <param name="FieldSelectors">Fields a fieldSelector may name besides metadata.name and metadata.namespace.</param>
internal sealed record ApiResource(
    string Group, string Version, string Plural, string Kind, bool Namespaced,
    bool HasStatus, bool HasGeneration, bool IsCustom, IReadOnlyList<string> FieldSelectors)
{
    public string ApiVersion => Group.Length == 0 ? Version : $"{Group}/{Version}";

    public static readonly IReadOnlyList<ApiResource> All =
    [
        new("", "v1", "namespaces", "Namespace", false, true, false, false, ["status.phase"]),
        new("", "v1", "pods", "Pod", true, true, true, false,
            ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"]),
        new("", "v1", "nodes", "Node", false, true, false, false, ["spec.unschedulable"]),
        new("", "v1", "events", "Event", true, false, false, false,
            ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
             "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"]),
        // NetworkPolicy's status was removed from the API (1.24): writes to networkpolicies/status find no such resource.
        new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, false, true, false, []),
        new("cilium.io", "v2", "ciliumnetworkpolicies", "CiliumNetworkPolicy", true, true, true, true, []),
        new("cilium.io", "v2", "ciliumclusterwidenetworkpolicies", "CiliumClusterwideNetworkPolicy", false, true, true, true, []),
        new("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy", false, true, true, true, []),
    ];

    public static ApiResource? Find(string group, string version, string plural) =>
        All.FirstOrDefault(r => r.Group == group && r.Version == version && r.Plural == plural);

    public static ApiResource? FindKind(string apiVersion, string kind) =>
        All.FirstOrDefault(r => r.ApiVersion == apiVersion && r.Kind == kind);
}
