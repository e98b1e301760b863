using Mesh.ControlPlane.Compilation;
using Mesh.ControlPlane.EventStore;
using Mesh.ControlPlane.State;
using Mesh.Contracts.Api;
using Mesh.Contracts.Identity;
using Mesh.Contracts.Policies;
using FlowMessage = Mesh.Contracts.Hubble.Flows.Flow;
using HubbleDirection = Mesh.Contracts.Hubble.Flows.TrafficDirection;
using HubbleVerdict = Mesh.Contracts.Hubble.Flows.Verdict;
using Protocol = Mesh.Contracts.Policies.Protocol;

namespace Mesh.ControlPlane.Audit;

/// <summary>
/// Explains a verdict in an auditor's words: the judgement of <see cref="PolicyJudge"/> at one version (each side as
/// its node decides), the rule or the default deny that decided, and the events that introduced them
/// (<see cref="RuleOrigin"/>); for a recorded flow, what its node recorded beside what the judge recomputes.
/// </summary>
public static class Explanation
{
    public const string Forwarded = "FORWARDED";
    public const string Dropped = "DROPPED";
    public const string Audit = "AUDIT";

    public static async Task<ExplanationView> ExplainAsync(IEventStore store, ClusterView view, Party source, Party destination, Protocol protocol,
        ushort port, CancellationToken ct)
    {
        var judgement = new PolicyJudge(view).Judge(source, destination, protocol, port);
        var egress = await SideAsync(store, view, judgement.Egress, source, ct);
        var ingress = await SideAsync(store, view, judgement.Ingress, destination, ct);
        var (deciding, other) = ReferenceEquals(judgement.Deciding, judgement.Egress) ? (egress, ingress) : (ingress, egress);
        var reason = judgement.Forwarded ? $"{egress.Reason}; {ingress.Reason}{string.Concat(new[] { egress, ingress }.Where(s => s.Audit is not null).Select(s => $"; {s.Audit}"))}"
            // Dropped: the deciding side's reason, and what the other side would have done had it decided alone.
            : $"{deciding.Reason} (alone, the {other.Direction} of {other.Endpoint} would {(Passes(other) ? "let it through" : "drop it too")}: {other.Reason})";
        return new ExplanationView(!judgement.Forwarded ? Dropped : judgement.Audited ? Audit : Forwarded, judgement.Version, source.Name, destination.Name, NameOf(protocol), port,
            deciding.Direction, reason, egress, ingress);
    }

    private static bool Passes(ExplainedSide side) => side.Outcome is nameof(LookupOutcome.NotEnforced) or nameof(LookupOutcome.Allowed);

