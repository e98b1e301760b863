using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Enforcement;

// The cluster's policy enforcement mode (Cilium's --enable-policy), one stream for the whole cluster: its command,
// event, state, Decide and Evolve.

[JsonPolymorphic]
[JsonDerivedType(typeof(SetEnforcementMode), nameof(SetEnforcementMode))]
public abstract record EnforcementCommand
{
    public sealed record SetEnforcementMode(EnforcementMode Mode) : EnforcementCommand;
    private EnforcementCommand() { }
}

public abstract record EnforcementEvent
{
    /// <summary>The mode became <paramref name="Mode"/> (it was <paramref name="Previous"/>); the metadata says who and when.</summary>
    public sealed record EnforcementModeSet(EnforcementMode Mode, EnforcementMode Previous) : EnforcementEvent;
    private EnforcementEvent() { }
}

/// <summary>The mode as the stream last set it; <see cref="EnforcementMode.Default"/> before the first event.</summary>
public sealed record EnforcementState(EnforcementMode Mode)
{
    public static readonly EnforcementState Initial = new(EnforcementMode.Default);
}

public static class PolicyEnforcement
{
    /// <summary>The one stream of the cluster's mode.</summary>
    public const string StreamId = "enforcement";

    public static readonly Decider<EnforcementCommand, EnforcementEvent, EnforcementState> Decider = new(Decide, Evolve, EnforcementState.Initial);

    /// <summary>This aggregate as the cluster runs it (registered with its <see cref="Module"/>).</summary>
    public static readonly Cluster.AggregateType<EnforcementCommand, EnforcementEvent, EnforcementState> Aggregate = new("enforcement", Decider);

    /// <summary>This aggregate's module: its event, view fold, application service and routes (listed in <see cref="Modules"/>).</summary>
    public static readonly AggregateModule Module = AggregateModule.Of(Aggregate, EnforcementFold.Apply,
        services => services.AddSingleton<EnforcementService>(), routes => routes.MapEnforcementEndpoints());

    // Total: every mode may follow every other; the same mode again is already done.
    public static IReadOnlyList<EnforcementEvent> Decide(EnforcementCommand command, EnforcementState state) => command switch
    {
        EnforcementCommand.SetEnforcementMode set when set.Mode == state.Mode => [],
        EnforcementCommand.SetEnforcementMode set => [new EnforcementEvent.EnforcementModeSet(set.Mode, state.Mode)],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} cannot be applied to the enforcement mode {state.Mode.Name()}"),
    };

    public static EnforcementState Evolve(EnforcementState state, EnforcementEvent @event) => @event switch
    {
        EnforcementEvent.EnforcementModeSet set => new EnforcementState(set.Mode),
        _ => state,
    };
}
