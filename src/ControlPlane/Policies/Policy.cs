using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Policies;

// One network policy, keyed by namespace and name: its commands, events, state, Decide and Evolve.

[JsonPolymorphic]
[JsonDerivedType(typeof(ApplyPolicy), nameof(ApplyPolicy))]
[JsonDerivedType(typeof(DeletePolicy), nameof(DeletePolicy))]
public abstract record PolicyCommand
{
    public sealed record ApplyPolicy(NetworkPolicy Policy) : PolicyCommand;
    public sealed record DeletePolicy(string Namespace, string Name) : PolicyCommand;
    private PolicyCommand() { }
}

public abstract record PolicyEvent
{
    /// <summary>Policy holds the canonical JSON of the parsed policy (PolicyJson), Hash its SHA-256.</summary>
    public sealed record PolicyApplied(string Namespace, string Name, JsonObject Policy, string Hash) : PolicyEvent;
    public sealed record PolicyDeleted(string Namespace, string Name) : PolicyEvent;
    private PolicyEvent() { }
}

[JsonPolymorphic]
[JsonDerivedType(typeof(Absent), nameof(Absent))]
[JsonDerivedType(typeof(Active), nameof(Active))]
public abstract record PolicyState
{
    public sealed record Absent : PolicyState;
    /// <summary><paramref name="Kind"/>: null in states stored before the kind was kept.</summary>
    public sealed record Active(string Hash, PolicyKind? Kind = null) : PolicyState;
    private PolicyState() { }
}

public static class Policy
{
    public static string StreamId(string ns, string name) => $"policy-{ns}/{name}";

    public static readonly Decider<PolicyCommand, PolicyEvent, PolicyState> Decider = new(Decide, Evolve, new PolicyState.Absent());

    public static IReadOnlyList<PolicyEvent> Decide(PolicyCommand command, PolicyState state) => (command, state) switch
    {
        (PolicyCommand.ApplyPolicy a, PolicyState.Active s) when s.Hash == PolicyJson.Hash(a.Policy) => [],   // same spec again: nothing happened
        // Kubernetes keeps a NetworkPolicy and a CiliumNetworkPolicy of one name apart; Mesh keeps one policy per
        // namespace and name, so one kind never silently replaces the other.
        (PolicyCommand.ApplyPolicy a, PolicyState.Active { Kind: { } kind }) when kind != a.Policy.Kind => throw new DomainRuleViolation(
            $"{a.Policy.Namespace}/{a.Policy.Name} is a {kind}; a {a.Policy.Kind} of the same namespace and name would replace it. " +
            "Mesh keeps one policy per namespace and name: delete the other first, or give this one another name"),
        (PolicyCommand.ApplyPolicy a, _) => [Applied(a.Policy)],
        (PolicyCommand.DeletePolicy d, PolicyState.Active) => [new PolicyEvent.PolicyDeleted(d.Namespace, d.Name)],
        (PolicyCommand.DeletePolicy, PolicyState.Absent) => [],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to a policy in state {state.GetType().Name}"),
    };

    public static PolicyState Evolve(PolicyState state, PolicyEvent @event) => @event switch
    {
        PolicyEvent.PolicyApplied a => new PolicyState.Active(a.Hash, Enum.Parse<PolicyKind>(a.Policy["kind"]!.GetValue<string>())),
        PolicyEvent.PolicyDeleted => new PolicyState.Absent(),
        _ => state,
    };

    private static PolicyEvent.PolicyApplied Applied(NetworkPolicy policy) =>
        new(policy.Namespace ?? "", policy.Name, (JsonObject)JsonNode.Parse(PolicyJson.Serialize(policy))!, PolicyJson.Hash(policy));
}
