using System.Collections.Immutable;
using System.Text.Json.Nodes;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Endpoints;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Identities;
using Mesh.ControlPlane.Nodes;
using Mesh.ControlPlane.Policies;
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

/// <summary>The collection of a <see cref="ClusterView"/> an event changed.</summary>
public enum ViewPart { Identities, Policies, Endpoints, Nodes }

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

    /// <summary>The keys changed by the events before this view, newest first (null before the first change).</summary>
    public ViewChange? Changes { get; init; }

    public static readonly ClusterView Empty = new(LogPosition.Start,
        ImmutableSortedDictionary<string, PolicyRecord>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableSortedDictionary<string, EndpointRecord>.Empty.WithComparers(StringComparer.Ordinal),
        ImmutableSortedDictionary<uint, IdentityRecord>.Empty);

    public ClusterView Apply(RecordedEvent recorded)
    {
        var at = recorded.Position;
        var next = EventCodec.Decode(recorded) switch
        {
            PolicyEvent.PolicyApplied a => ApplyPolicy(a, recorded),
            PolicyEvent.PolicyDeleted d => DeletePolicy(d, at),
            EndpointEvent.EndpointRegistered r => this with
            {
                Endpoints = Endpoints.SetItem(Key(r.Spec.Namespace, r.Spec.Name), new EndpointRecord(r.Spec, r.Identity, at)),
                Changes = Change(at, ViewPart.Endpoints, Key(r.Spec.Namespace, r.Spec.Name)),
            },
            EndpointEvent.EndpointDeleted d => this with
            {
                Endpoints = Endpoints.Remove(Key(d.Namespace, d.Name)), Changes = Change(at, ViewPart.Endpoints, Key(d.Namespace, d.Name)),
            },
            IdentityEvent.IdentityAllocated i => this with
            {
                Identities = Identities.SetItem(i.Identity, new IdentityRecord(i.Identity, LabelSet.Parse(i.Labels), at)),
                Changes = Change(at, ViewPart.Identities, "", i.Identity),
            },
            IdentityEvent.IdentityReleased r => this with
            {
                Identities = Identities.Remove(r.Identity), Changes = Change(at, ViewPart.Identities, "", r.Identity),
            },
            NodeEvent.NodeRegistered n => this with
            {
                Nodes = Nodes.SetItem(n.Name, new NodeRecord(n.Name, n.Addresses, at)), Changes = Change(at, ViewPart.Nodes, n.Name),
            },
            NodeEvent.NodeEnforced e => WithEnforcement(e.Name, r => r with
            {
                Enforced = e, Error = e.Version >= r.FailedVersion ? null : r.Error,
            }),
            NodeEvent.NodeEndpointsWaiting w => WithEnforcement(w.Name, r => r with { Waiting = w.Waiting }),
            NodeEvent.NodeApplyFailed f => WithEnforcement(f.Name, r => r with { FailedVersion = f.Version, Error = f.Error }),
            _ => this,
        };
        return next with { Position = at };
    }

    private ClusterView WithEnforcement(string node, Func<NodeEnforcementRecord, NodeEnforcementRecord> change) =>
        this with { Enforcement = Enforcement.SetItem(node, change(Enforcement.GetValueOrDefault(node) ?? NodeEnforcementRecord.None)) };

    private ClusterView ApplyPolicy(PolicyEvent.PolicyApplied a, RecordedEvent recorded)
    {
        var policy = PolicyJson.Deserialize(a.Policy.ToJsonString());
        var key = PolicyKey(policy.Kind, a.Namespace, a.Name);
        var applied = this with
        {
            Policies = Policies.SetItem(key, new PolicyRecord(policy, a.Policy, a.Hash, recorded.Position, recorded.Metadata.Principal,
                recorded.Metadata.Time, recorded.StreamId)),
            Changes = Change(recorded.Position, ViewPart.Policies, key),
        };
        // A stream holds one policy. One written before NetworkPolicies and CiliumNetworkPolicies of a name were kept
        // apart held either kind, and may have turned from one into the other: then the new kind replaced the old.
        var otherKind = policy.Kind == PolicyKind.KubernetesNetworkPolicy ? PolicyKind.CiliumNetworkPolicy : PolicyKind.KubernetesNetworkPolicy;
        var other = PolicyKey(otherKind, a.Namespace, a.Name);
        return Policies.TryGetValue(other, out var replaced) && replaced.StreamId == recorded.StreamId
            ? applied with { Policies = applied.Policies.Remove(other), Changes = applied.Change(recorded.Position, ViewPart.Policies, other) }
            : applied;
    }

    private ClusterView DeletePolicy(PolicyEvent.PolicyDeleted d, LogPosition at)
    {
        var kubernetes = PolicyKey(PolicyKind.KubernetesNetworkPolicy, d.Namespace, d.Name);
        var key = d.Kind is { } kind ? PolicyKey(kind, d.Namespace, d.Name)
            // Stored before the kinds were kept apart, when a namespace and name held one policy: whichever kind it is.
            : Policies.ContainsKey(kubernetes) ? kubernetes : PolicyKey(PolicyKind.CiliumNetworkPolicy, d.Namespace, d.Name);
        return this with { Policies = Policies.Remove(key), Changes = Change(at, ViewPart.Policies, key) };
    }

    private ViewChange Change(LogPosition at, ViewPart part, string key, uint identity = 0) =>
        Changes is { Length: < JournalLength } older
            ? new ViewChange(at, part, key, identity, older, older.Since, older.Length + 1)
            // Cut: the new journal reaches back to this view, or only to this event when it changed another key here
            // first (that change is cut off with the rest, and a view from before the event compares whole collections).
            : new ViewChange(at, part, key, identity, null, Changes?.Position == at ? at : Position, 1);

    public static string Key(string ns, string name) => $"{ns}/{name}";

    /// <summary>
    /// The key of a policy in <see cref="Policies"/> and the journal: <c>{ns}/{name}</c> for the Cilium kinds (ns ""
    /// for a cluster-wide policy), <c>{ns}/{name} NetworkPolicy</c> for a Kubernetes NetworkPolicy, so the two
    /// kinds of one name are two policies, listed side by side.
    /// </summary>
    public static string PolicyKey(PolicyKind kind, string? ns, string name) =>
        kind == PolicyKind.KubernetesNetworkPolicy ? $"{ns}/{name} {PolicyParser.KubernetesKind}" : $"{ns}/{name}";

    /// <summary>The identity allocated for a label set, if any.</summary>
    public uint? IdentityOf(LabelSet labels) =>
        Identities.Values.FirstOrDefault(i => i.Labels.Key == labels.Key) is { } found ? found.Identity : null;
}
