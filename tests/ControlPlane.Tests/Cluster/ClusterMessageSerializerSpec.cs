using Akka.Actor;
using Akka.Configuration;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;

namespace Mesh.ControlPlane.Tests.Cluster;

/// <summary>
/// What travels between members: every kind of message, with commands and events of the aggregates, comes back from
/// the wire as it went, and something that is not ours is refused rather than written in some other form.
/// </summary>
public sealed class ClusterMessageSerializerSpec() : ActorSpec(ConfigurationFactory.Empty)
{
    private static readonly AggregateRegistry Aggregates = new([Policy.Aggregate, Identity.Aggregate, Node.Aggregate]);
    private static readonly CommandContext Caller = new("alice", "corr-1", new DateTimeOffset(2026, 12, 5, 14, 2, 0, TimeSpan.Zero));

    private ClusterMessageSerializer Serializer => new((ExtendedActorSystem)Sys, Aggregates);

    public static TheoryData<string> Messages => ["apply-policy", "allocate-identity", "report-node", "succeeded", "refused"];

    [Theory]
    [MemberData(nameof(Messages))]
    public void A_message_comes_back_from_the_wire_as_it_went(string name)
    {
        var message = Message(name);
        var bytes = Serializer.ToBinary(message);

        var back = Serializer.FromBinary(bytes, Serializer.Manifest(message));

        Assert.Equal(message.GetType(), back.GetType());
        // Once more through the wire: the same bytes, so nothing was lost or changed on the way.
        Assert.Equal(bytes, Serializer.ToBinary(back));
    }

    [Fact]
    public void Something_that_is_not_a_cluster_message_has_no_wire_form()
    {
        Assert.Throws<ArgumentException>(() => Serializer.Manifest("a string"));
        Assert.Throws<ArgumentException>(() => Serializer.ToBinary(42));
    }

    private static object Message(string name) => name switch
    {
        "apply-policy" => new CommandEnvelope(Policy.Aggregate.Name, "policy-shop/web", "cmd-1", new PolicyCommand.ApplyPolicy(PolicyParser.Parse("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: { name: web, namespace: shop }
            spec:
              endpointSelector: { matchLabels: { app: web } }
              ingress: [ { fromEndpoints: [ { matchLabels: { app: front } } ], toPorts: [ { ports: [ { port: "80", protocol: TCP } ] } ] } ]
            """, "shop").Policy!), Caller),
        "allocate-identity" => new CommandEnvelope(Identity.Aggregate.Name, Identity.StreamId, "cmd-2",
            new IdentityCommand.AllocateIdentity(LabelSet.Parse(["k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"])), Caller),
        "report-node" => new CommandEnvelope(Node.Aggregate.Name, Node.StreamId("node-1"), "cmd-3",
            new NodeCommand.ReportEnforcement("node-1", 7, Caller.Time, "hash-7", [new WaitingEndpoint("shop/db", "no interface")], 0, null), Caller),
        "succeeded" => new CommandOutcome.Succeeded(42, [new NodeEvent.NodeEnforced("node-1", 7, Caller.Time, "hash-7"),
            new IdentityEvent.IdentityAllocated(256, "k8s:app=web", ["k8s:app=web"])]),
        _ => new CommandOutcome.Refused(Refusal.Rejected, "a policy of that name is a NetworkPolicy"),
    };
}
