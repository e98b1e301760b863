using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.ControlPlane.Tests.Projections;

namespace Mesh.ControlPlane.Tests.State;

/// <summary>
/// The read model keeps a NetworkPolicy and a CiliumNetworkPolicy of one namespace and name apart, and replays the
/// events stored before it did so as they read then: one policy per namespace and name, whichever its kind.
/// </summary>
public sealed class ClusterViewPolicyKindTests
{
    private const string CiliumStream = "policy-shop/web";

    private static ClusterView Replay(params (string Stream, object Event)[] events) =>
        events.Aggregate(ClusterView.Empty, (view, e) => view.Apply(Recorded(view.Position.Value + 1, e.Stream, e.Event)));

    private static RecordedEvent Recorded(long position, string stream, object domainEvent)
    {
        var data = domainEvent as EventData ?? EventCodec.Encode(domainEvent, DomainEvents.By("alice"));
        return new RecordedEvent(new LogPosition(position), stream, 1, data.Type, data.Json, data.Metadata);
    }

    private static (string, object) InItsStream(PolicyEvent e) => (DomainEvents.PolicyStream(e), e);

    /// <summary>The kinds of the policies the view holds, by namespace/name and the port they admit.</summary>
    private static string[] Held(ClusterView view) => view.Policies.Values
        .Select(p => $"{p.Policy.KindAndName} {p.Policy.Spec.Ingress[0].Ports.Single().Port}").ToArray();

    [Fact]
    public void A_network_policy_and_a_cilium_policy_of_one_name_are_two_policies_and_deleting_one_keeps_the_other()
    {
        var both = Replay(
            InItsStream(DomainEvents.PolicyApplied("shop", "web", "web", 80)),
            InItsStream(DomainEvents.NetworkPolicyApplied("shop", "web", "web", 81)),
            InItsStream(DomainEvents.PolicyApplied("shop", "web", "web", 82)));

        Assert.Equal(["CiliumNetworkPolicy shop/web 82", "NetworkPolicy shop/web 81"], Held(both));
        Assert.Equal(["shop/web", "shop/web NetworkPolicy"], both.Policies.Keys);
        var cilium = both.Apply(Recorded(4, "networkpolicy-shop/web", DomainEvents.PolicyDeleted("shop", "web", PolicyKind.KubernetesNetworkPolicy)));
        Assert.Equal(["CiliumNetworkPolicy shop/web 82"], Held(cilium));
        var kubernetes = both.Apply(Recorded(4, CiliumStream, DomainEvents.PolicyDeleted("shop", "web")));
        Assert.Equal(["NetworkPolicy shop/web 81"], Held(kubernetes));
    }

    [Fact]
    public void A_cluster_network_policy_and_a_cilium_clusterwide_policy_of_one_name_are_two_policies_and_deleting_one_keeps_the_other()
    {
        var both = Replay(
            InItsStream(DomainEvents.PolicyApplied(null, "deny-db", "db", 5432)),
            InItsStream(DomainEvents.ClusterNetworkPolicyApplied("deny-db", "db")));

        Assert.Equal(["/deny-db", "/deny-db ClusterNetworkPolicy"], both.Policies.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["CiliumClusterwideNetworkPolicy deny-db", "ClusterNetworkPolicy deny-db"],
            both.Policies.Values.Select(p => p.Policy.KindAndName).Order(StringComparer.Ordinal));
        var cilium = both.Apply(Recorded(3, "clusternetworkpolicy-/deny-db", DomainEvents.PolicyDeleted("", "deny-db", PolicyKind.ClusterNetworkPolicy)));
        Assert.Equal(["CiliumClusterwideNetworkPolicy deny-db"], cilium.Policies.Values.Select(p => p.Policy.KindAndName));
        Assert.Equal("/deny-db ClusterNetworkPolicy", cilium.Changes!.Key);
        var tiered = both.Apply(Recorded(3, "policy-/deny-db", DomainEvents.PolicyDeleted("", "deny-db", PolicyKind.CiliumClusterwideNetworkPolicy)));
        Assert.Equal(["ClusterNetworkPolicy deny-db"], tiered.Policies.Values.Select(p => p.Policy.KindAndName));
    }

