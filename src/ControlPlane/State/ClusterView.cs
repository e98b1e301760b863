using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Nodes;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.State;

/// <summary>A policy as the log last applied it; <paramref name="StreamId"/> is the stream that holds it.</summary>
public sealed record PolicyRecord(NetworkPolicy Policy, JsonObject Document, string Hash, LogPosition Version, string AppliedBy, DateTimeOffset AppliedAt,
    string StreamId);

public sealed record EndpointRecord(EndpointSpec Spec, uint Identity, LogPosition Version)
{
    public string Id => $"{Spec.Namespace}/{Spec.Name}";
}

public sealed record IdentityRecord(uint Identity, LabelSet Labels, LogPosition Version);

public sealed record NodeRecord(string Name, IReadOnlyList<string> Addresses, LogPosition Version);

/// <summary>
/// Where a node stands as its stream recorded it: the newest version it enforced since when (null before its first),
/// the endpoints of it waiting for their interface, and the error of a newer version it failed to apply.
/// </summary>
public sealed record NodeEnforcementRecord(NodeEvent.NodeEnforced? Enforced, IReadOnlyList<WaitingEndpoint> Waiting, long FailedVersion, string? Error)
{
    public static readonly NodeEnforcementRecord None = new(null, [], 0, null);
}

/// <summary>
/// The cluster's enforcement mode, as the event at <paramref name="Version"/> set it, by whom and when; never set:
/// <see cref="Unset"/> (mode default, version 0).
/// </summary>
public sealed record EnforcementModeRecord(EnforcementMode Mode, LogPosition Version, string SetBy, DateTimeOffset SetAt)
{
    public static readonly EnforcementModeRecord Unset = new(EnforcementMode.Default, LogPosition.Start, "", default);

    public bool WasSet => Version != LogPosition.Start;

    /// <summary>As the APIs show it (in the status, and on its own).</summary>
    public Contracts.Api.EnforcementView ToView() => WasSet
        ? new(Mode.Name(), Version.Value, SetBy, SetAt)
        : new(Mode.Name(), null, null, null);
}

/// <summary>The collection of a <see cref="ClusterView"/> an event changed (<see cref="Enforcement"/>: the mode, key "").</summary>
public enum ViewPart { Identities, Policies, Endpoints, Nodes, Enforcement }

/// <summary>
/// One key an event set or removed, newest first, back to the start of the journal at <see cref="Since"/>: a follower
/// holding a view at or after <see cref="Since"/> finds here every key that moved after it, without comparing whole
/// collections. Journals are cut every <see cref="ClusterView.JournalLength"/> changes, so old views are not kept alive.
/// </summary>
public sealed record ViewChange(LogPosition Position, ViewPart Part, string Key, uint Identity, ViewChange? Older, LogPosition Since, int Length);

