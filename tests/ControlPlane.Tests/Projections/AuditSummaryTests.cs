using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Projections;
using static Mesh.ControlPlane.Tests.Projections.DomainEvents;

namespace Mesh.ControlPlane.Tests.Projections;

public sealed class AuditSummaryTests
{
    private static readonly EventMetadata Alice = By("alice");

    private static string Summary(object domainEvent) =>
        AuditSummary.Describe(Recorded(EventCodec.Encode(domainEvent, Alice)));

    private static RecordedEvent Recorded(EventData e) => new(new LogPosition(42), "stream", 1, e.Type, e.Json, e.Metadata);

    [Fact]
    public void An_applied_policy_reads_with_its_name_and_the_start_of_its_hash()
    {
        var applied = PolicyApplied("default", "allow-web", "web");
        Assert.Equal($"applied policy default/allow-web (sha256 {applied.Hash[..8]})", Summary(applied));
    }

    [Fact]
    public void A_cluster_wide_policy_is_named_as_such() =>
        Assert.StartsWith("applied cluster-wide policy allow-dns (sha256 ", Summary(PolicyApplied(null, "allow-dns", "dns")));

    [Fact]
    public void A_deleted_policy_reads_with_its_name() =>
        Assert.Equal("deleted policy default/allow-web", Summary(PolicyDeleted("default", "allow-web")));

    [Fact]
    public void A_network_policy_is_named_by_its_kind_apart_from_the_cilium_policy_of_its_name()
    {
        var applied = NetworkPolicyApplied("default", "allow-web", "web");
        Assert.Equal($"applied NetworkPolicy default/allow-web (sha256 {applied.Hash[..8]})", Summary(applied));
        Assert.Equal("deleted NetworkPolicy default/allow-web", Summary(PolicyDeleted("default", "allow-web", PolicyKind.KubernetesNetworkPolicy)));
    }

    [Fact]
    public void A_cluster_network_policy_is_named_by_its_kind_apart_from_the_cluster_wide_cilium_policy_of_its_name()
    {
        var applied = ClusterNetworkPolicyApplied("deny-db", "db");
        Assert.Equal($"applied ClusterNetworkPolicy deny-db (sha256 {applied.Hash[..8]})", Summary(applied));
        Assert.Equal("deleted ClusterNetworkPolicy deny-db", Summary(PolicyDeleted("", "deny-db", PolicyKind.ClusterNetworkPolicy)));
        Assert.Equal("deleted cluster-wide policy deny-db", Summary(PolicyDeleted("", "deny-db", PolicyKind.CiliumClusterwideNetworkPolicy)));
    }

    [Fact]
    public void A_delete_stored_before_kinds_were_kept_apart_reads_as_it_did() =>
        Assert.Equal("deleted policy default/allow-web",
            AuditSummary.Describe(Recorded(new EventData("PolicyDeleted", """{"namespace":"default","name":"allow-web"}""", Alice))));

    [Fact]
    public void A_registered_endpoint_reads_with_its_node_address_and_identity() =>
        Assert.Equal("registered endpoint x/a on node-1 (10.0.0.5) with identity 256",
            Summary(EndpointRegistered("x", "a", "node-1", "10.0.0.5", 256, "web")));

    [Fact]
    public void A_deleted_endpoint_reads_with_its_name() =>
        Assert.Equal("deleted endpoint x/a", Summary(EndpointDeleted("x", "a")));

    [Fact]
    public void An_allocated_identity_reads_with_its_number_and_labels() =>
        Assert.Equal("allocated identity 256 for k8s:app=web,k8s:io.kubernetes.pod.namespace=default",
            Summary(IdentityAllocated(256, "k8s:app=web", "k8s:io.kubernetes.pod.namespace=default")));

    [Fact]
    public void A_released_identity_reads_with_its_number_and_label_key() =>
        Assert.Equal("released identity 256 of k8s:app=web",
            Summary(new Mesh.ControlPlane.Identities.IdentityEvent.IdentityReleased(256, "k8s:app=web")));

    [Fact]
    public void Recycled_identities_read_with_their_numbers() =>
        Assert.Equal("recycled identities 256,300 (every node enforces a version that includes their release)",
            Summary(new Mesh.ControlPlane.Identities.IdentityEvent.IdentitiesRecycled([256, 300])));

    [Fact]
    public void A_drained_uncordoned_or_deleted_node_reads_with_its_name()
    {
        Assert.Equal("drained node n1 (it takes no new endpoints)", Summary(new Mesh.ControlPlane.Nodes.NodeEvent.NodeDrained("n1")));
        Assert.Equal("uncordoned node n1 (it takes new endpoints again)", Summary(new Mesh.ControlPlane.Nodes.NodeEvent.NodeUncordoned("n1")));
        Assert.Equal("deleted node n1", Summary(new Mesh.ControlPlane.Nodes.NodeEvent.NodeDeleted("n1")));
    }

    [Fact]
    public void An_unknown_event_type_reads_as_its_type_name() =>
        Assert.Equal("NodeCordoned", AuditSummary.Describe(Recorded(new EventData("NodeCordoned", """{"node":"n1"}""", Alice))));

    [Fact]
    public void A_known_type_with_a_body_this_build_cannot_read_reads_as_its_type_name() =>
        Assert.Equal("PolicyDeleted", AuditSummary.Describe(Recorded(new EventData("PolicyDeleted", """{"namespace":[1,2]}""", Alice))));
}
