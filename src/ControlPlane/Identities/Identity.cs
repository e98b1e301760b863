using System.Collections.Immutable;
using System.Text.Json.Serialization;
using Mesh.ControlPlane.Commands;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;

namespace Mesh.ControlPlane.Identities;

// The cluster's identity allocator: one stream holds every allocation, so the expected-version check on append
// makes "one identity per label set" and "one label set per identity" hold across concurrent requests.
//
// A number's life: allocated → released (no endpoint used it for the grace period; a node enforcing a snapshot from
// before the release may still map it to the old labels) → recycled (every node enforces a version at or after the
// release) → allocated again, lowest first, before any number never used.

[JsonPolymorphic]
[JsonDerivedType(typeof(AllocateIdentity), nameof(AllocateIdentity))]
[JsonDerivedType(typeof(ReleaseIdentity), nameof(ReleaseIdentity))]
[JsonDerivedType(typeof(RecycleIdentities), nameof(RecycleIdentities))]
public abstract record IdentityCommand
{
    public sealed record AllocateIdentity(LabelSet Labels) : IdentityCommand;
    /// <summary>Frees an identity no endpoint uses any more; its number waits for the nodes before it is handed out again.</summary>
    public sealed record ReleaseIdentity(uint Identity) : IdentityCommand;
    /// <summary>
    /// Makes released numbers allocatable again: the sender has seen every node enforce a version at or after each
    /// one's release (<see cref="IdentityCollector"/>). Numbers not awaiting recycling are ignored.
    /// </summary>
    public sealed record RecycleIdentities(IReadOnlyList<uint> Identities) : IdentityCommand;
    private IdentityCommand() { }
}

public abstract record IdentityEvent
{
    /// <summary>Key is the label set's canonical key; Labels its labels as "source:key=value".</summary>
    public sealed record IdentityAllocated(uint Identity, string Key, string[] Labels) : IdentityEvent;
    /// <summary>The label set lost its identity; the event's log position is where nodes must reach before the number is reused.</summary>
    public sealed record IdentityReleased(uint Identity, string Key) : IdentityEvent;
    /// <summary>No node can still map these released numbers to their old labels: they may be allocated again.</summary>
    public sealed record IdentitiesRecycled(uint[] Identities) : IdentityEvent;
    private IdentityEvent() { }
}

/// <summary>
/// The allocator: the identity of each label set by key, the next number never used, the released numbers still
/// fenced off (some node may hold them), and the recycled ones free to allocate. The last two are required in a
/// stored snapshot, so a snapshot from before they existed is not read and the stream is replayed instead.
/// </summary>
public sealed record IdentityState(
    ImmutableDictionary<string, uint> ByKey,
    uint NextIndex,
    [property: JsonRequired] ImmutableSortedSet<uint> Released,
    [property: JsonRequired] ImmutableSortedSet<uint> Free)
{
    public static readonly IdentityState Empty = new(ImmutableDictionary<string, uint>.Empty, NumericIdentity.MinimalAllocated,
        ImmutableSortedSet<uint>.Empty, ImmutableSortedSet<uint>.Empty);
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
        services => services.AddSingleton<IdentityService>().AddSingleton<IdentityAllocationLimiter>(), routes => routes.MapIdentityEndpoints());

    /// <summary>The numbers a cluster allocates from labels.</summary>
    public const uint Capacity = NumericIdentity.MaximalAllocated - NumericIdentity.MinimalAllocated + 1;

    public static IReadOnlyList<IdentityEvent> Decide(IdentityCommand command, IdentityState state) => command switch
    {
        IdentityCommand.AllocateIdentity a when state.ByKey.ContainsKey(a.Labels.Key) => [],
        IdentityCommand.AllocateIdentity a => [new IdentityEvent.IdentityAllocated(NextFree(state), a.Labels.Key, a.Labels.Select(l => l.ToString()).ToArray())],
        IdentityCommand.ReleaseIdentity r => state.ByKey.FirstOrDefault(kv => kv.Value == r.Identity) is { Key: { } key }
            ? [new IdentityEvent.IdentityReleased(r.Identity, key)]
            : [],
        IdentityCommand.RecycleIdentities r => r.Identities.Where(state.Released.Contains).Distinct().Order().ToArray() is { Length: > 0 } recyclable
            ? [new IdentityEvent.IdentitiesRecycled(recyclable)]
            : [],
        _ => throw new DomainRuleViolation($"{command.GetType().Name} is not an identity command"),
    };

    /// <summary>The lowest recycled number, else the next never used: reusing first keeps the space from draining under churn.</summary>
    private static uint NextFree(IdentityState state)
    {
        if (!state.Free.IsEmpty) return state.Free.Min;
        if (state.NextIndex <= NumericIdentity.MaximalAllocated) return NumericIdentity.ForCluster(ClusterId, state.NextIndex).Value;
        throw new DomainRuleViolation($"no identity left: all {Capacity} label identities of cluster {ClusterId} are allocated"
            + (state.Released.IsEmpty ? "" : $" or released ({state.Released.Count} released, reusable once every node enforces a version that includes their release)"));
    }

    public static IdentityState Evolve(IdentityState state, IdentityEvent @event) => @event switch
    {
        IdentityEvent.IdentityAllocated a => state with
        {
            ByKey = state.ByKey.SetItem(a.Key, a.Identity),
            NextIndex = Math.Max(state.NextIndex, (a.Identity & 0xFFFF) + 1),
            Free = state.Free.Remove(a.Identity),
        },
        IdentityEvent.IdentityReleased r => state with { ByKey = state.ByKey.Remove(r.Key), Released = state.Released.Add(r.Identity) },
        IdentityEvent.IdentitiesRecycled r => state with { Released = state.Released.Except(r.Identities), Free = state.Free.Union(r.Identities) },
        _ => state,
    };
}
