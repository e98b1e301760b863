using System.Text.Json;
using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Cluster;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;

namespace Mesh.ControlPlane.Tests.Policies;

/// <summary>
/// A NetworkPolicy and a CiliumNetworkPolicy of one namespace and name are two policies, as in Kubernetes: streams of
/// their own, deletes that name the kind, and what was stored before they were kept apart still reads as it did.
/// </summary>
public sealed class PolicyKindTests
{
    private static NetworkPolicy Cilium(int port) => Parse($$"""
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: { name: web, namespace: shop }
        spec:
          endpointSelector: { matchLabels: { app: web } }
          ingress: [ { toPorts: [ { ports: [ { port: "{{port}}", protocol: TCP } ] } ] } ]
        """);

    private static NetworkPolicy Kubernetes(int port = 80) => Parse($$"""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: web, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: web } }
          ingress: [ { ports: [ { port: {{port}} } ] } ]
        """);

    private static NetworkPolicy Parse(string yaml)
    {
        var parsed = PolicyParser.Parse(yaml);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return parsed.Policy!;
    }

    private static PolicyState After(params PolicyCommand[] commands) => commands.Aggregate((PolicyState)new PolicyState.Absent(),
        (state, command) => Policy.Decide(command, state).Aggregate(state, Policy.Evolve));

    private static PolicyCommand.DeletePolicy Delete(PolicyKind kind) => new("shop", "web", kind);

    [Fact]
    public void Each_kind_of_one_namespace_and_name_has_a_stream_of_its_own_and_the_cilium_streams_are_unchanged()
    {
        Assert.Equal("policy-shop/web", Policy.StreamId(PolicyKind.CiliumNetworkPolicy, "shop", "web"));
        Assert.Equal("policy-/web", Policy.StreamId(PolicyKind.CiliumClusterwideNetworkPolicy, "", "web"));
        Assert.Equal("networkpolicy-shop/web", Policy.StreamId(PolicyKind.KubernetesNetworkPolicy, "shop", "web"));
    }

    [Fact]
    public void GivenNetworkPolicy_WhenItsCiliumNamesakeIsDeleted_ThenNothingHappens_AndDeletingItNamesItsKind()
    {
        var state = After(new PolicyCommand.ApplyPolicy(Kubernetes()));

        Assert.Empty(Policy.Decide(Delete(PolicyKind.CiliumNetworkPolicy), state));
        var deleted = Assert.IsType<PolicyEvent.PolicyDeleted>(Assert.Single(Policy.Decide(Delete(PolicyKind.KubernetesNetworkPolicy), state)));
        Assert.Equal(new PolicyEvent.PolicyDeleted("shop", "web", PolicyKind.KubernetesNetworkPolicy), deleted);
    }

    [Fact]
    public void GivenActivePolicy_WhenTheSameKindIsAppliedAgain_ThenNothingHappens_AndAnotherSpecReplacesIt()
    {
        var state = After(new PolicyCommand.ApplyPolicy(Cilium(80)));

        Assert.Empty(Policy.Decide(new PolicyCommand.ApplyPolicy(Cilium(80)), state));
        Assert.IsType<PolicyEvent.PolicyApplied>(Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Cilium(81)), state)));
    }

    /// <summary>
    /// Before the kinds were kept apart a NetworkPolicy went to the stream its CiliumNetworkPolicy namesake uses now.
    /// Applying the namesake there would replace it; deleting the NetworkPolicy there frees the place.
    /// </summary>
    [Fact]
    public void GivenNetworkPolicyStoredBeforeKindsWereKeptApart_WhenItsCiliumNamesakeIsApplied_ThenRefusedSayingHowToGoOn()
    {
        var legacy = After(new PolicyCommand.ApplyPolicy(Kubernetes()));

        var refused = Assert.Throws<DomainRuleViolation>(() => Policy.Decide(new PolicyCommand.ApplyPolicy(Cilium(80)), legacy));

        Assert.Contains("CiliumNetworkPolicy shop/web cannot be applied while the NetworkPolicy shop/web stored before", refused.Message);
        Assert.Contains("meshctl policy delete --kind NetworkPolicy shop/web", refused.Message);
        var freed = After(new PolicyCommand.ApplyPolicy(Kubernetes()), Delete(PolicyKind.KubernetesNetworkPolicy));
        Assert.IsType<PolicyEvent.PolicyApplied>(Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Cilium(80)), freed)));
    }

    [Fact]
    public void A_delete_is_stored_with_its_kind_by_name_and_one_stored_before_kinds_were_kept_reads_without()
    {
        var stored = EventCodec.Encode(new PolicyEvent.PolicyDeleted("shop", "web", PolicyKind.KubernetesNetworkPolicy), new EventMetadata("alice", DateTimeOffset.UnixEpoch, "c", null));

        Assert.Equal("""{"namespace":"shop","name":"web","kind":"KubernetesNetworkPolicy"}""", stored.Json);
        Assert.Equal(new PolicyEvent.PolicyDeleted("shop", "web"), EventCodec.Decode("PolicyDeleted", """{"namespace":"shop","name":"web"}"""));
    }

    [Fact]
    public void A_stored_state_reads_with_its_kind_by_name_or_number_and_one_without_a_kind_is_replayed_instead()
    {
        var policy = Policy.Aggregate;
        var active = new PolicyState.Active("h", PolicyKind.KubernetesNetworkPolicy);

        Assert.Contains("\"kind\":\"KubernetesNetworkPolicy\"", policy.EncodeState(active));
        Assert.Equal(active, policy.TryDecodeState(policy.EncodeState(active)));
        Assert.Equal(active, policy.TryDecodeState("""{"$type":"Active","hash":"h","kind":2}"""));   // as states were stored until now
        // Stored before the kind was kept: no kind to tell a NetworkPolicy in its namesake's stream apart, so the
        // entity (which replays the stream when a snapshot does not decode) must not take it.
        Assert.Null(policy.TryDecodeState("""{"$type":"Active","hash":"h"}"""));
    }

    [Fact]
    public void An_applied_policy_knows_its_kind_and_one_of_the_first_stored_form_is_a_cilium_policy()
    {
        var applied = Assert.IsType<PolicyEvent.PolicyApplied>(Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Kubernetes()), new PolicyState.Absent())));
        var first = (PolicyEvent.PolicyApplied)EventCodec.Decode("PolicyApplied", """
            {"namespace":"shop","name":"web","hash":"h","policy":{"namespace":"shop","name":"web","spec":{"endpointSelector":{"matchLabels":{},"matchExpressions":[]},
             "ingress":[],"ingressDeny":[],"egress":[],"egressDeny":[],"description":null}}}
            """);

        Assert.Equal(PolicyKind.KubernetesNetworkPolicy, applied.Kind);
        Assert.False(JsonSerializer.SerializeToElement(applied, EventCodec.Json).TryGetProperty("kind", out _), "the kind is stored once, in the policy");
        Assert.Equal(PolicyKind.CiliumNetworkPolicy, first.Kind);
        Assert.Equal(new PolicyState.Active("h", PolicyKind.CiliumNetworkPolicy), Policy.Evolve(new PolicyState.Absent(), first));
    }
}
