using System.Collections.Immutable;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Identities;

// The cluster's identity allocator: one stream holds every allocation, so the expected-version check on append
// makes "one identity per label set" and "one label set per identity" hold across concurrent requests.

[JsonPolymorphic]
[JsonDerivedType(typeof(AllocateIdentity), nameof(AllocateIdentity))]
[JsonDerivedType(typeof(ReleaseIdentity), nameof(ReleaseIdentity))]
public abstract record IdentityCommand
{
    public sealed record AllocateIdentity(LabelSet Labels) : IdentityCommand;
    /// <summary>Frees an identity no endpoint uses any more; its number is never handed out again.</summary>
    public sealed record ReleaseIdentity(uint Identity) : IdentityCommand;
    private IdentityCommand() { }
}

public abstract record IdentityEvent
{
    /// <summary>Key is the label set's canonical key; Labels its labels as "source:key=value".</summary>
    public sealed record IdentityAllocated(uint Identity, string Key, string[] Labels) : IdentityEvent;
    public sealed record IdentityReleased(uint Identity, string Key) : IdentityEvent;
    private IdentityEvent() { }
}

public sealed record IdentityState(ImmutableDictionary<string, uint> ByKey, uint NextIndex)
{
    public static readonly IdentityState Empty = new(ImmutableDictionary<string, uint>.Empty, NumericIdentity.MinimalAllocated);
}

public static class Identity
{
    public const string StreamId = "identities";

    /// <summary>This cluster's id in the mesh (bits 16–23 of every identity it allocates).</summary>
    public const byte ClusterId = 0;

    public static readonly Decider<IdentityCommand, IdentityEvent, IdentityState> Decider = new(Decide, Evolve, IdentityState.Empty);

    /// <summary>This aggregate as the cluster runs it (registered with its <see cref="Module"/>).</summary>
    public static readonly Cluster.AggregateType<IdentityCommand, IdentityEvent, IdentityState> Aggregate = new("identity", Decider);

    /// <summary>This aggregate's module: its events, view fold, application service and routes (listed in <see cref="Modules"/>).</summary>
    public static readonly AggregateModule Module = AggregateModule.Of(Aggregate, IdentityFold.Apply,
        services => services.AddSingleton<IdentityService>(), routes => routes.MapIdentityEndpoints());

    public static IReadOnlyList<IdentityEvent> Decide(IdentityCommand command, IdentityState state) => command switch
    {
        IdentityCommand.AllocateIdentity a when state.ByKey.ContainsKey(a.Labels.Key) => [],
        IdentityCommand.AllocateIdentity when state.NextIndex > NumericIdentity.MaximalAllocated =>
            throw new DomainRuleViolation($"no identity left: all {NumericIdentity.MaximalAllocated - NumericIdentity.MinimalAllocated + 1} label identities of cluster {ClusterId} are allocated"),
        IdentityCommand.AllocateIdentity a =>
            [new IdentityEvent.IdentityAllocated(NumericIdentity.ForCluster(ClusterId, state.NextIndex).Value, a.Labels.Key,
                a.Labels.Select(l => l.ToString()).ToArray())],
        IdentityCommand.ReleaseIdentity r => state.ByKey.FirstOrDefault(kv => kv.Value == r.Identity) is { Key: { } key }
            ? [new IdentityEvent.IdentityReleased(r.Identity, key)]
            : [],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} is not an identity command"),
    };

    public static IdentityState Evolve(IdentityState state, IdentityEvent @event) => @event switch
    {
        IdentityEvent.IdentityAllocated a => new(state.ByKey.SetItem(a.Key, a.Identity),
            Math.Max(state.NextIndex, (a.Identity & 0xFFFF) + 1)),
        IdentityEvent.IdentityReleased r => state with { ByKey = state.ByKey.Remove(r.Key) },
        _ => state,
    };
}
