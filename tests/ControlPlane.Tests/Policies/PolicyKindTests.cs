using Mesh.Contracts.Policies;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Policies;

namespace Mesh.ControlPlane.Tests.Policies;

/// <summary>One policy per namespace and name: a policy of the other kind never silently replaces it.</summary>
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

    private static NetworkPolicy Kubernetes() => Parse("""
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: { name: web, namespace: shop }
        spec:
          podSelector: { matchLabels: { app: web } }
          ingress: [ { ports: [ { port: 80 } ] } ]
        """);

    private static NetworkPolicy Parse(string yaml)
    {
        var parsed = PolicyParser.Parse(yaml);
        Assert.True(parsed.Ok, string.Join("; ", parsed.Errors));
        return parsed.Policy!;
    }

    private static PolicyState After(params PolicyCommand[] commands) => commands.Aggregate((PolicyState)new PolicyState.Absent(),
        (state, command) => Policy.Decide(command, state).Aggregate(state, Policy.Evolve));

    [Fact]
    public void A_network_policy_of_the_name_of_a_cilium_policy_is_refused_naming_both_kinds()
    {
        var state = After(new PolicyCommand.ApplyPolicy(Cilium(80)));

        var refused = Assert.Throws<DomainRuleViolation>(() => Policy.Decide(new PolicyCommand.ApplyPolicy(Kubernetes()), state));

        Assert.Contains("shop/web is a CiliumNetworkPolicy; a KubernetesNetworkPolicy of the same namespace and name would replace it", refused.Message);
        Assert.Contains("delete the other first", refused.Message);
    }

    [Fact]
    public void The_same_kind_replaces_and_after_a_delete_the_other_kind_applies()
    {
        var state = After(new PolicyCommand.ApplyPolicy(Cilium(80)));
        Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Cilium(81)), state));

        var deleted = After(new PolicyCommand.ApplyPolicy(Cilium(80)), new PolicyCommand.DeletePolicy("shop", "web"));
        Assert.IsType<PolicyEvent.PolicyApplied>(Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Kubernetes()), deleted)));
    }

    [Fact]
    public void A_state_stored_before_kinds_were_kept_still_takes_either_kind()
    {
        var old = new PolicyState.Active("an-old-hash");
        Assert.Single(Policy.Decide(new PolicyCommand.ApplyPolicy(Kubernetes()), old));
    }
}
