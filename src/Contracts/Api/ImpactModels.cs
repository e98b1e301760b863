namespace Mesh.Contracts.Api;

// What a policy change would do, judged before it is made: the impact preview of a dry run and of a rollback.

/// <summary>
/// One observed edge whose verdict the change flips: who talked to whom on which port and protocol, how many flows the
/// window recorded of it, and what decides it under the change (a rule, or a default deny and the policies making it).
/// An address is given for a side that is no workload of the cluster (the world, a node).
/// </summary>
public sealed record ImpactEdge(
    string Source, uint SourceIdentity, string? SourceIp, string Destination, uint DestinationIdentity, string? DestinationIp,
    int Port, string Protocol, long Flows, string DecidedBy);

/// <summary>The edges of one kind of change: how many, their flows, and the busiest few as examples.</summary>
public sealed record ImpactClass(int Edges, long Flows, IReadOnlyList<ImpactEdge> Examples);

/// <summary>A local identity's policy entries on a node before and after the change, against the entry budget.</summary>
public sealed record IdentityEntries(uint Identity, string Labels, string Node, int Before, int After, int Budget)
{
    public bool OverBudget => After > Budget;
}

/// <summary>
/// The impact of a change on the traffic recorded in [<paramref name="Since"/>, <paramref name="Until"/>), judged
/// against the state at <paramref name="Version"/>. Edges whose ends the state no longer knows (a deleted pod) or
/// whose protocol no rule can name are counted in <paramref name="EdgesUnjudged"/>. Nothing was stored.
/// </summary>
public sealed record PolicyImpact(
    DateTimeOffset Since, DateTimeOffset Until, long Version, int EdgesJudged, long FlowsJudged, int EdgesUnjudged,
    ImpactClass NewlyDropped, ImpactClass NewlyAllowed, IReadOnlyList<IdentityEntries> Entries);

/// <summary>
/// Restore the policies as they were at <paramref name="To"/> (a log position or an RFC 3339 time): all of them, or
/// the one <paramref name="Namespace"/>/<paramref name="Name"/>/<paramref name="Kind"/> names (Namespace "" for a
/// cluster-wide policy). <paramref name="Window"/>: the recorded traffic the impact is judged on (e.g. 2h; 24h when absent).
/// </summary>
public sealed record RollbackRequest(string To, string? Namespace = null, string? Name = null, string? Kind = null, bool DryRun = false,
    string? Window = null);

/// <summary>One change of a rollback: re-apply the document a policy had at <paramref name="Target"/>, or delete it.</summary>
public sealed record RollbackChange(string Action, string Kind, string Namespace, string Name, long? AppliedAt)
{
    public const string Apply = "apply";
    public const string Delete = "delete";
}

/// <summary>
/// A rollback's plan, its impact and, unless it was a dry run, the log positions it wrote (all under one correlation
/// id). An empty plan means the policies already are as they were at <paramref name="Target"/>.
/// </summary>
public sealed record RollbackResult(long Target, IReadOnlyList<RollbackChange> Plan, PolicyImpact Impact, IReadOnlyList<long> Written,
    string? CorrelationId);
