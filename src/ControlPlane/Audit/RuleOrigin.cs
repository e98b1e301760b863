using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.ControlPlane.Commands;
using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.Policies;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Labels;
using Mesh.Contracts.Policies;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// The event that introduced what decided a verdict, found in the policy's own stream: walking back from the version
/// judged, the earliest application of the policy from which the deciding content is unchanged. Applying the policy
/// again with another rule changed keeps a rule's origin; a deletion, or an application where the content differs,
/// ends the walk.
/// </summary>
public static class RuleOrigin
{
    /// <summary>Where <paramref name="rule"/> (the same spec, section and index, holding an equal rule) came from.</summary>
    public static Task<RuleOriginView?> OfRuleAsync(IEventStore store, PolicyRecord policy, RuleReference rule, long version, CancellationToken ct) =>
        EarliestAsync(store, policy, version, rule.ToString(), p => RuleOf(p, rule), ct);

    /// <summary>Since when <paramref name="policy"/> selects <paramref name="labels"/> with a rule set enforcing <paramref name="direction"/>: what made a default deny.</summary>
    public static Task<RuleOriginView?> OfSelectionAsync(IEventStore store, PolicyRecord policy, LabelSet labels, Direction direction, long version,
        CancellationToken ct) =>
        EarliestAsync(store, policy, version, null, p => PolicyJudge.MakesDefaultDeny(p, labels, direction) ? "selects" : null, ct);

    /// <param name="content">what must stay equal, from the policy as one event applied it; null: the event does not hold it</param>
    private static async Task<RuleOriginView?> EarliestAsync(IEventStore store, PolicyRecord policy, long version, string? rule,
        Func<NetworkPolicy, string?> content, CancellationToken ct)
    {
        var events = await store.ReadStreamAsync(policy.StreamId, 0, ct);
        (RecordedEvent Event, string Content)? origin = null;
        for (var i = events.Count - 1; i >= 0; i--)
        {
            var recorded = events[i];
            if (recorded.Position.Value > version) continue;
            // A stream written before the kinds were kept apart may hold the other kind too: that is another policy.
            if (EventCodec.Decode(recorded) is not PolicyEvent.PolicyApplied applied || applied.Kind != policy.Policy.Kind) break;
            if (content(PolicyJson.Deserialize(applied.Policy.ToJsonString())) is not { } held || (origin is { } later && held != later.Content)) break;
            origin = (recorded, held);
        }
        return origin is { Event: var e }
            ? new RuleOriginView(policy.Policy.KindAndName, rule, e.Position.Value, e.Metadata.Time, e.Metadata.Principal, e.Metadata.CorrelationId)
            : null;
    }

    /// <summary>The rule's canonical JSON (as the event stores it), or null when the policy has no rule at that place.</summary>
    private static string? RuleOf(NetworkPolicy policy, RuleReference rule)
    {
        var spec = rule.Spec ?? 0;
        if (spec >= policy.Specs.Count || rule.Index >= policy.Specs[spec].Rules(rule.Section).Count) return null;
        var section = JsonNamingPolicy.CamelCase.ConvertName(rule.Section.ToString());
        return JsonNode.Parse(PolicyJson.Serialize(policy))!["specs"]![spec]![section]![rule.Index]!.ToJsonString();
    }
}
