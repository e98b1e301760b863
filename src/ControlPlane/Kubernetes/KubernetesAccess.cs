namespace Mesh.ControlPlane.Kubernetes;

/// <summary>One resource of the Kubernetes API and the verbs the controller uses on it (a subresource as "pods/status").</summary>
public sealed record ApiAccess(string Group, string Resource, IReadOnlyList<string> Verbs);

/// <summary>
/// Every call the Kubernetes controller makes, as RBAC names it. The ClusterRole in deploy/ grants exactly these, and
/// the controller's tests check that it calls nothing else: a new call must be added here, and so to the role.
/// </summary>
public static class KubernetesAccess
{
    public static readonly IReadOnlyList<ApiAccess> Required =
    [
        new("", "namespaces", ["list", "watch"]),
        new("", "pods", ["list", "watch"]),
        new("", "nodes", ["list", "watch"]),
        // NetworkPolicy has no status in the Kubernetes API: its verdict is reported as an Event on the object.
        new("networking.k8s.io", "networkpolicies", ["list", "watch"]),
        new("", "events", ["create"]),
        new("cilium.io", "ciliumnetworkpolicies", ["list", "watch"]),
        new("cilium.io", "ciliumnetworkpolicies/status", ["patch"]),
        new("cilium.io", "ciliumclusterwidenetworkpolicies", ["list", "watch"]),
        new("cilium.io", "ciliumclusterwidenetworkpolicies/status", ["patch"]),
        new("policy.networking.k8s.io", "clusternetworkpolicies", ["list", "watch"]),
        new("policy.networking.k8s.io", "clusternetworkpolicies/status", ["patch"]),
    ];
}