    [Fact]
    public void An_old_delete_without_a_kind_removes_the_one_policy_of_its_name_whichever_its_kind()
    {
        // As stored before the kinds were kept apart: every policy in the stream of its namespace and name, and a delete without a kind.
        var oldDelete = new EventData("PolicyDeleted", """{"namespace":"shop","name":"web"}""", DomainEvents.By("alice"));

        var kubernetes = Replay((CiliumStream, DomainEvents.NetworkPolicyApplied("shop", "web", "web")), (CiliumStream, oldDelete));
        var cilium = Replay((CiliumStream, DomainEvents.PolicyApplied("shop", "web", "web")), (CiliumStream, oldDelete));
        var clusterwide = Replay(("policy-/web", DomainEvents.PolicyApplied(null, "web", "web")), ("policy-/web",
            new EventData("PolicyDeleted", """{"namespace":"","name":"web"}""", DomainEvents.By("alice"))));

        Assert.Empty(kubernetes.Policies);
        Assert.Empty(cilium.Policies);
        Assert.Empty(clusterwide.Policies);
        Assert.Equal("shop/web NetworkPolicy", kubernetes.Changes!.Key);
    }

    [Fact]
    public void A_stream_that_turned_from_one_kind_into_the_other_before_the_kinds_were_kept_apart_holds_only_its_last()
    {
        var turned = Replay(
            (CiliumStream, DomainEvents.PolicyApplied("shop", "web", "web", 80)),
            (CiliumStream, DomainEvents.NetworkPolicyApplied("shop", "web", "web", 81)));
        var back = turned.Apply(Recorded(3, CiliumStream, DomainEvents.PolicyApplied("shop", "web", "web", 82)));

        Assert.Equal(["NetworkPolicy shop/web 81"], Held(turned));
        Assert.Equal(["CiliumNetworkPolicy shop/web 82"], Held(back));
        // The journal names both keys the event changed, so a compiler following it drops the replaced policy.
        Assert.Equal(["shop/web", "shop/web NetworkPolicy"], new[] { turned.Changes!.Key, turned.Changes.Older!.Key }.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_journal_cut_between_two_keys_of_one_event_reaches_back_only_to_that_event()
    {
        var view = Replay(
            ("identities", DomainEvents.IdentityAllocated(256, "k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop")),
            ("endpoint-shop/web-1", DomainEvents.EndpointRegistered("shop", "web-1", "node-1", "10.0.0.5", 256, "web")),
            (CiliumStream, DomainEvents.PolicyApplied("shop", "web", "web", 80)));
        for (var i = 0; view.Changes!.Length != ClusterView.JournalLength - 1; i++)
            view = view.Apply(Recorded(view.Position.Value + 1, "identities", DomainEvents.IdentityAllocated((uint)(1000 + i), $"k8s:app=bulk{i}")));
        var follower = new SnapshotCompiler(16384);
        follower.CatchUp(view);

        // An old NetworkPolicy replacing the CiliumNetworkPolicy of its stream: the second key the event changes is the journal's first.
        var replaced = view.Apply(Recorded(view.Position.Value + 1, CiliumStream, DomainEvents.NetworkPolicyApplied("shop", "web", "web", 81)));
        follower.CatchUp(replaced);
        var reference = new SnapshotCompiler(16384);
        reference.CatchUp(replaced with { Changes = null });

        Assert.Equal(reference.Next("node-1", null)!.Snapshot.ContentHash, follower.Next("node-1", null)!.Snapshot.ContentHash);
        Assert.Equal(replaced.Position, replaced.Changes!.Since);
    }
}