/// <summary>
/// The current desired state, a projection of the log: policies, endpoints and identities as of Position.
/// "State as of version V" is the same fold stopped at V. Immutable, so readers never see a half-applied event.
/// </summary>
public sealed record ClusterView(
    LogPosition Position,
    ImmutableSortedDictionary<string, PolicyRecord> Policies,
    ImmutableSortedDictionary<string, EndpointRecord> Endpoints,
    ImmutableSortedDictionary<uint, IdentityRecord> Identities)
{
    public const int JournalLength = 4096;

    /// <summary>The nodes whose agents registered their addresses, by name.</summary>
    public ImmutableSortedDictionary<string, NodeRecord> Nodes { get; init; } =
        ImmutableSortedDictionary<string, NodeRecord>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>What each node reported it enforces, by name. Not in the journal: no snapshot holds it.</summary>
    public ImmutableSortedDictionary<string, NodeEnforcementRecord> Enforcement { get; init; } =
        ImmutableSortedDictionary<string, NodeEnforcementRecord>.Empty.WithComparers(StringComparer.Ordinal);

    /// <summary>When endpoints deny what no rule allows, cluster-wide: it changes every local identity's enforcement.</summary>
    public EnforcementModeRecord PolicyEnforcement { get; init; } = EnforcementModeRecord.Unset;

    /// <summary>Nodes that take no new endpoints (drained, not yet uncordoned). Not in the journal: no snapshot holds it.</summary>
    public ImmutableSortedSet<string> DrainedNodes { get; init; } = ImmutableSortedSet<string>.Empty.WithComparer(StringComparer.Ordinal);

    /// <summary>
    /// Released identity numbers not yet recycled, with the log position of their release: a node enforcing an older
    /// version may still map the number to its old labels. Not in the journal: no snapshot holds it.
    /// </summary>
    public ImmutableSortedDictionary<uint, LogPosition> ReleasedIdentities { get; init; } = ImmutableSortedDictionary<uint, LogPosition>.Empty;

    /// <summary>When the command of the event at <see cref="Position"/> was decided (what a version's delay is measured from).</summary>
    public DateTimeOffset PositionTime { get; init; }

    /// <summary>The keys changed by the events before this view, newest first (null before the first change).</summary>
    public ViewChange? Changes { get; init; }

    public static readonly ClusterView Empty = new(LogPosition.Start,
        ImmutableSortedDictionary<string, PolicyRecord>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableSortedDictionary<string, EndpointRecord>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableSortedDictionary<uint, IdentityRecord>.Empty);

    /// <summary>This view with <paramref name="recorded"/> applied by the module that owns its type.</summary>
    public ClusterView Apply(RecordedEvent recorded)
    {
        var e = EventCodec.Decode(recorded);
        return Modules.FoldOf(e.GetType())(this, e, recorded) with { Position = recorded.Position, PositionTime = recorded.Metadata.Time };
    }

    /// <summary>The journal with one more change, made by the event at <paramref name="at"/> (for the modules' folds).</summary>
    public ViewChange Change(LogPosition at, ViewPart part, string key, uint identity = 0) =>
        Changes is { Length: < JournalLength } older
            ? new ViewChange(at, part, key, identity, older, older.Since, older.Length + 1)
            // Cut: the new journal reaches back to this view, or only to this event when it changed another key here
            // first (that change is cut off with the rest, and a view from before the event compares whole collections).
            : new ViewChange(at, part, key, identity, null, Changes?.Position == at ? at : Position, 1);

    /// <summary>
    /// This view with the cluster's enforcement mode <paramref name="mode"/>, as if set now (at <see cref="Position"/>,
    /// by nobody): the candidate a preview judges against (e.g. with <see cref="Audit.PolicyJudge"/>). The log sets it
    /// through its event, which also marks the journal.
    /// </summary>
    public ClusterView WithEnforcementMode(EnforcementMode mode) =>
        mode == PolicyEnforcement.Mode ? this : this with { PolicyEnforcement = new EnforcementModeRecord(mode, Position, "", PositionTime) };

    public static string Key(string ns, string name) => $"{ns}/{name}";

    /// <summary>
    /// The key of a policy in <see cref="Policies"/> and the journal: <c>{ns}/{name}</c> for the Cilium kinds (ns ""
    /// for a cluster-wide policy), <c>{ns}/{name} NetworkPolicy</c> for a Kubernetes NetworkPolicy and
    /// <c>/{name} ClusterNetworkPolicy</c> for a ClusterNetworkPolicy, so the two namespaced kinds of one name are two
    /// policies, and so are the two cluster-wide ones, listed side by side.
    /// </summary>
    public static string PolicyKey(PolicyKind kind, string? ns, string name) => kind switch
    {
        PolicyKind.KubernetesNetworkPolicy => $"{ns}/{name} {PolicyParser.KubernetesKind}",
        PolicyKind.ClusterNetworkPolicy => $"{ns}/{name} {PolicyParser.TieredKind}",
        _ => $"{ns}/{name}",
    };

    /// <summary>
    /// The oldest version some node may still enforce: the least any node in the view (connected or not, since an
    /// offline node keeps enforcing its last snapshot) reported, 0 for one that reported none; null with no nodes.
    /// </summary>
    public long? OldestEnforcedVersion()
    {
        var nodes = Nodes.Keys.Union(Enforcement.Keys, StringComparer.Ordinal).ToList();
        return nodes.Count == 0 ? null : nodes.Min(n => Enforcement.GetValueOrDefault(n)?.Enforced?.Version ?? 0);
    }

    /// <summary>The identity allocated for a label set, if any.</summary>
    public uint? IdentityOf(LabelSet labels) =>
        Identities.Values.FirstOrDefault(i => i.Labels.Key == labels.Key) is { } found ? found.Identity : null;
}
