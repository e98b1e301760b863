using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.Distribution;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Flows;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using AgentProtocol = Mesh.Contracts.Agent.AgentProtocol;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// What a change of policies would do before it is made: every distinct connection recorded in a window is judged once
/// under the current view and once under the candidate (the current one with the change folded in), and those whose
/// verdict flips are reported, newly dropped and newly allowed, with the policy entries of the identities the change
/// selects. Stores nothing. Dry runs, the enforcement mode and rollback all ask it.
/// </summary>
public sealed class ImpactPreview(FlowStore flows, SnapshotCompiler compiler, TimeProvider clock)
{
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromHours(24);

    /// <summary>How many edges of each kind are shown, the busiest first.</summary>
    public const int Examples = 5;

    /// <summary>The longest window a preview reads: a month of flows, more than retention keeps by default.</summary>
    public static readonly TimeSpan MaxWindow = TimeSpan.FromDays(31);

    /// <summary>
    /// Reads a request's dry run: <paramref name="dryRun"/> "true" or "false" (absent: false), <paramref name="window"/>
    /// a duration back from now (90s, 30m, 2h, 1d; absent: 24h). The refusal names the field; null window: no dry run.
    /// </summary>
    public static FieldErrors? ParseDryRun(string? dryRun, string? window, out TimeSpan? preview)
    {
        preview = null;
        if (!bool.TryParse(dryRun ?? "false", out var dry))
            return FieldErrors.One(Refused, "dryRun", $"\"{dryRun}\" is neither true nor false");
        if (window is not null && ParseWindow(window) is not { } parsed)
            return FieldErrors.One(Refused, "window", $"\"{window}\" is not a duration back from now up to {MaxWindow.TotalDays:0}d (90s, 30m, 2h, 1d)");
        if (dry) preview = window is null ? DefaultWindow : ParseWindow(window);
        return null;
    }

    private const string Refused = "The request is invalid; nothing was applied";

