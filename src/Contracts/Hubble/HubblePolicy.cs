using Mesh.Contracts.Policies;
using Policy = Mesh.Contracts.Hubble.Flows.Policy;

namespace Mesh.Contracts.Hubble;

/// <summary>A Mesh policy as Hubble's flows name it in <c>ingress_allowed_by</c>, <c>egress_denied_by</c>, ...</summary>
public static class HubblePolicy
{
    /// <param name="revision">the Mesh version (log position) the flow names the policy at</param>
    public static Policy Of(PolicyKind kind, string? ns, string name, ulong revision)
    {
        var documentKind = PolicyKinds.DocumentKind(kind);
        var policy = new Policy { Name = name, Namespace = ns ?? "", Kind = documentKind, Revision = revision };
        // The labels Cilium gives the rules it derives from a policy object.
        policy.Labels.Add($"k8s:io.cilium.k8s.policy.derived-from={documentKind}");
        policy.Labels.Add($"k8s:io.cilium.k8s.policy.name={name}");
        if (ns is not null) policy.Labels.Add($"k8s:io.cilium.k8s.policy.namespace={ns}");
        return policy;
    }
}
