namespace Mesh.Contracts.Api;

// The audit API's answers as they travel over the wire (JSON, camelCase): what changed between two versions of
// the desired state, and what a node's snapshot was at a time, recomputed from the log.

/// <summary>
/// The change from log position <paramref name="From"/> to <paramref name="To"/>: the policy documents that were
/// created, deleted or changed, and the effective change that made (pairs that became allowed or denied).
/// <paramref name="Truncated"/>: more effective rows changed than the answer holds.
/// </summary>
public sealed record PolicyDiffView(long From, long To, long Head, IReadOnlyList<PolicyDocumentChange> Documents,
    IReadOnlyList<EffectiveChange> Effective, bool Truncated);

/// <summary>
/// One policy's document between two versions: <paramref name="Change"/> is created, deleted or changed;
/// <paramref name="Diff"/> the lines of a unified diff of the indented JSON documents (---/+++ header, @@ hunks).
/// </summary>
public sealed record PolicyDocumentChange(string Policy, string Change, long? FromVersion, long? ToVersion, string? ChangedBy,
    IReadOnlyList<string> Diff);

/// <summary>A workload's identity (or the world, or an address block) as a diff names it.</summary>
public sealed record DiffParty(string Name, uint? Identity, IReadOnlyList<string> Labels)
{
    public override string ToString() => Labels.Count == 0 ? Name : $"{Name} ({string.Join(",", Labels)})";
}

/// <summary>
/// Connections from <paramref name="Source"/> to <paramref name="Destination"/> on <paramref name="Protocol"/>/<paramref name="Port"/>
/// (null: any port no rule names) that became allowed or denied (<paramref name="Change"/>) on the
/// <paramref name="Direction"/> side (ingress: the destination's, egress: the source's), on <paramref name="Nodes"/>
/// where that side's endpoints live. <paramref name="Before"/>/<paramref name="After"/>: the lookup's outcomes
/// (NotEnforced, Allowed, Denied, DefaultDenied); <paramref name="Rule"/>: the rule that decides now, or decided before.
/// </summary>
public sealed record EffectiveChange(string Change, string Direction, DiffParty Source, DiffParty Destination, string Protocol, int? Port,
    IReadOnlyList<string> Nodes, string Before, string After, string? Rule)
{
    public const string Allowed = "allowed", Denied = "denied";
}

/// <summary>
/// A node's snapshot at <paramref name="At"/> recomputed from the log: the version it enforced then (acknowledged at
/// <paramref name="Since"/>), the content hash it acknowledged, the hash of the snapshot compiled from the desired
/// state at that version, and whether they match. <paramref name="Entries"/>: the recomputed snapshot's policy
/// entries, when asked for.
/// </summary>
public sealed record NodeReplayView(string Node, DateTimeOffset At, long Version, DateTimeOffset Since, string AckedHash, string RecomputedHash,
    bool Matches, IReadOnlyList<ReplayedEntry>? Entries);

/// <summary>
/// One policy entry of a replayed snapshot: a local identity's verdict on a direction, peer, protocol and port
/// (<paramref name="Key"/>), and its rule; <paramref name="Audit"/> when the entry is of the identity's audit layer
/// (what it would have with the policies in audit mode enforced too).
/// </summary>
public sealed record ReplayedEntry(uint Identity, string Key, string Verdict, bool L7Redirect, string Rule, bool Audit = false);
