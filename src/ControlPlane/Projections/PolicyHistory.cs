using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.Contracts.Api;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Projections;

/// <summary>
/// Which policies' changes to read. A <paramref name="Name"/> needs its <paramref name="Namespace"/> (none for a
/// cluster-wide policy); a <paramref name="Kind"/> alone reads every policy of that kind. Null filters match everything.
/// </summary>
/// <param name="After">Changes after this position, oldest first; null: the newest <paramref name="Limit"/>.</param>
public sealed record PolicyHistoryQuery(
    string? Namespace, string? Name, PolicyKind? Kind, DateTimeOffset? Since, DateTimeOffset? Until, long? After, int Limit);

/// <summary>
/// Every change to the policies a query names, newest last, each with a summary of what it changed: the entries come
/// from the audit trail (no replay of the log per request); each summary compares the policy's document with the one
/// before it, read from that policy's own stream.
/// </summary>
public sealed class PolicyHistory(AuditTrail audit, IEventStore store)
{
    /// <summary>How long a request waits for the audit trail to hold what the log held when it came in.</summary>
    public static readonly TimeSpan CatchUpPatience = TimeSpan.FromSeconds(5);

    public async Task<IReadOnlyList<PolicyChange>> ReadAsync(PolicyHistoryQuery query, CancellationToken ct)
    {
        await audit.CatchUpAsync(store, await store.HeadAsync(ct), CatchUpPatience, ct);
        var (streams, prefixes) = StreamsOf(query);
        var entries = await audit.ReadAsync(new AuditQuery(null, null, query.After, query.Limit)
        {
            Streams = streams, StreamPrefixes = prefixes, Since = query.Since, Until = query.Until,
        }, ct);

        var changes = new Dictionary<long, Change>();
        foreach (var stream in entries.GroupBy(e => e.StreamId))
            await ReadStreamAsync(stream.Key, stream.Max(e => e.Position), changes, ct);
        return entries
            .Select(e => (Entry: e, Change: changes.GetValueOrDefault(e.Position)))
            .Where(c => c.Change is not null && (query.Kind is null || c.Change.Kind == query.Kind))
            .Select(c => new PolicyChange(c.Entry.Position, c.Entry.Time, c.Entry.Principal, c.Entry.CorrelationId, c.Change!.What,
                PolicyKinds.DocumentKind(c.Change.Kind), c.Change.Namespace, c.Change.Name, c.Change.Summary))
            .ToArray();
    }

    private sealed record Change(PolicyKind Kind, string Namespace, string Name, string What, string Summary);

    /// <summary>
    /// The streams that hold the policies a query names: one policy's stream (and, for a NetworkPolicy, the stream of its
    /// CiliumNetworkPolicy namesake, where one stored before the kinds were kept apart lives), or the streams of a
    /// namespace, of a kind, or of every policy (every kind's streams). A kind's filter is applied to the changes read.
    /// </summary>
    private static (IReadOnlyList<string>? Streams, IReadOnlyList<string>? Prefixes) StreamsOf(PolicyHistoryQuery q)
    {
        var ns = q.Kind is { } scope && PolicyKinds.IsClusterwide(scope) ? PolicyService.Clusterwide : q.Namespace;
        if (q.Name is { } name && ns is not null)
        {
            var kind = q.Kind ?? PolicyKind.CiliumNetworkPolicy;
            return (kind == PolicyKind.KubernetesNetworkPolicy
                ? [Policy.StreamId(kind, ns, name), Policy.LegacyNetworkPolicyStreamId(ns, name)]
                : [Policy.StreamId(kind, ns, name)], null);
        }
        var within = ns is null ? "" : ns + "/";
        return (null, q.Kind switch
        {
            { } kind => [Policy.StreamPrefix(kind) + within],
            null => Enum.GetValues<PolicyKind>().Select(Policy.StreamPrefix).Distinct().Select(prefix => prefix + within).ToArray(),
        });
    }

    /// <summary>Folds one policy stream up to <paramref name="upTo"/>, keeping each event's change and its summary.</summary>
    private async Task ReadStreamAsync(string streamId, long upTo, Dictionary<long, Change> changes, CancellationToken ct)
    {
        // By kind: a stream may hold a NetworkPolicy stored before the kinds were kept apart, then its Cilium namesake.
        var documents = new Dictionary<PolicyKind, JsonObject>();
        foreach (var recorded in await store.ReadStreamAsync(streamId, 0, ct))
        {
            if (recorded.Position.Value > upTo) break;
            object domainEvent;
            try { domainEvent = EventCodec.Decode(recorded); }
            catch (Exception e) when (e is InvalidDataException or JsonException or NotSupportedException) { continue; }   // as the audit summary does
            switch (domainEvent)
            {
                case PolicyEvent.PolicyApplied a:
                    var before = documents.GetValueOrDefault(a.Kind);
                    changes[recorded.Position.Value] = new Change(a.Kind, a.Namespace, a.Name,
                        before is null ? PolicyChangeKinds.Created : PolicyChangeKinds.Changed, PolicyChangeSummary.Describe(before, a.Policy));
                    documents[a.Kind] = a.Policy;
                    break;
                case PolicyEvent.PolicyDeleted d:
                    // A delete stored before the kinds were kept apart names none: it deleted the one policy there was.
                    var kind = d.Kind ?? documents.Keys.FirstOrDefault(d.Namespace.Length == 0 ? PolicyKind.CiliumClusterwideNetworkPolicy : PolicyKind.CiliumNetworkPolicy);
                    var deleted = documents.GetValueOrDefault(kind);
                    documents.Remove(kind);
                    changes[recorded.Position.Value] = new Change(kind, d.Namespace, d.Name, PolicyChangeKinds.Deleted,
                        deleted is null ? "deleted" : PolicyChangeSummary.Describe(deleted, null));
                    break;
            }
        }
    }
}
