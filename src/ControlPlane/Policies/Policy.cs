using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Policies;

// One network policy, keyed by kind, namespace and name: its commands, events, state, Decide and Evolve.

[JsonPolymorphic]
[JsonDerivedType(typeof(ApplyPolicy), nameof(ApplyPolicy))]
[JsonDerivedType(typeof(DeletePolicy), nameof(DeletePolicy))]
public abstract record PolicyCommand
{
    public sealed record ApplyPolicy(NetworkPolicy Policy) : PolicyCommand;
    public sealed record DeletePolicy(string Namespace, string Name, PolicyKind Kind) : PolicyCommand;
    private PolicyCommand() { }
}

public abstract record PolicyEvent
{
    /// <summary>Policy holds the canonical JSON of the parsed policy (PolicyJson), Hash its SHA-256.</summary>
    public sealed record PolicyApplied(string Namespace, string Name, JsonObject Policy, string Hash) : PolicyEvent
    {
        /// <summary>The policy's kind, read from its JSON; the first canonical form had none, and only Cilium policies.</summary>
        [JsonIgnore]
        public PolicyKind Kind => Policy["kind"] is JsonValue value && value.TryGetValue<string>(out var kind) && Enum.TryParse<PolicyKind>(kind, out var parsed)
            ? parsed
            : Namespace.Length == 0 ? PolicyKind.CiliumClusterwideNetworkPolicy : PolicyKind.CiliumNetworkPolicy;
    }

    /// <summary>
    /// <paramref name="Kind"/> is null only in events stored before NetworkPolicies and CiliumNetworkPolicies of one
    /// name were kept apart: then it means the policy of that namespace and name, whichever its kind (there was one).
    /// </summary>
    public sealed record PolicyDeleted(string Namespace, string Name, PolicyKind? Kind = null) : PolicyEvent;
    private PolicyEvent() { }
}

[JsonPolymorphic]
[JsonDerivedType(typeof(Absent), nameof(Absent))]
[JsonDerivedType(typeof(Active), nameof(Active))]
public abstract record PolicyState
{
    public sealed record Absent : PolicyState;

    /// <summary>
    /// <paramref name="Kind"/> tells apart a NetworkPolicy stored in the stream of its CiliumNetworkPolicy namesake
    /// (see <see cref="Policy.StreamId"/>). Required: a snapshot stored before the kind was kept does not decode, and
    /// the stream is replayed instead.
    /// </summary>
    public sealed record Active(string Hash, [property: JsonRequired] PolicyKind Kind) : PolicyState;
    private PolicyState() { }
}

public static class Policy
{
    /// <summary>
    /// <c>policy-{ns}/{name}</c> for the Cilium kinds (ns "" for a cluster-wide policy), <c>networkpolicy-{ns}/{name}</c>
    /// for a Kubernetes NetworkPolicy, <c>clusternetworkpolicy-/{name}</c> for a ClusterNetworkPolicy. NetworkPolicies stored before the kinds were kept apart are in the stream of
    /// their CiliumNetworkPolicy namesake, <see cref="LegacyNetworkPolicyStreamId"/>, until they are deleted.
    /// </summary>
    public static string StreamId(PolicyKind kind, string ns, string name) => $"{StreamPrefix(kind)}{ns}/{name}";

    /// <summary>What the ids of a kind's streams start with (the namespace and '/' follow: a namespace holds no '/').</summary>
    public static string StreamPrefix(PolicyKind kind) => kind switch
    {
        PolicyKind.KubernetesNetworkPolicy => "networkpolicy-",
        PolicyKind.ClusterNetworkPolicy => "clusternetworkpolicy-",
        _ => "policy-",
    };

    /// <summary>Where a NetworkPolicy stored before the kinds were kept apart may still be: its namesake's stream.</summary>
    public static string LegacyNetworkPolicyStreamId(string ns, string name) => StreamId(PolicyKind.CiliumNetworkPolicy, ns, name);

    public static readonly Decider<PolicyCommand, PolicyEvent, PolicyState> Decider = new(Decide, Evolve, new PolicyState.Absent());

    /// <summary>This aggregate as the cluster runs it (registered with its <see cref="Module"/>).</summary>
    public static readonly Cluster.AggregateType<PolicyCommand, PolicyEvent, PolicyState> Aggregate = new("policy", Decider);

    /// <summary>This aggregate's module: its events, view fold, application service and routes (listed in <see cref="Modules"/>).</summary>
    public static readonly AggregateModule Module = AggregateModule.Of(Aggregate, PolicyFold.Apply,
        services => services.AddSingleton<PolicyService>().AddSingleton<PolicyRollback>(), routes => routes.MapPolicyEndpoints());

    public static IReadOnlyList<PolicyEvent> Decide(PolicyCommand command, PolicyState state) => (command, state) switch
    {
        (PolicyCommand.ApplyPolicy a, PolicyState.Active s) when s.Hash == PolicyJson.Hash(a.Policy) => [],   // same spec again: nothing happened
        // Every stream holds one kind, but for a NetworkPolicy stored before the kinds were kept apart: applying its
        // CiliumNetworkPolicy namesake there would replace it, so that waits until it is deleted.
        (PolicyCommand.ApplyPolicy a, PolicyState.Active { Kind: PolicyKind.KubernetesNetworkPolicy })
            when a.Policy.Kind != PolicyKind.KubernetesNetworkPolicy => throw new DomainRuleViolation(
                $"{a.Policy.KindAndName} cannot be applied while the NetworkPolicy {a.Policy.Namespace}/{a.Policy.Name} stored before " +
                "the two kinds were kept apart holds its place: delete that NetworkPolicy " +
                $"(meshctl policy delete --kind NetworkPolicy {a.Policy.Namespace}/{a.Policy.Name}), apply it again if it is still wanted, then apply this"),
        (PolicyCommand.ApplyPolicy a, _) => [Applied(a.Policy)],
        (PolicyCommand.DeletePolicy d, PolicyState.Active s) when s.Kind == d.Kind => [new PolicyEvent.PolicyDeleted(d.Namespace, d.Name, d.Kind)],
        (PolicyCommand.DeletePolicy, PolicyState.Active or PolicyState.Absent) => [],   // nothing of that kind here
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to a policy in state {state.GetType().Name}"),
    };

    public static PolicyState Evolve(PolicyState state, PolicyEvent @event) => @event switch
    {
        PolicyEvent.PolicyApplied a => new PolicyState.Active(a.Hash, a.Kind),
        PolicyEvent.PolicyDeleted => new PolicyState.Absent(),
        _ => state,
    };

    private static PolicyEvent.PolicyApplied Applied(NetworkPolicy policy) =>
        new(policy.Namespace ?? "", policy.Name, (JsonObject)JsonNode.Parse(PolicyJson.Serialize(policy))!, PolicyJson.Hash(policy));
}
