using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.Audit;

/// <summary>Views for the audit's tests, folded from real domain events: a shop with web on node-1 and db on node-2.</summary>
internal static class AuditWorld
{
    public static ClusterView Replay(params (string Stream, object Event)[] events) => DomainEvents.Replay(ClusterView.Empty, "alice", events);

    public static readonly (string, object)[] Shop =
    [
        ("identities", DomainEvents.IdentityAllocated(256, "k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")),
        ("identities", DomainEvents.IdentityAllocated(257, "k8s:app=db", "k8s:io.kubernetes.pod.namespace=shop")),
        (Endpoint.StreamId("shop", "web"), DomainEvents.EndpointRegistered("shop", "web", "node-1", "10.200.1.2", 256, "web")),
        (Endpoint.StreamId("shop", "db"), DomainEvents.EndpointRegistered("shop", "db", "node-2", "10.200.2.2", 257, "db")),
    ];

    public static (string, object) Policy(PolicyEvent e) => (DomainEvents.PolicyStream(e), e);

    /// <summary>The event of applying <paramref name="document"/> to a policy that did not exist.</summary>
    public static (string, object) Applied(string document)
    {
        var parsed = PolicyParser.Parse(document);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return Policy(Mesh.ControlPlane.Policies.Policy.Decide(new PolicyCommand.ApplyPolicy(parsed.Policy!), new PolicyState.Absent()).Single());
    }
}