    private static async Task<ExplainedSide> SideAsync(IEventStore store, ClusterView view, SideJudgement side, Party subject, CancellationToken ct)
    {
        var direction = side.Direction == Direction.Ingress ? "ingress" : "egress";
        var origins = new List<RuleOriginView>();
        string reason;
        switch (side.Outcome)
        {
            case LookupOutcome.NotEnforced when side.Node is null:
                reason = $"{subject.Name} is no endpoint of the cluster: nothing judges its {direction}";
                break;
            case LookupOutcome.NotEnforced:
                reason = $"no policy selects {subject.Name} for {direction}: not enforced";
                break;
            case LookupOutcome.Allowed or LookupOutcome.Denied:
                var rule = side.Rule!;
                reason = TierOf(view, rule) is { } tiered
                    ? $"{tiered} {(side.Outcome == LookupOutcome.Allowed ? "lets it through" : "drops it")}"
                    : side.Outcome == LookupOutcome.Allowed
                    ? $"rule {rule} allows it{(side.L7Redirect ? " (through the L7 proxy)" : "")}"
                    : $"deny rule {rule} drops it";
                origins.AddRange(await RuleOriginsAsync(store, view, rule, ct));
                break;
            default:
                var policies = PolicyJudge.DefaultDenying(view, side.Subject, side.Direction);
                if (policies.Count == 0 && PolicyJudge.DefaultDenyingMode(view) is { } mode)
                {
                    // No policy selects it: the cluster's mode makes every endpoint default-deny.
                    reason = $"default deny: the cluster's enforcement mode is always (no policy selects {subject.Name} for {direction}, and every endpoint denies what no rule allows)";
                    var set = (await store.ReadStreamAsync(Enforcement.PolicyEnforcement.StreamId, 0, ct)).LastOrDefault(e => e.Position == mode.Version);
                    origins.Add(new RuleOriginView("enforcement mode always", null, mode.Version.Value, mode.SetAt, mode.SetBy, set?.Metadata.CorrelationId ?? ""));
                    break;
                }
                reason = $"default deny: {(policies.Count == 1 ? $"policy {Names(policies)} selects" : $"policies {Names(policies)} select")} {subject.Name} for {direction} and no rule allows this";
                origins.AddRange(await SelectionOriginsAsync(store, view, policies, side, ct));
                break;
        }
        var (audit, auditOrigins) = side.Audit is { } audited ? await AuditedAsync(store, view, side, audited, subject, direction, ct) : (null, null);
        return new ExplainedSide(direction, side.Node, subject.Name, side.Subject, side.Peer, side.Outcome.ToString(), side.Rule?.ToString(), reason, origins,
            audit, auditOrigins);
    }

