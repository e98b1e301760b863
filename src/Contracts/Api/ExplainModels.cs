namespace Mesh.Contracts.Api;

// What explain answers (GET /v1/explain, GET /v1/flows/{uuid}/explain), as it travels over the wire (JSON, camelCase).

/// <summary>
/// Why a connection is forwarded or dropped at <paramref name="Version"/>: the verdict (FORWARDED, DROPPED, or AUDIT:
/// forwarded, though a policy in audit mode would drop it), the
/// side that decided (<c>egress</c> of the source, <c>ingress</c> of the destination), and why in one sentence;
/// each side as its node judges it, with the events that introduced what decided. For a recorded flow,
/// <paramref name="Flow"/> holds what the node recorded beside this recomputed answer.
/// </summary>
public sealed record ExplanationView(
    string Verdict, long Version, string Source, string Destination, string Protocol, int Port,
    string DecidedBy, string Reason, ExplainedSide Egress, ExplainedSide Ingress, RecordedFlowView? Flow = null);

/// <summary>
/// One side's judgement: <paramref name="Endpoint"/>'s <paramref name="Direction"/> on <paramref name="Node"/> (null:
/// no endpoint of the cluster, nothing judges this side), the identity its node gave the peer, the outcome
/// (NotEnforced, Allowed, Denied, DefaultDenied), the deciding rule, and where it came from. <paramref name="Audit"/>
/// says how the policies in audit mode would drop what this side lets pass (null when they would not), and
/// <paramref name="AuditOrigins"/> where that came from.
/// </summary>
public sealed record ExplainedSide(
    string Direction, string? Node, string Endpoint, long Identity, long Peer, string Outcome, string? Rule, string Reason,
    IReadOnlyList<RuleOriginView> Origins, string? Audit = null, IReadOnlyList<RuleOriginView>? AuditOrigins = null);

/// <summary>
/// The event that introduced what decided: for a rule, the earliest application of its policy from which the rule
/// is unchanged up to the version judged; for a default deny, the one from which the policy selects the endpoint.
/// <paramref name="Policy"/> names the policy as flows do (<c>CiliumNetworkPolicy shop/allow-db</c>).
/// </summary>
public sealed record RuleOriginView(string Policy, string? Rule, long Position, DateTimeOffset Time, string Principal, string CorrelationId);

/// <summary>
/// A flow as its node recorded it: its verdict, the policies it names, and whether that agrees with the verdict
/// recomputed at the version the node enforced (<paramref name="Disagreement"/> says how it does not).
/// </summary>
public sealed record RecordedFlowView(
    string Uuid, DateTimeOffset Time, string Node, string Direction, string Verdict, string DropReason,
    IReadOnlyList<string> Policies, string Summary, bool Agrees, string? Disagreement);
