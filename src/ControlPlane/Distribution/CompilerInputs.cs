using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Distribution;

/// <summary>The reference compiler's inputs, read from a view: what the incremental compiler holds at the same version.</summary>
public sealed record CompilerInputs(
    IReadOnlyCollection<NetworkPolicy> Policies, IReadOnlyDictionary<uint, LabelSet> Identities,
    IReadOnlyCollection<CompilerEndpoint> Endpoints, IReadOnlyCollection<ClusterNode> Nodes, EnforcementMode Mode = EnforcementMode.Default)
{
    public static CompilerInputs Of(ClusterView view) => new(
        view.Policies.Values.Select(p => p.Policy).ToArray(),
        view.Identities.ToDictionary(i => i.Key, i => i.Value.Labels),
        view.Endpoints.Values.Select(Endpoint).ToArray(),
        view.Nodes.Values.Select(n => new ClusterNode(n.Name, n.Addresses)).ToArray(),
        view.PolicyEnforcement.Mode);

    /// <summary>How the compiler sees an endpoint of the view (the one conversion; the snapshot compiler uses it too).</summary>
    public static CompilerEndpoint Endpoint(EndpointRecord e) => new(e.Id, e.Spec.Node, e.Spec.Ip, e.Spec.Interface, e.Identity, e.Spec.Ports);

    public NodeSnapshot Compile(string node, long version) => PolicyCompiler.Compile(node, version, Policies, Identities, Endpoints, Nodes, Mode);
}
