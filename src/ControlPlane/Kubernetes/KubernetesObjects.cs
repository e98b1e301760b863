using System.Net.Sockets;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Mesh.Contracts.Api;
using Mesh.Contracts.Netns;

namespace Mesh.ControlPlane.Kubernetes;

/// <summary>What Kubernetes objects mean to Mesh: a pod is an endpoint, a policy object is a policy document.</summary>
public static class KubernetesObjects
{
    /// <summary>Prefix of the principal on every event the controller causes: the events name their Kubernetes source.</summary>
    public const string PrincipalPrefix = "kubernetes:";

    private const int MaxManagerLength = 128;
    private const string LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

    /// <summary>
    /// The endpoint a pod is, or null when it is none: a pod on the host's network, one not yet scheduled or without
    /// an IPv4 address (the kubelet writes it after the CNI plugin added the pod), and one that has finished. Its labels
    /// are the pod's; its namespace's labels become identity labels of their own; named container ports become the
    /// endpoint's named ports. The interface is the one the CNI plugin created for it (<see cref="PodInterface"/>).
    /// </summary>
    public static EndpointRegistration? EndpointOf(V1Pod pod, V1Namespace ns)
    {
        if (pod.Spec is not { NodeName: { Length: > 0 } node } spec || spec.HostNetwork == true) return null;
        if (pod.Status?.Phase is "Succeeded" or "Failed") return null;
        var ip = (pod.Status?.PodIPs?.Select(p => p.Ip) ?? []).Prepend(pod.Status?.PodIP)
            .FirstOrDefault(a => System.Net.IPAddress.TryParse(a, out var parsed) && parsed.AddressFamily == AddressFamily.InterNetwork);
        if (ip is null) return null;
        var ports = (spec.Containers ?? []).SelectMany(c => c.Ports ?? [])
            .Where(p => !string.IsNullOrEmpty(p.Name))
            .DistinctBy(p => p.Name)
            .Select(p => new EndpointPort(p.Name, p.ContainerPort, p.Protocol ?? "TCP"))
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ToList();
        var meta = pod.Metadata;
        return new EndpointRegistration(meta.NamespaceProperty, meta.Name, node, ip, PodInterface.HostName(meta.NamespaceProperty, meta.Name),
            Labels(meta.Labels), Labels(ns.Metadata.Labels), ports);
    }

    private static Dictionary<string, string> Labels(IDictionary<string, string>? labels) =>
        labels is null ? [] : new Dictionary<string, string>(labels, StringComparer.Ordinal);

    /// <summary>
    /// A policy object as the document Mesh's policy parser reads: its kind, name, namespace, labels, annotations (the
    /// audit mode is one) and spec; what only the API server keeps (status, managed fields, kubectl's copy of the last
    /// applied object) is left out.
    /// </summary>
    public static string DocumentOf(string apiVersion, string kind, V1ObjectMeta meta, IEnumerable<KeyValuePair<string, JsonNode?>> body)
    {
        var metadata = new JsonObject { ["name"] = meta.Name };
        if (!string.IsNullOrEmpty(meta.NamespaceProperty)) metadata["namespace"] = meta.NamespaceProperty;
        if (meta.Labels is { Count: > 0 } labels) metadata["labels"] = Map(labels);
        if (meta.Annotations?.Where(a => a.Key != LastAppliedAnnotation).ToList() is { Count: > 0 } annotations) metadata["annotations"] = Map(annotations);
        var document = new JsonObject { ["apiVersion"] = apiVersion, ["kind"] = kind, ["metadata"] = metadata };
        foreach (var (field, value) in body)
            if (field is not ("apiVersion" or "kind" or "metadata" or "status")) document[field] = value?.DeepClone();
        return document.ToJsonString();

        static JsonObject Map(IEnumerable<KeyValuePair<string, string>> pairs) =>
            new(pairs.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)JsonValue.Create(p.Value))));
    }

    /// <summary>A NetworkPolicy as a policy document.</summary>
    public static string DocumentOf(V1NetworkPolicy policy) =>
        DocumentOf(Contracts.Policies.PolicyParser.KubernetesApiVersion, Contracts.Policies.PolicyParser.KubernetesKind, policy.Metadata,
            [KeyValuePair.Create("spec", JsonNode.Parse(KubernetesJson.Serialize(policy.Spec ?? new V1NetworkPolicySpec())))]);

    /// <summary>A custom policy object (CNP, CCNP, ClusterNetworkPolicy) as a policy document.</summary>
    public static string DocumentOf(CustomObject policy, CustomResource resource) =>
        DocumentOf(resource.ApiVersion, resource.Kind, policy.Metadata,
            policy.Fields.Select(f => KeyValuePair.Create(f.Key, JsonNode.Parse(f.Value.GetRawText()))));

    /// <summary>
    /// Who the events an object causes are recorded as: "kubernetes:" and the field manager that last wrote the
    /// object (kubectl, a controller, a GitOps tool), from its managedFields; "kubernetes:unknown" when none is listed.
    /// The manager is what the writer told the API server, so it names the source, not an authenticated user.
    /// </summary>
    public static string PrincipalOf(V1ObjectMeta meta)
    {
        var manager = (meta.ManagedFields ?? [])
            .Where(f => string.IsNullOrEmpty(f.Subresource) && !string.IsNullOrEmpty(f.Manager))
            .OrderBy(f => f.Time ?? DateTime.MinValue)
            .LastOrDefault()?.Manager;
        var printable = new string((manager ?? "unknown").Where(c => c is > ' ' and < '\x7f').Take(MaxManagerLength).ToArray());
        return PrincipalPrefix + (printable.Length > 0 ? printable : "unknown");
    }
}