    /// <summary>
    /// A rule of the admin or baseline tier as people read it: <c>admin tier rule ClusterNetworkPolicy x ingress[0]
    /// "deny-db" (Deny, priority 10)</c>, so that an explanation says which tier decided and where the policy stands in
    /// it. Null for a policy-tier rule, or one whose policy is gone from the view.
    /// </summary>
    private static string? TierOf(ClusterView view, RuleReference rule)
    {
        if (view.Policies.GetValueOrDefault(ClusterView.PolicyKey(rule.Kind, rule.Namespace ?? "", rule.Name))?.Policy is not { Tiered: true } policy)
            return null;
        var rules = policy.Spec.Rules(rule.Section);
        if (rule.Index >= rules.Count) return null;
        var r = rules[rule.Index];
        return $"{policy.Tier.ToString().ToLowerInvariant()} tier rule {rule}{(r.Name is { } name ? $" \"{name}\"" : "")} ({r.Action}, priority {policy.Priority})";
    }

    /// <summary>How the policies in audit mode would drop what a side lets pass, and the events that introduced that.</summary>
    private static async Task<(string, IReadOnlyList<RuleOriginView>)> AuditedAsync(IEventStore store, ClusterView view, SideJudgement side,
        AuditJudgement audit, Party subject, string direction, CancellationToken ct)
    {
        if (audit.Rule is { } rule)
            return ($"audit: deny rule {rule} (audit mode) would drop it", await RuleOriginsAsync(store, view, rule, ct));
        var policies = PolicyJudge.DefaultDenying(view, side.Subject, side.Direction, PolicyMode.Audit);
        return ($"audit: default deny of {(policies.Count == 1 ? $"policy {Names(policies)} (audit mode), which selects" : $"policies {Names(policies)} (audit mode), which select")} " +
            $"{subject.Name} for {direction}: no rule allows this", await SelectionOriginsAsync(store, view, policies, side, ct));
    }

    private static string Names(IReadOnlyList<PolicyRecord> policies) => string.Join(", ", policies.Select(p => p.Policy.Reference));

    /// <summary>The event that introduced a rule as it stands in the view (none when its policy is gone).</summary>
    private static async Task<IReadOnlyList<RuleOriginView>> RuleOriginsAsync(IEventStore store, ClusterView view, RuleReference rule, CancellationToken ct) =>
        view.Policies.GetValueOrDefault(ClusterView.PolicyKey(rule.Kind, rule.Namespace ?? "", rule.Name)) is { } policy
        && await RuleOrigin.OfRuleAsync(store, policy, rule, view.Position.Value, ct) is { } introduced
            ? [introduced]
            : [];

    /// <summary>The events from which each of <paramref name="policies"/> selects the side's subject for its direction.</summary>
    private static async Task<IReadOnlyList<RuleOriginView>> SelectionOriginsAsync(IEventStore store, ClusterView view, IReadOnlyList<PolicyRecord> policies,
        SideJudgement side, CancellationToken ct)
    {
        var labels = view.Identities[new NumericIdentity(side.Subject).LabelIdentity.Value].Labels;   // DefaultDenying found it
        var origins = new List<RuleOriginView>();
        foreach (var policy in policies)
            if (await RuleOrigin.OfSelectionAsync(store, policy, labels, side.Direction, view.Position.Value, ct) is { } origin)
                origins.Add(origin);
        return origins;
    }

    /// <summary>The connection a recorded flow is about: its addresses, protocol and destination port.</summary>
    public static (string Source, string Destination, Protocol Protocol, ushort Port) ConnectionOf(FlowMessage flow)
    {
        var (protocol, _, port) = Flows.FlowStore.L4Of(flow);
        return (flow.IP?.Source ?? "", flow.IP?.Destination ?? "", Flows.FlowStore.RuleProtocolOf(protocol) ?? Protocol.Any, (ushort)port);
    }

    /// <summary>
    /// What the flow's node recorded beside <paramref name="explained"/>: a flow seen leaving its source is compared
    /// with the egress side (it says nothing of the ingress), one seen arriving with the whole verdict; the policies it
    /// names with those that decided the side it was seen at.
    /// </summary>
    public static ExplanationView WithRecorded(ExplanationView explained, FlowMessage flow)
    {
        var ingress = flow.TrafficDirection == HubbleDirection.Ingress;
        var side = ingress ? explained.Ingress : explained.Egress;
        // Each side's program records its own verdict: AUDIT when its audit layer would drop what it lets pass.
        var expected = ingress && explained.Verdict == Dropped ? Dropped : !Passes(side) ? Dropped : side.Audit is not null ? Audit : Forwarded;
        var recordedVerdict = flow.Verdict switch
        {
            HubbleVerdict.Forwarded => Forwarded, HubbleVerdict.Dropped => Dropped, HubbleVerdict.Audit => Audit, var v => v.ToString().ToUpperInvariant(),
        };
        var recordedPolicies = (ingress ? flow.IngressAllowedBy.Concat(flow.IngressDeniedBy) : flow.EgressAllowedBy.Concat(flow.EgressDeniedBy))
            .Select(p => p.Namespace.Length == 0 ? $"{p.Kind} {p.Name}" : $"{p.Kind} {p.Namespace}/{p.Name}")
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        // An AUDIT flow names the policies in audit mode that would drop it.
        var decidedBy = ((recordedVerdict == Audit ? side.AuditOrigins : null) ?? side.Origins)
            .Select(o => o.Policy).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

        string? disagreement = null;
        if (recordedVerdict != expected)
            disagreement = $"the node recorded {recordedVerdict} at its {side.Direction}, the judge at version {explained.Version} says {expected}";
        else if (recordedPolicies.Length > 0 && !recordedPolicies.SequenceEqual(decidedBy, StringComparer.Ordinal))
            disagreement = $"the node named {string.Join(", ", recordedPolicies)}, the judge at version {explained.Version} names {(decidedBy.Length == 0 ? "no policy" : string.Join(", ", decidedBy))}";
        return explained with
        {
            Flow = new RecordedFlowView(flow.Uuid, flow.Time.ToDateTimeOffset(), flow.NodeName, ingress ? "ingress" : "egress", recordedVerdict,
                flow.DropReasonDesc.ToString(), recordedPolicies, flow.Summary, disagreement is null, disagreement),
        };
    }

    public static string NameOf(Protocol protocol) => protocol == Protocol.Icmp ? "ICMP" : protocol.ToString().ToUpperInvariant();
}
