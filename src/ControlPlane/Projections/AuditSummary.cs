using System.Text.Json;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Policies;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// One line per event, in the domain's words, for the audit trail: "applied policy default/allow-web (sha256 1a2b3c4d)",
/// "deleted NetworkPolicy default/allow-web".
/// </summary>
public static class AuditSummary
{
    /// <summary>Never throws: an event this build cannot read (a newer type, an unexpected body) is summarised by its type name.</summary>
    public static string Describe(RecordedEvent recorded)
    {
        object domainEvent;
        try { domainEvent = EventCodec.Decode(recorded); }
        catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException) { return recorded.Type; }

        return domainEvent switch
        {
            PolicyEvent.PolicyApplied a => $"applied {PolicyRef(a.Kind, a.Namespace, a.Name)} (sha256 {a.Hash[..Math.Min(8, a.Hash.Length)]})",
            PolicyEvent.PolicyDeleted d => $"deleted {PolicyRef(d.Kind, d.Namespace, d.Name)}",
            EndpointEvent.EndpointRegistered r =>
                $"registered endpoint {r.Spec.Namespace}/{r.Spec.Name} on {r.Spec.Node} ({r.Spec.Ip}) with identity {r.Identity}",
            EndpointEvent.EndpointDeleted d => $"deleted endpoint {d.Namespace}/{d.Name}",
            IdentityEvent.IdentityAllocated i => $"allocated identity {i.Identity} for {string.Join(',', i.Labels)}",
            IdentityEvent.IdentityReleased r => $"released identity {r.Identity} of {r.Key}",
            IdentityEvent.IdentitiesRecycled r => $"recycled identities {string.Join(',', r.Identities)} (every node enforces a version that includes their release)",
            Nodes.NodeEvent.NodeDrained d => $"drained node {d.Name} (it takes no new endpoints)",
            Nodes.NodeEvent.NodeUncordoned u => $"uncordoned node {u.Name} (it takes new endpoints again)",
            Nodes.NodeEvent.NodeDeleted d => $"deleted node {d.Name}",
            Enforcement.EnforcementEvent.EnforcementModeSet m => $"set the cluster's enforcement mode to {m.Mode.Name()} (was {m.Previous.Name()})",
            _ => recorded.Type,
        };
    }

    // Cluster-wide policies are stored under the empty namespace. A Cilium policy is just a "policy", Mesh's native
    // kind; a delete stored before the kinds were kept apart (no kind) is named as the policy it was. The other kinds
    // are named with their kind, as rule references name them.
    private static string PolicyRef(PolicyKind? kind, string ns, string name) =>
        kind is PolicyKind.KubernetesNetworkPolicy or PolicyKind.ClusterNetworkPolicy ? NetworkPolicy.ReferenceOf(kind.Value, ns, name)
        : ns.Length == 0 ? $"cluster-wide policy {name}" : $"policy {ns}/{name}";
}
