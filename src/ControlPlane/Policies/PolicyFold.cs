using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Policies;

/// <summary>How policy events change the cluster view.</summary>
internal static class PolicyFold
{
    public static ClusterView Apply(ClusterView view, PolicyEvent e, RecordedEvent recorded) => e switch
    {
        PolicyEvent.PolicyApplied a => Applied(view, a, recorded),
        PolicyEvent.PolicyDeleted d => Deleted(view, d, recorded.Position),
        _ => view,
    };

    private static ClusterView Applied(ClusterView view, PolicyEvent.PolicyApplied a, RecordedEvent recorded)
    {
        var policy = PolicyJson.Deserialize(a.Policy.ToJsonString());
        var key = ClusterView.PolicyKey(policy.Kind, a.Namespace, a.Name);
        var applied = view with
        {
            Policies = view.Policies.SetItem(key, new PolicyRecord(policy, a.Policy, a.Hash, recorded.Position, recorded.Metadata.Principal,
                recorded.Metadata.Time, recorded.StreamId)),
            Changes = view.Change(recorded.Position, ViewPart.Policies, key),
        };
        // A stream holds one policy. One written before NetworkPolicies and CiliumNetworkPolicies of a name were kept
        // apart held either kind, and may have turned from one into the other: then the new kind replaced the old.
        var otherKind = policy.Kind == PolicyKind.KubernetesNetworkPolicy ? PolicyKind.CiliumNetworkPolicy : PolicyKind.KubernetesNetworkPolicy;
        var other = ClusterView.PolicyKey(otherKind, a.Namespace, a.Name);
        return view.Policies.TryGetValue(other, out var replaced) && replaced.StreamId == recorded.StreamId
            ? applied with { Policies = applied.Policies.Remove(other), Changes = applied.Change(recorded.Position, ViewPart.Policies, other) }
            : applied;
    }

    private static ClusterView Deleted(ClusterView view, PolicyEvent.PolicyDeleted d, Mesh.Contracts.Identity.LogPosition at)
    {
        var kubernetes = ClusterView.PolicyKey(PolicyKind.KubernetesNetworkPolicy, d.Namespace, d.Name);
        var key = d.Kind is { } kind ? ClusterView.PolicyKey(kind, d.Namespace, d.Name)
            // Stored before the kinds were kept apart, when a namespace and name held one policy: whichever kind it is.
            : view.Policies.ContainsKey(kubernetes) ? kubernetes : ClusterView.PolicyKey(PolicyKind.CiliumNetworkPolicy, d.Namespace, d.Name);
        return view with { Policies = view.Policies.Remove(key), Changes = view.Change(at, ViewPart.Policies, key) };
    }
}
