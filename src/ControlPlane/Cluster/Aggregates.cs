using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;

namespace Mesh.ControlPlane.Cluster;

/// <summary>Every aggregate type the entity host runs, by the name forwarded commands carry.</summary>
public static class Aggregates
{
    public static readonly AggregateType<PolicyCommand, PolicyEvent, PolicyState> Policy = new("policy", Policies.Policy.Decider);
    public static readonly AggregateType<EndpointCommand, EndpointEvent, EndpointState> Endpoint = new("endpoint", Endpoints.Endpoint.Decider);
    public static readonly AggregateType<IdentityCommand, IdentityEvent, IdentityState> Identity = new("identity", Identities.Identity.Decider);
    public static readonly AggregateType<NodeCommand, NodeEvent, NodeState> Node = new("node", Nodes.Node.Decider);

    public static readonly IReadOnlyDictionary<string, IAggregateType> ByName =
        new IAggregateType[] { Policy, Endpoint, Identity, Node }.ToDictionary(a => a.Name, StringComparer.Ordinal);
}