    /// <summary>90s, 30m, 2h or 1d, above zero and at most <see cref="MaxWindow"/>; null otherwise.</summary>
    public static TimeSpan? ParseWindow(string text)
    {
        if (text.Length < 2 || !int.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var amount) || amount == 0) return null;
        TimeSpan? window = text[^1] switch
        {
            's' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMinutes(amount),
            'h' => TimeSpan.FromHours(amount),
            'd' => TimeSpan.FromDays(amount),
            _ => null,
        };
        return window <= MaxWindow ? window : null;
    }

    public async Task<PolicyImpact> PreviewAsync(ClusterView current, ClusterView candidate, TimeSpan window, CancellationToken ct)
    {
        var until = clock.GetUtcNow();
        var since = until - window;
        var edges = await flows.ReadObservedEdgesAsync(since, until, ct);
        return Classify(current, candidate, edges, since, until, compiler.EntryBudget);
    }

    /// <summary>
    /// <paramref name="current"/> with <paramref name="changes"/> decided and folded in as the policy aggregate and the
    /// view's fold would do them, at positions after it: the state the change would make, were it applied now.
    /// </summary>
    public static ClusterView Candidate(ClusterView current, IEnumerable<PolicyCommand> changes, EventMetadata metadata)
    {
        var view = current;
        foreach (var change in changes)
        {
            var (kind, ns, name) = change switch
            {
                PolicyCommand.ApplyPolicy a => (a.Policy.Kind, a.Policy.Namespace ?? PolicyService.Clusterwide, a.Policy.Name),
                PolicyCommand.DeletePolicy d => (d.Kind, d.Namespace, d.Name),
                _ => throw new ArgumentOutOfRangeException(nameof(changes), change, "not a policy change"),
            };
            var existing = view.Policies.GetValueOrDefault(ClusterView.PolicyKey(kind, ns, name));
            PolicyState state = existing is null ? new PolicyState.Absent() : new PolicyState.Active(existing.Hash, existing.Policy.Kind);
            var stream = existing?.StreamId ?? Policy.StreamId(kind, ns, name);
            foreach (var e in Policy.Decide(change, state))
            {
                var data = EventCodec.Encode(e, metadata);
                view = view.Apply(new RecordedEvent(new LogPosition(view.Position.Value + 1), stream, 0, data.Type, data.Json, data.Metadata));
            }
        }
        return view;
    }

    /// <summary>Judges each edge under both views (endpoints are the same in both: only policies differ).</summary>
    public static PolicyImpact Classify(ClusterView current, ClusterView candidate, IReadOnlyList<ObservedEdge> edges,
        DateTimeOffset since, DateTimeOffset until, int entryBudget)
    {
        var (before, after) = (new PolicyJudge(current), new PolicyJudge(candidate));
        var dropped = new List<ImpactEdge>();
        var allowed = new List<ImpactEdge>();
        var (judged, flowsJudged, unjudged) = (0, 0L, 0);
        foreach (var edge in edges)
        {
            if (PartyOf(current, edge.Source, edge.SourceIp) is not { } source || PartyOf(current, edge.Destination, edge.DestinationIp) is not { } destination
                || FlowStore.RuleProtocolOf(edge.Protocol) is not { } protocol || edge.DestinationPort is < 0 or > ushort.MaxValue)
            {
                unjudged++;
                continue;
            }
            judged++;
            flowsJudged += edge.Flows;
            var port = (ushort)edge.DestinationPort;
            var (was, will) = (before.Judge(source, destination, protocol, port), after.Judge(source, destination, protocol, port));
            if (was.Forwarded == will.Forwarded) continue;
            (will.Forwarded ? allowed : dropped).Add(new ImpactEdge(Name(edge.Source, edge.SourceIp), source.Identity, edge.SourceIp,
                Name(edge.Destination, edge.DestinationIp), destination.Identity, edge.DestinationIp, port, edge.Protocol, edge.Flows,
                DecidedBy(candidate, will.Deciding)));
        }
        return new PolicyImpact(since, until, current.Position.Value, judged, flowsJudged, unjudged, Class(dropped), Class(allowed),
            Entries(current, candidate, before, after, entryBudget));
    }

    private static ImpactClass Class(List<ImpactEdge> edges) =>
        new(edges.Count, edges.Sum(e => e.Flows), edges.OrderByDescending(e => e.Flows).ThenBy(e => e.Source, StringComparer.Ordinal)
            .ThenBy(e => e.Destination, StringComparer.Ordinal).ThenBy(e => e.Port).Take(Examples).ToList());

    /// <summary>A workload by its endpoint in the view (null once it is gone); another side by its address.</summary>
    private static Party? PartyOf(ClusterView view, string workload, string? ip) =>
        ip is not null ? Party.OfAddress(view, ip)
        : view.Endpoints.TryGetValue(workload, out var endpoint) ? Party.Of(endpoint)
        : null;

    private static string Name(string workload, string? ip) => workload.Length > 0 ? workload : ip ?? "";

    /// <summary>The rule that decides, or for a default deny the side and the policies that make it default-deny.</summary>
    private static string DecidedBy(ClusterView view, SideJudgement side)
    {
        var direction = side.Direction == Direction.Ingress ? "ingress" : "egress";
        return side.Outcome switch
        {
            LookupOutcome.DefaultDenied => $"{direction} default-deny ({string.Join(", ", PolicyJudge.DefaultDenying(view, side.Subject, side.Direction).Select(p => p.Policy.Reference))})",
            LookupOutcome.NotEnforced => $"{direction} not enforced (no policy selects it)",
            _ => side.Rule?.ToString() ?? direction,
        };
    }

    /// <summary>
    /// The policy entries, per node, of every local identity a changed policy selects (before or after): a policy's
    /// entries live in the maps of the identities it selects, so no other identity's entries change.
    /// </summary>
    private static List<IdentityEntries> Entries(ClusterView current, ClusterView candidate, PolicyJudge before, PolicyJudge after, int budget)
    {
        var changed = current.Policies.Keys.Union(candidate.Policies.Keys)
            .Where(k => current.Policies.GetValueOrDefault(k)?.Hash != candidate.Policies.GetValueOrDefault(k)?.Hash)
            .SelectMany(k => new[] { current.Policies.GetValueOrDefault(k), candidate.Policies.GetValueOrDefault(k) })
            .OfType<PolicyRecord>().Select(p => p.Policy).ToList();
        if (changed.Count == 0) return [];
        var entries = new List<IdentityEntries>();
        foreach (var (identity, node) in current.Endpoints.Values.Select(e => (e.Identity, e.Spec.Node)).Distinct().Order())
        {
            if (!current.Identities.TryGetValue(new NumericIdentity(identity).LabelIdentity.Value, out var record)) continue;
            if (!changed.Any(p => p.Specs.Any(s => p.EffectiveEndpointSelector(s).Matches(record.Labels)))) continue;
            entries.Add(new IdentityEntries(identity, record.Labels.ToString(), node, EntriesOf(before.SnapshotOf(node), identity),
                EntriesOf(after.SnapshotOf(node), identity), budget));
        }
        return entries;
    }

    /// <summary>The entries of an identity's fuller map: its enforced policy's, or its audit layer's, each a map with the budget.</summary>
    private static int EntriesOf(NodeSnapshot snapshot, uint identity) =>
        Math.Max(snapshot.PolicyOf(identity)?.Entries.Count ?? 0, snapshot.PolicyOf(identity | AgentProtocol.AuditLayer)?.Entries.Count ?? 0);
}
